{#- Specs of the named feature views, looked up in dbt's graph. Calls ref() for each
    name so the calling model depends on them (and, in unit tests, gets the fixtures). -#}
{% macro feature_view_specs(names) %}
  {%- set specs = [] -%}
  {%- for name in names -%}
    {%- set relation = ref(name) -%}
    {%- if execute -%}
      {%- set nodes = graph.nodes.values() | selectattr('resource_type', 'equalto', 'model') | selectattr('name', 'equalto', name) | list -%}
      {%- set spec = feature_store.feature_view_spec(nodes[0]) -%}
      {%- do spec.update({'relation': relation | string}) -%}
      {%- do specs.append(spec) -%}
    {%- endif -%}
  {%- endfor -%}
  {{- return(specs) -}}
{% endmacro %}
