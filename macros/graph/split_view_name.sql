{#- 'view' -> ('view', none); 'view.v2' -> ('view', '2'): a feature view name and the dbt model
    version it names, if any. -#}
{% macro split_view_name(name) %}
  {%- set parts = name.rsplit('.v', 1) -%}
  {%- if parts | length == 2 and parts[1] and parts[1].replace('.', '').replace('_', '').isalnum() -%}
    {{- return((parts[0], parts[1])) -}}
  {%- endif -%}
  {{- return((name, none)) -}}
{% endmacro %}
