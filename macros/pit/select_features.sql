{#- Narrows specs to the requested feature references ("view:feature" or "view:*").
    The selection rule (macros/macros.yml; serving.registry.Registry.resolve follows it):
    views in the order of their first reference, each view's features in its own column
    order, each feature once. -#}
{% macro select_features(specs, references) %}
  {%- set by_name = {} -%}
  {%- for spec in specs -%}{%- do by_name.update({spec.name: spec}) -%}{%- endfor -%}
  {%- set wanted = {} -%}
  {%- for reference in references -%}
    {%- set parts = reference.split(':') -%}
    {%- if parts | length != 2 or parts[0] not in by_name -%}
      {{- exceptions.raise_compiler_error("feature reference '" ~ reference ~ "' is not of the form view:feature with a known view; views: " ~ by_name.keys() | join(', ')) -}}
    {%- endif -%}
    {%- set available = by_name[parts[0]].features | map(attribute='name') | list -%}
    {%- if parts[1] != '*' and parts[1] not in available -%}
      {{- exceptions.raise_compiler_error("feature '" ~ parts[1] ~ "' is not in feature view '" ~ parts[0] ~ "'; its features: " ~ available | join(', ')) -}}
    {%- endif -%}
    {%- do wanted.setdefault(parts[0], []) -%}
    {%- for name in (available if parts[1] == '*' else [parts[1]]) if name not in wanted[parts[0]] -%}
      {%- do wanted[parts[0]].append(name) -%}
    {%- endfor -%}
  {%- endfor -%}
  {%- set selected = [] -%}
  {%- for name in wanted -%}
    {%- set spec = by_name[name] -%}
    {%- set narrowed = dict(spec) -%}
    {%- do narrowed.update({'features': spec.features | selectattr('name', 'in', wanted[name]) | list}) -%}
    {%- do selected.append(narrowed) -%}
  {%- endfor -%}
  {{- return(selected) -}}
{% endmacro %}
