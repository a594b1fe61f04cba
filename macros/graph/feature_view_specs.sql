{#- Specs of the named feature views, looked up in dbt's graph. Calls ref() for each
    name so the calling model depends on them (and, in unit tests, gets the fixtures). -#}
{% macro feature_view_specs(names) %}
  {%- set specs = [] -%}
  {%- for name in names -%}
    {%- set relation = ref(name) -%}
    {%- if execute -%}
      {%- if graph.nodes is not defined -%}
        {{- exceptions.raise_compiler_error("feature view '" ~ name ~ "': dbt gives this context no graph (dbt unit tests do not),"
            ~ " so keys, timestamps and TTLs cannot be read; call point_in_time_join_sql with the view's spec instead") -}}
      {%- endif -%}
      {%- set models = graph.nodes.values() | selectattr('resource_type', 'equalto', 'model') | list -%}
      {%- set nodes = models | selectattr('name', 'equalto', name) | list -%}
      {%- if nodes | length == 0 or nodes[0].config.meta.feature_store is not defined -%}
        {{- exceptions.raise_compiler_error("'" ~ name ~ "' is not a feature view; feature views: "
            ~ models | selectattr('config.meta.feature_store', 'defined') | map(attribute='name') | sort | join(', ')) -}}
      {%- endif -%}
      {%- set spec = feature_store.feature_view_spec(nodes[0]) -%}
      {%- do spec.update({'relation': relation | string}) -%}
      {%- do specs.append(spec) -%}
    {%- endif -%}
  {%- endfor -%}
  {{- return(specs) -}}
{% endmacro %}
