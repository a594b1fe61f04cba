{#- The statement creating a schema (a Spark database) unless it exists, named as the
    target's adapter quotes it. Saved training sets use it for their own schema. -#}
{% macro create_schema_sql(schema) %}
  {{- return(adapter.dispatch('create_schema_sql', 'feature_store')(schema)) -}}
{% endmacro %}

{% macro default__create_schema_sql(schema) -%}
create schema if not exists {{ adapter.quote(schema) }}
{%- endmacro %}
