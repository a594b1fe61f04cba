{#- Every time rule compares instants as naive UTC timestamps (microseconds).
    Offsets are converted to UTC; a naive timestamp already means UTC. -#}
{% macro normalize_timestamp(expression) %}
  {{- return(adapter.dispatch('normalize_timestamp', 'feature_store')(expression)) -}}
{% endmacro %}

{% macro default__normalize_timestamp(expression) -%}
  cast({{ expression }} as timestamp)
{%- endmacro %}

{#- The double cast sends TIMESTAMPTZ, TIMESTAMPTZ_NS, TIMESTAMP_NS and strings with
    offsets through one path; the session TimeZone is UTC (profiles.yml), so a naive
    value is read as UTC and an aware one is converted to UTC. -#}
{% macro duckdb__normalize_timestamp(expression) -%}
  cast(cast({{ expression }} as timestamptz) as timestamp)
{%- endmacro %}

{#- Postgres would otherwise convert timestamptz with the session time zone. -#}
{% macro postgres__normalize_timestamp(expression) -%}
  (cast({{ expression }} as timestamptz) at time zone 'UTC')
{%- endmacro %}
