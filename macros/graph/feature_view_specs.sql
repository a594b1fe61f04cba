{#- Specs of the named feature views, looked up in dbt's graph. Calls ref() for each
    name so the calling model depends on them (and, in unit tests, gets the fixtures).
    A name may pick a version of a versioned model (`product_popularity.v1`); without
    one it means dbt's latest version, as ref() does. -#}
{% macro feature_view_specs(names) %}
  {%- set specs = [] -%}
  {%- for name in names -%}
    {%- set model_name, version = feature_store.split_view_name(name) -%}
    {%- set relation = ref(model_name, v=version) if version is not none else ref(model_name) -%}
    {%- if execute -%}
      {%- if graph.nodes is not defined -%}
        {{- exceptions.raise_compiler_error("feature view '" ~ name ~ "': dbt gives this context no graph (dbt unit tests do not),"
            ~ " so keys, timestamps and TTLs cannot be read; call point_in_time_join_sql with the view's spec instead") -}}
      {%- endif -%}
      {%- set models = graph.nodes.values() | selectattr('resource_type', 'equalto', 'model') | list -%}
      {%- set nodes = [] -%}
      {%- for node in models if node.name == model_name -%}
        {%- set latest = node.latest_version if node.latest_version is not none else node.version -%}
        {%- if (node.version | string) == ((version if version is not none else latest) | string) -%}
          {%- do nodes.append(node) -%}
        {%- endif -%}
      {%- endfor -%}
      {%- if nodes | length == 0 or nodes[0].config.meta.feature_store is not defined -%}
        {{- exceptions.raise_compiler_error("'" ~ name ~ "' is not a feature view; feature views: "
            ~ models | selectattr('config.meta.feature_store', 'defined') | map(attribute='name') | unique | sort | join(', ')) -}}
      {%- endif -%}
      {%- set spec = feature_store.feature_view_spec(nodes[0]) -%}
      {#- Named as the caller wrote it: feature references and full feature names follow it. -#}
      {%- do spec.update({'relation': relation | string, 'name': name}) -%}
      {%- do specs.append(spec) -%}
    {%- endif -%}
  {%- endfor -%}
  {{- return(specs) -}}
{% endmacro %}
