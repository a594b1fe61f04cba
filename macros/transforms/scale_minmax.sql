{#- (x - min) / (max - min), with min and max of `column` in `relation` taken only from
    the training period [start, end). Values outside it may fall outside [0, 1]. -#}
{% macro scale_minmax(expression, relation, column, timestamp_column, start, end) %}
  {{- return(adapter.dispatch('scale_minmax', 'feature_store')(expression, relation, column, timestamp_column, start, end)) -}}
{% endmacro %}

{% macro default__scale_minmax(expression, relation, column, timestamp_column, start, end) -%}
  {%- set period = feature_store.training_period_filter(timestamp_column, start, end) -%}
  (({{ expression }} - (select min({{ column }}) from {{ relation }} where {{ period }}))
    / nullif((select max({{ column }}) - min({{ column }}) from {{ relation }} where {{ period }}), 0))
{%- endmacro %}
