{#- Two columns `<name>_sin` and `<name>_cos` placing a timestamp on a circle, so 23:00
    sits next to 00:00 and Sunday next to Monday. period: 'hour' (hour of the UTC day,
    minutes included) or 'weekday' (0 = Sunday). -#}
{% macro cyclical_encoding(timestamp, period, name) %}
  {{- return(adapter.dispatch('cyclical_encoding', 'feature_store')(timestamp, period, name)) -}}
{% endmacro %}

{% macro default__cyclical_encoding(timestamp, period, name) -%}
  {%- set utc = feature_store.normalize_timestamp(timestamp) -%}
  {%- if period == 'hour' -%}
    {%- set position = '(extract(hour from ' ~ utc ~ ') + cast(extract(minute from ' ~ utc ~ ') as ' ~ feature_store.engine_data_type('double') ~ ') / 60)' -%}
    {%- set length = 24 -%}
  {%- elif period == 'weekday' -%}
    {%- set position = feature_store.day_of_week(utc) -%}
    {%- set length = 7 -%}
  {%- else -%}
    {{- exceptions.raise_compiler_error("cyclical_encoding: period is '" ~ period ~ "'; expected 'hour' or 'weekday'") -}}
  {%- endif -%}
  sin(2 * pi() * {{ position }} / {{ length }}) as {{ adapter.quote(name ~ '_sin') }},
  cos(2 * pi() * {{ position }} / {{ length }}) as {{ adapter.quote(name ~ '_cos') }}
{%- endmacro %}
