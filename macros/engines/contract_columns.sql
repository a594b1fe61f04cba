{#- A model's YAML columns with each data_type spelled for the engine (engine_data_type),
    for dbt's contract checks below. -#}
{% macro contract_columns(columns) %}
  {%- set translated = {} -%}
  {%- for key, column in columns.items() -%}
    {%- set copy = dict(column) -%}
    {%- if column.get('data_type') -%}
      {%- do copy.update({'data_type': feature_store.engine_data_type(column['data_type'])}) -%}
    {%- endif -%}
    {%- do translated.update({key: copy}) -%}
  {%- endfor -%}
  {{- return(translated) -}}
{% endmacro %}

{#- Overrides of dbt's own contract macros (dbt's dispatch looks in the root project
    first). dbt casts NULL to each YAML data type to learn the declared schema, and
    Postgres also writes them into its CREATE TABLE, both as written: translate first. -#}
{% macro postgres__get_empty_schema_sql(columns) %}
  {{- return(dbt.default__get_empty_schema_sql(feature_store.contract_columns(columns))) -}}
{% endmacro %}

{% macro spark__get_empty_schema_sql(columns) %}
  {{- return(dbt.default__get_empty_schema_sql(feature_store.contract_columns(columns))) -}}
{% endmacro %}

{% macro postgres__get_table_columns_and_constraints() %}
  {%- set columns = adapter.render_raw_columns_constraints(raw_columns=feature_store.contract_columns(model['columns'])) -%}
  {%- set constraints = adapter.render_raw_model_constraints(raw_constraints=model['constraints']) -%}
  ({{ (columns + constraints) | join(', ') }})
{% endmacro %}
