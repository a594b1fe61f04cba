{#- The text of one top-level field of a JSON object held as text (NULL when absent):
    how the serving log's entity_key gives back each key. -#}
{% macro json_text_value(column, field) %}
  {{- return(adapter.dispatch('json_text_value', 'feature_store')(column, field)) -}}
{% endmacro %}

{% macro default__json_text_value(column, field) -%}
  json_extract_string({{ column }}, '$."{{ field }}"')
{%- endmacro %}

{% macro postgres__json_text_value(column, field) -%}
  (cast({{ column }} as json) ->> '{{ field }}')
{%- endmacro %}

{% macro spark__json_text_value(column, field) -%}
  get_json_object({{ column }}, '$.{{ field }}')
{%- endmacro %}
