{#- on-run-start hook: validates every feature view's metadata before anything is built,
    so bad YAML fails `dbt build` with the model and the field named. Then every on-demand
    view's, against the feature views it reads (on_demand_view_spec), and every feature
    service (an ML exposure with meta.feature_store) against those views. -#}
{% macro validate_feature_views() %}
  {%- if execute -%}
    {#- By name; a versioned view's latest version also under its bare model name, which means it. -#}
    {%- set views = {} -%}
    {%- set specs = [] -%}
    {%- for node in graph.nodes.values() if node.resource_type == 'model' and node.config.meta and node.config.meta.feature_store is defined -%}
      {%- set spec = feature_store.feature_view_spec(node) -%}
      {%- do specs.append(spec) -%}
      {%- do views.update({spec.name: spec}) -%}
      {%- if spec.latest and spec.model and spec.model != spec.name -%}{%- do views.update({spec.model: spec}) -%}{%- endif -%}
    {%- endfor -%}
    {%- for node in graph.nodes.values() if node.resource_type == 'model' and node.config.meta and node.config.meta.on_demand_feature_view is defined -%}
      {%- do feature_store.on_demand_view_spec(node, views) -%}
    {%- endfor -%}
    {%- for exposure in graph.exposures.values() if feature_store.is_feature_service(exposure) -%}
      {%- do feature_store.feature_service_spec(exposure, specs) -%}
    {%- endfor -%}
  {%- endif -%}
  {{- return('select 1') -}}
{% endmacro %}
