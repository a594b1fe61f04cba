{#- on-run-start hook: validates every feature view's metadata before anything is built,
    so bad YAML fails `dbt build` with the model and the field named; then every feature
    service (an ML exposure with meta.feature_store) against those views. -#}
{% macro validate_feature_views() %}
  {%- if execute -%}
    {%- set views = [] -%}
    {%- for node in graph.nodes.values() if node.resource_type == 'model' and node.config.meta and node.config.meta.feature_store is defined -%}
      {%- do views.append(feature_store.feature_view_spec(node)) -%}
    {%- endfor -%}
    {%- for exposure in graph.exposures.values() if feature_store.is_feature_service(exposure) -%}
      {%- do feature_store.feature_service_spec(exposure, views) -%}
    {%- endfor -%}
  {%- endif -%}
  {{- return('select 1') -}}
{% endmacro %}
