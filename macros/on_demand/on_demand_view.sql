{#- The body of an on-demand view's model: its expressions over one typed row of NULLs,
    returning no rows. `dbt build` thereby runs every expression on the warehouse (a typo
    or a type error fails the build, naming the model) and `dbt docs` shows the view, its
    columns and the SQL. Nothing reads the relation; features are computed per request. -#}
{% macro on_demand_view() %}
  {%- if not execute -%}{{ return('select 1 as placeholder') }}{%- endif -%}
  {%- set node = graph.nodes[model.unique_id] -%}
  {%- set views = {} -%}
  {%- for other in graph.nodes.values() if other.resource_type == 'model' and other.config.meta and other.config.meta.feature_store is defined -%}
    {%- do views.update({other.name: feature_store.feature_view_spec(other)}) -%}
  {%- endfor -%}
  {%- set spec = feature_store.on_demand_view_spec(node, views) -%}
  {%- set typed = [] -%}
  {%- for input in spec.inputs -%}
    {%- do typed.append('cast(null as ' ~ feature_store.engine_data_type(input.data_type) ~ ') as ' ~ adapter.quote(input.name)) -%}
  {%- endfor -%}
  {{- return(feature_store.on_demand_select(spec, '(select ' ~ typed | join(', ') ~ ') as __fs_typed_inputs') ~ '\nwhere 1 = 0') -}}
{% endmacro %}
