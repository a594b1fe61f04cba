{#- Creates the serving log's table when it is missing (the first flush). -#}
{% macro serving_log_create_sql(relation) %}
  {{- return(adapter.dispatch('serving_log_create_sql', 'feature_store')(relation)) -}}
{% endmacro %}

{% macro default__serving_log_create_sql(relation) -%}
create table if not exists {{ relation }} (
    {%- for name, data_type in feature_store.serving_log_columns() %}
    {{ adapter.quote(name) }} {{ feature_store.engine_data_type(data_type) }}{{ ',' if not loop.last }}
    {%- endfor %}
)
{%- endmacro %}

{#- Spark: without USING a Hive-enabled session makes a text-format Hive table. -#}
{% macro spark__serving_log_create_sql(relation) -%}
{{ feature_store.default__serving_log_create_sql(relation) }} using parquet
{%- endmacro %}
