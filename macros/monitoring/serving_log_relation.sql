{#- The serving log's table: `feature_store_serving_log` in the target's own schema.
    `featurestore logs flush` writes it; models read it as source('feature_store',
    'serving_log'), declared at this same place (models/monitoring/monitoring.yml). -#}
{% macro serving_log_relation() %}
  {{- return(api.Relation.create(database=target.database, schema=target.schema, identifier='feature_store_serving_log') | string) -}}
{% endmacro %}
