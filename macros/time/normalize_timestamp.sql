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
    value is read as UTC and an aware one is converted to UTC. A plain TIMESTAMP is
    already naive UTC and skips it: the casts go through ICU time zone arithmetic for
    every value (seconds per ten million rows). typeof() is folded when the query is
    planned, so only one branch ever runs. -#}
{% macro duckdb__normalize_timestamp(expression) -%}
  case when typeof({{ expression }}) = 'TIMESTAMP' then cast({{ expression }} as timestamp)
    else cast(cast({{ expression }} as timestamptz) as timestamp) end
{%- endmacro %}

{#- Postgres would otherwise convert timestamptz with the session time zone. -#}
{% macro postgres__normalize_timestamp(expression) -%}
  (cast({{ expression }} as timestamptz) at time zone 'UTC')
{%- endmacro %}

{#- Spark: through timestamp_ltz (an instant) to timestamp_ntz, as DuckDB does: the
    session time zone is UTC (profiles.yml), so a naive value is read as UTC, a string
    with an offset is converted, and the result is naive UTC whatever
    spark.sql.timestampType says. -#}
{% macro spark__normalize_timestamp(expression) -%}
  cast(cast({{ expression }} as timestamp_ltz) as timestamp_ntz)
{%- endmacro %}
