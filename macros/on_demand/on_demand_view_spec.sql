{#- Turns one on-demand view (a model whose YAML carries config.meta.on_demand_feature_view)
    into a plain spec, validating it against the feature views it reads. The only place
    on-demand metadata is read: the on-run-start hook, the example's models and the Python
    registry all call it, so `dbt build` and Python accept and reject the same YAML.

    `views`: the feature view specs by name (feature_view_spec). Returns

    {'name', 'description', 'owner', 'tags',
     'sources': [{'view', 'features': [names]}],
     'request_fields': [{'name', 'data_type'}],
     'inputs': [{'name', 'data_type', 'view' (none for a request field)}],
     'features': [{'name', 'data_type', 'description', 'expression'}]} -#}
{% macro on_demand_view_spec(node, views) %}
  {%- set model = "on-demand view '" ~ node.name ~ "'" -%}
  {%- set where = model ~ ": config.meta.on_demand_feature_view" -%}
  {%- set meta = node.config.meta.on_demand_feature_view if node.config.meta and node.config.meta.on_demand_feature_view is defined else none -%}
  {%- if meta is not mapping -%}
    {{- exceptions.raise_compiler_error(where ~ " is missing or not a mapping") -}}
  {%- endif -%}
  {%- set known = ['sources', 'request_fields', 'owner', 'tags'] -%}
  {%- for key in meta if key not in known -%}
    {{- exceptions.raise_compiler_error(where ~ "." ~ key ~ " is not a known field; valid fields: " ~ known | join(', ')) -}}
  {%- endfor -%}
  {%- set types = feature_store.on_demand_types() -%}

  {#- sources: feature references, view:feature or view:*, as everywhere else. -#}
  {%- set sources = meta.sources if meta.sources is defined else none -%}
  {%- if sources is string or sources is mapping or not sources -%}
    {{- exceptions.raise_compiler_error(where ~ ".sources must be a non-empty list of feature references such as user_purchase_windows:avg_amount_30d (or view:*)") -}}
  {%- endif -%}
  {%- set chosen = {} -%}
  {%- set order = [] -%}
  {%- for reference in sources -%}
    {%- set parts = (reference | string).split(':') -%}
    {%- if reference is not string or parts | length != 2 or not parts[0] or not parts[1] -%}
      {{- exceptions.raise_compiler_error(where ~ ".sources: '" ~ reference ~ "' is not of the form view:feature") -}}
    {%- endif -%}
    {%- if parts[0] not in views -%}
      {{- exceptions.raise_compiler_error(where ~ ".sources: '" ~ reference ~ "' names feature view '" ~ parts[0]
          ~ "', which does not exist; feature views: " ~ views.keys() | sort | join(', ')) -}}
    {%- endif -%}
    {%- set available = views[parts[0]].features | map(attribute='name') | list -%}
    {%- if parts[1] != '*' and parts[1] not in available -%}
      {{- exceptions.raise_compiler_error(where ~ ".sources: feature '" ~ parts[1] ~ "' is not in feature view '" ~ parts[0]
          ~ "'; its features: " ~ available | join(', ')) -}}
    {%- endif -%}
    {%- if parts[0] not in chosen -%}{%- do chosen.update({parts[0]: []}) -%}{%- do order.append(parts[0]) -%}{%- endif -%}
    {%- for name in (available if parts[1] == '*' else [parts[1]]) if name not in chosen[parts[0]] -%}
      {%- do chosen[parts[0]].append(name) -%}
    {%- endfor -%}
  {%- endfor -%}
  {%- set inputs = [] -%}
  {%- set keys = {} -%}
  {%- set source_specs = [] -%}
  {%- for view_name in order -%}
    {%- set view = views[view_name] -%}
    {%- for key in view.entity -%}{%- do keys.update({key: view_name}) -%}{%- endfor -%}
    {%- set names = view.features | map(attribute='name') | select('in', chosen[view_name]) | list -%}
    {%- do source_specs.append({'view': view_name, 'features': names}) -%}
    {%- for feature in view.features if feature.name in names -%}
      {%- do inputs.append({'name': feature.name, 'data_type': feature.data_type, 'view': view_name}) -%}
    {%- endfor -%}
  {%- endfor -%}

  {#- request_fields: what the caller sends beside the entity keys, each with its type. -#}
  {%- set fields = meta.request_fields if meta.request_fields is defined and meta.request_fields is not none else [] -%}
  {%- if fields is string or fields is mapping -%}
    {{- exceptions.raise_compiler_error(where ~ ".request_fields must be a list of {name, data_type}; e.g. [{name: amount, data_type: double}]") -}}
  {%- endif -%}
  {%- set request_fields = [] -%}
  {%- for field in fields -%}
    {%- if field is not mapping or field.name is not string or field.keys() | list | reject('in', ['name', 'data_type']) | list -%}
      {{- exceptions.raise_compiler_error(where ~ ".request_fields: " ~ field ~ " is not {name, data_type}; e.g. {name: amount, data_type: double}") -}}
    {%- endif -%}
    {%- set data_type = (field.data_type or '') | string | lower | trim -%}
    {%- if data_type not in types -%}
      {{- exceptions.raise_compiler_error(where ~ ".request_fields: field '" ~ field.name ~ "' has data_type '" ~ (field.data_type or '')
          ~ "'; request field types: " ~ types | join(', ')) -}}
    {%- endif -%}
    {%- do request_fields.append({'name': field.name, 'data_type': data_type}) -%}
    {%- do inputs.append({'name': field.name, 'data_type': data_type, 'view': none}) -%}
  {%- endfor -%}

  {#- One name, one meaning: the expressions see every input by its bare name. -#}
  {%- set seen = {} -%}
  {%- for input in inputs -%}
    {%- set what = "request field" if input.view is none else "feature of '" ~ input.view ~ "'" -%}
    {%- if input.name in seen -%}
      {{- exceptions.raise_compiler_error(model ~ ": input name '" ~ input.name ~ "' is both a " ~ seen[input.name] ~ " and a " ~ what
          ~ "; the expressions see inputs by bare name, so each must be unique (rename the request field, or read one of the features)") -}}
    {%- endif -%}
    {%- if input.view is none and input.name in keys -%}
      {{- exceptions.raise_compiler_error(model ~ ": request field '" ~ input.name ~ "' is also an entity key of feature view '"
          ~ keys[input.name] ~ "'; entity rows would hold both under one name: rename the request field") -}}
    {%- endif -%}
    {%- do seen.update({input.name: what}) -%}
  {%- endfor -%}

  {#- features: the model's columns, each a SQL expression over the inputs. -#}
  {%- set features = [] -%}
  {%- for column in (node.columns or {}).values() -%}
    {%- set column_meta = (column.config.meta if column.config is defined and column.config and column.config.meta else none) or column.meta or {} -%}
    {%- set expression = column_meta.expression if column_meta.expression is defined else none -%}
    {%- if expression is not string or not expression | trim -%}
      {{- exceptions.raise_compiler_error(model ~ ": column '" ~ column.name ~ "' has no expression; give it config.meta.expression, a SQL expression over "
          ~ inputs | map(attribute='name') | join(', ')) -}}
    {%- endif -%}
    {%- set data_type = (column.data_type or '') | string | lower | trim -%}
    {%- if data_type not in types -%}
      {{- exceptions.raise_compiler_error(model ~ ": column '" ~ column.name ~ "' has data_type '" ~ (column.data_type or '')
          ~ "'; on-demand feature types: " ~ types | join(', ')) -}}
    {%- endif -%}
    {%- if column.name in seen -%}
      {{- exceptions.raise_compiler_error(model ~ ": feature '" ~ column.name ~ "' has the name of its input (a " ~ seen[column.name] ~ "); give it another name") -}}
    {%- endif -%}
    {%- do features.append({'name': column.name, 'data_type': data_type, 'description': column.description or '', 'expression': expression | trim}) -%}
  {%- endfor -%}
  {%- if not features -%}
    {{- exceptions.raise_compiler_error(model ~ ": no features; declare each as a column with data_type and config.meta.expression") -}}
  {%- endif -%}
  {{- return({
      'name': node.name,
      'description': node.description or '',
      'owner': meta.owner if meta.owner is defined else none,
      'tags': meta.tags if meta.tags is defined and meta.tags else [],
      'sources': source_specs,
      'request_fields': request_fields,
      'inputs': inputs,
      'features': features,
  }) -}}
{% endmacro %}

{#- The types a request field or an on-demand feature may have: ones every engine and
    DuckDB in process spell and compute alike (serving/on_demand.py maps each to Arrow). -#}
{% macro on_demand_types() %}
  {{- return(['boolean', 'integer', 'bigint', 'double', 'varchar']) -}}
{% endmacro %}
