{#- Four bigint columns from a timestamp, read on the wall clock of `time_zone` (an IANA
    name, default 'UTC'; see local_timestamp for daylight-saving changes):
    `<name>_hour` 0-23, `<name>_day_of_week` 0 = Sunday to 6 = Saturday, `<name>_month`
    1-12 and `<name>_is_weekend` 1 on Saturday and Sunday, else 0. -#}
{% macro time_parts(timestamp, name, time_zone='UTC') %}
  {{- return(adapter.dispatch('time_parts', 'feature_store')(timestamp, name, time_zone)) -}}
{% endmacro %}

{% macro default__time_parts(timestamp, name, time_zone) -%}
  {%- set local = feature_store.local_timestamp(timestamp, time_zone) -%}
  {%- set weekday = feature_store.day_of_week(local) -%}
  cast(extract(hour from {{ local }}) as bigint) as {{ adapter.quote(name ~ '_hour') }},
  cast({{ weekday }} as bigint) as {{ adapter.quote(name ~ '_day_of_week') }},
  cast(extract(month from {{ local }}) as bigint) as {{ adapter.quote(name ~ '_month') }},
  cast(case when {{ weekday }} in (0, 6) then 1 else 0 end as bigint) as {{ adapter.quote(name ~ '_is_weekend') }}
{%- endmacro %}
