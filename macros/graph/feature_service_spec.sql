{#- Turns one ML exposure (dbt's graph, or target/manifest.json when the Python package
    calls it) into a feature-service spec, validating it against the feature-view specs
    (see feature_view_spec):

    {'name', 'description', 'owner', 'features': [references], 'views': [view names]}

    An exposure of `type: ml` whose `meta.feature_store.features` lists feature references
    (`view:feature`, `view:*`, `view.v2:feature`) is a feature service: the model that uses
    those features. A service pins versions, so a reference to a versioned view must name
    its version; and its `depends_on` must ref() every view it references (that version),
    which puts the model in dbt's lineage graph and docs. -#}
{% macro feature_service_spec(exposure, views) %}
  {%- set service = "feature service '" ~ exposure.name ~ "'" -%}
  {%- set config_meta = exposure.config.meta if exposure.config is defined and exposure.config and exposure.config.meta else {} -%}
  {%- set meta = config_meta.feature_store if config_meta.feature_store is defined else exposure.meta.feature_store -%}
  {%- if meta is not mapping -%}
    {{- exceptions.raise_compiler_error(service ~ ": meta.feature_store is missing or not a mapping") -}}
  {%- endif -%}
  {%- for key in meta if key not in ['features'] -%}
    {{- exceptions.raise_compiler_error(service ~ ": meta.feature_store." ~ key ~ " is not a known field; valid fields: features") -}}
  {%- endfor -%}
  {%- if exposure.type != 'ml' -%}
    {{- exceptions.raise_compiler_error(service ~ ": an exposure with meta.feature_store must have type: ml (it has type: " ~ exposure.type ~ ")") -}}
  {%- endif -%}
  {%- set references = meta.features if meta.features is defined else none -%}
  {%- if references is string or references is mapping or references is not iterable or references | length == 0 -%}
    {{- exceptions.raise_compiler_error(service ~ ": meta.feature_store.features must be a non-empty list of feature references (view:feature)") -}}
  {%- endif -%}
  {%- set by_name = {} -%}
  {%- set versioned = {} -%}
  {%- for view in views -%}
    {%- do by_name.update({view.name: view}) -%}
    {%- if view.version is not none -%}{%- do versioned.update({view.model: view.name}) -%}{%- endif -%}
  {%- endfor -%}
  {%- set depends_on = exposure.depends_on.nodes if exposure.depends_on and exposure.depends_on.nodes else [] -%}
  {%- set used = [] -%}
  {%- for reference in references -%}
    {%- set parts = (reference | string).split(':') -%}
    {%- if reference is not string or parts | length != 2 or not parts[0] or not parts[1] -%}
      {{- exceptions.raise_compiler_error(service ~ ": feature reference '" ~ reference ~ "' is not of the form view:feature") -}}
    {%- endif -%}
    {%- if parts[0] in versioned and parts[0] not in by_name -%}
      {{- exceptions.raise_compiler_error(service ~ ": feature reference '" ~ reference ~ "' names versioned feature view '"
          ~ parts[0] ~ "' without a version; a service pins one, e.g. " ~ versioned[parts[0]] ~ ":" ~ parts[1]) -}}
    {%- endif -%}
    {%- if parts[0] not in by_name -%}
      {{- exceptions.raise_compiler_error(service ~ ": feature reference '" ~ reference ~ "' names no feature view; feature views: "
          ~ by_name.keys() | sort | join(', ')) -}}
    {%- endif -%}
    {%- set view = by_name[parts[0]] -%}
    {%- set names = view.features | map(attribute='name') | list -%}
    {%- if parts[1] != '*' and parts[1] not in names -%}
      {{- exceptions.raise_compiler_error(service ~ ": feature '" ~ parts[1] ~ "' is not in feature view '" ~ view.name
          ~ "'; its features: " ~ names | join(', ')) -}}
    {%- endif -%}
    {%- if view.unique_id not in depends_on -%}
      {{- exceptions.raise_compiler_error(service ~ ": it uses feature view '" ~ view.name ~ "' but its depends_on does not ref() it; add "
          ~ ("ref('" ~ view.model ~ "', v=" ~ view.version ~ ")" if view.version is not none else "ref('" ~ view.model ~ "')")
          ~ " to depends_on") -}}
    {%- endif -%}
    {%- if view.name not in used -%}{%- do used.append(view.name) -%}{%- endif -%}
  {%- endfor -%}
  {%- set owner = exposure.owner.email or exposure.owner.name if exposure.owner else none -%}
  {{- return({
      'name': exposure.name,
      'description': exposure.description or '',
      'owner': owner,
      'features': references | list,
      'views': used,
  }) -}}
{% endmacro %}
