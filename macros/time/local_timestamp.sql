{#- The wall-clock time in an IANA time zone (e.g. 'Europe/Berlin') of an instant, as a
    naive timestamp. The instant is normalized to UTC first, then converted, so each UTC
    instant has exactly one local time: across a daylight-saving change the repeated
    local hour is reached by two instants (each gets it), and the skipped hour is never
    produced. 'UTC' returns the normalized timestamp itself. -#}
{% macro local_timestamp(expression, time_zone='UTC') %}
  {{- return(adapter.dispatch('local_timestamp', 'feature_store')(expression, time_zone)) -}}
{% endmacro %}

{% macro default__local_timestamp(expression, time_zone) -%}
  {%- set utc = feature_store.normalize_timestamp(expression) -%}
  {%- if feature_store.time_zone_name(time_zone) == 'UTC' -%} {{ utc }}
  {%- else -%} (({{ utc }}) at time zone 'UTC' at time zone '{{ time_zone }}')
  {%- endif -%}
{%- endmacro %}

{#- Spark has no AT TIME ZONE; from_utc_timestamp reads its input as UTC. -#}
{% macro spark__local_timestamp(expression, time_zone) -%}
  {%- set utc = feature_store.normalize_timestamp(expression) -%}
  {%- if feature_store.time_zone_name(time_zone) == 'UTC' -%} {{ utc }}
  {%- else -%} cast(from_utc_timestamp(cast({{ utc }} as timestamp), '{{ time_zone }}') as timestamp_ntz)
  {%- endif -%}
{%- endmacro %}

{#- The zone name, refused unless it looks like an IANA name (Area/City, UTC, ...), so
    nothing else reaches the SQL; an unknown but well-formed name fails in the engine. -#}
{% macro time_zone_name(time_zone) -%}
  {%- if time_zone is not string or modules.re.fullmatch('[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*', time_zone) is none -%}
    {{- exceptions.raise_compiler_error("time zone is " ~ time_zone ~ "; expected an IANA name such as 'UTC', 'Europe/Berlin' or 'America/New_York'") -}}
  {%- endif -%}
  {{- return(time_zone) -}}
{%- endmacro %}
