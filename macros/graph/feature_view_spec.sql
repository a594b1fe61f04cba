{#- Turns one model node (from dbt's graph, or from target/manifest.json when the Python
    package calls it) into a plain feature-view spec, validating its
    config.meta.feature_store on the way. The only place feature metadata is read:

    {'name', 'relation', 'entity': [keys], 'timestamp_column', 'created_timestamp_column',
     'ttl': {'text', 'seconds'} or none, 'online', 'owner', 'tags', 'lifecycle',
     'description', 'features': [{'name', 'data_type', 'description'}],
     'model', 'version', 'latest', 'unique_id'}

    A versioned dbt model (`versions:`) gives one view per version, named `<model>.v<version>`
    (online keys and feature references use that name); `latest` marks dbt's latest_version,
    which a reference without a version means. Every feature needs a description unless the
    var feature_store_require_descriptions is false. -#}
{% macro feature_view_spec(node) %}
  {%- set version = node.version if node.version is defined and node.version is not none else none -%}
  {%- set view_name = node.name ~ ('.v' ~ version if version is not none else '') -%}
  {%- set model = "feature view '" ~ view_name ~ "'" -%}
  {%- set meta = node.config.meta.feature_store if node.config.meta and node.config.meta.feature_store is defined else none -%}
  {%- if meta is not mapping -%}
    {{- exceptions.raise_compiler_error(model ~ ": config.meta.feature_store is missing or not a mapping") -}}
  {%- endif -%}
  {%- set known = ['entity', 'timestamp_column', 'created_timestamp_column', 'ttl', 'online', 'owner', 'tags', 'lifecycle'] -%}
  {%- for key in meta if key not in known -%}
    {{- exceptions.raise_compiler_error(model ~ ": config.meta.feature_store." ~ key ~ " is not a known field; valid fields: " ~ known | join(', ')) -}}
  {%- endfor -%}

  {%- set columns = node.columns or {} -%}
  {%- set described = columns.keys() | list -%}
  {%- set entity = [meta.entity] if meta.entity is string else (meta.entity or []) -%}
  {%- if entity | length == 0 -%}
    {{- exceptions.raise_compiler_error(model ~ ": config.meta.feature_store.entity is required (a join key column or a list of them)") -}}
  {%- endif -%}
  {%- if meta.timestamp_column is not string -%}
    {{- exceptions.raise_compiler_error(model ~ ": config.meta.feature_store.timestamp_column is required (the event time column)") -}}
  {%- endif -%}
  {%- set fields = [] -%}
  {%- for key in entity -%}{%- do fields.append(('entity', key)) -%}{%- endfor -%}
  {%- do fields.append(('timestamp_column', meta.timestamp_column)) -%}
  {%- if meta.created_timestamp_column is defined and meta.created_timestamp_column is not none -%}
    {%- do fields.append(('created_timestamp_column', meta.created_timestamp_column)) -%}
  {%- endif -%}
  {%- for field, column in fields if column not in described -%}
    {{- exceptions.raise_compiler_error(model ~ ": config.meta.feature_store." ~ field ~ " names column '" ~ column
        ~ "', which is not among the model's columns; columns: " ~ described | join(', ')) -}}
  {%- endfor -%}
  {%- if meta.online is defined and meta.online is not none and meta.online is not boolean -%}
    {{- exceptions.raise_compiler_error(model ~ ": config.meta.feature_store.online is " ~ meta.online ~ "; expected true or false") -}}
  {%- endif -%}
  {%- for field, column in fields[entity | length:] if column in entity -%}
    {{- exceptions.raise_compiler_error(model ~ ": column '" ~ column ~ "' is both an entity and the " ~ field
        ~ "; an entity key cannot be a time column") -}}
  {%- endfor -%}
  {#- Keys are matched by type (1 and '1' are different entities), so the type must be known;
      an undeclared one would make reads miss silently. -#}
  {%- set key_types = feature_store.online_key_types() -%}
  {%- for key in entity -%}
    {%- set data_type = (columns[key].data_type or '') | trim -%}
    {%- if not data_type -%}
      {{- exceptions.raise_compiler_error(model ~ ": entity column '" ~ key ~ "' has no data_type; declare it under the model's columns") -}}
    {%- endif -%}
    {%- set base = (data_type | lower).split('(')[0] | trim -%}
    {%- if meta.online is sameas true and base not in key_types.integer and base not in key_types.string -%}
      {{- exceptions.raise_compiler_error(model ~ ": entity column '" ~ key ~ "' is " ~ data_type
          ~ ", which the online store cannot use as a key (online: true); key types: integer ("
          ~ key_types.integer | join(', ') ~ ") or string (" ~ key_types.string | join(', ') ~ ")") -}}
    {%- endif -%}
  {%- endfor -%}

  {%- set keys = fields | map(attribute=1) | list -%}
  {%- set features = [] -%}
  {%- for column in columns.values() if column.name not in keys -%}
    {%- do features.append({'name': column.name, 'data_type': column.data_type, 'description': column.description or ''}) -%}
  {%- endfor -%}
  {%- set undescribed = features | rejectattr('description') | map(attribute='name') | list -%}
  {%- if undescribed and var('feature_store_require_descriptions', true) -%}
    {{- exceptions.raise_compiler_error(model ~ ": feature column(s) " ~ undescribed | join(', ')
        ~ " have no description; describe every feature under the model's columns (or set the var feature_store_require_descriptions: false)") -}}
  {%- endif -%}
  {%- set latest = node.latest_version if node.latest_version is defined and node.latest_version is not none else version -%}
  {{- return({
      'name': view_name,
      'model': node.name,
      'version': version,
      'latest': version is none or (version | string) == (latest | string),
      'unique_id': node.unique_id if node.unique_id is defined else none,
      'relation': node.relation_name,
      'entity': entity,
      'timestamp_column': meta.timestamp_column,
      'created_timestamp_column': meta.created_timestamp_column if meta.created_timestamp_column is defined else none,
      'ttl': feature_store.parse_duration(meta.ttl, model, 'config.meta.feature_store.ttl') if meta.ttl is defined and meta.ttl is not none else none,
      'online': meta.online if meta.online is defined and meta.online is not none else false,
      'owner': meta.owner if meta.owner is defined else none,
      'tags': meta.tags if meta.tags is defined and meta.tags else [],
      'lifecycle': meta.lifecycle if meta.lifecycle is defined else none,
      'description': node.description or '',
      'features': features,
  }) -}}
{% endmacro %}
