{#- on-run-start hook: validates every feature view's metadata before anything is built,
    so bad YAML fails `dbt build` with the model and the field named. Then every on-demand
    view's, against the feature views it reads (on_demand_view_spec). -#}
{% macro validate_feature_views() %}
  {%- if execute -%}
    {%- set views = {} -%}
    {%- for node in graph.nodes.values() if node.resource_type == 'model' and node.config.meta and node.config.meta.feature_store is defined -%}
      {%- do views.update({node.name: feature_store.feature_view_spec(node)}) -%}
    {%- endfor -%}
    {%- for node in graph.nodes.values() if node.resource_type == 'model' and node.config.meta and node.config.meta.on_demand_feature_view is defined -%}
      {%- do feature_store.on_demand_view_spec(node, views) -%}
    {%- endfor -%}
  {%- endif -%}
  {{- return('select 1') -}}
{% endmacro %}
