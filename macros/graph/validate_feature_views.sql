{#- on-run-start hook: validates every feature view's metadata before anything is built,
    so bad YAML fails `dbt build` with the model and the field named. -#}
{% macro validate_feature_views() %}
  {%- if execute -%}
    {%- for node in graph.nodes.values() if node.resource_type == 'model' and node.config.meta and node.config.meta.feature_store is defined -%}
      {%- do feature_store.feature_view_spec(node) -%}
    {%- endfor -%}
  {%- endif -%}
  {{- return('select 1') -}}
{% endmacro %}
