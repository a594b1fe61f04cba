{#- on-run-start hook: makes every source table whose meta names a `parquet_location`
    ('{name}' stands for the table's name) readable under its source relation. DuckDB
    reads the files in place through the sources' external_location, so there is nothing
    to do; Postgres cannot read Parquet, so sample_data/load_postgres.py loads the files
    into tables before `dbt build`. -#}
{% macro register_parquet_sources() %}
  {{- return(adapter.dispatch('register_parquet_sources', 'feature_store')()) -}}
{% endmacro %}

{% macro default__register_parquet_sources() %}
  {{- return('select 1') -}}
{% endmacro %}

{#- Spark: an external table over each file (dropping the table keeps the file),
    re-created on every run so a rewritten file is read afresh. Spark would resolve a
    relative table location against the schema's folder in the warehouse, so the file's
    own path, as Spark resolves it when reading (against the working directory), is
    asked for first. -#}
{% macro spark__register_parquet_sources() %}
  {%- if execute -%}
    {%- for node in graph.sources.values() if node.meta.parquet_location is defined -%}
      {%- set location = node.meta.parquet_location | replace('{name}', node.name) -%}
      {%- set found = run_query('select _metadata.file_path from parquet.' ~ adapter.quote(location) ~ ' limit 1') -%}
      {%- set location = found.columns[0].values()[0] if found.rows | length > 0 else location -%}
      {%- do run_query('create schema if not exists ' ~ adapter.quote(node.schema)) -%}
      {%- do run_query('drop table if exists ' ~ node.relation_name) -%}
      {%- do run_query('create table ' ~ node.relation_name ~ " using parquet location '" ~ location ~ "'") -%}
    {%- endfor -%}
  {%- endif -%}
  {{- return('select 1') -}}
{% endmacro %}
