{#- (x - mean) / stddev, with mean and sample stddev of `column` in `relation` taken only
    from rows whose `timestamp_column` falls in the training period [start, end), so
    rows after the period never leak into the scaling. NULL when the stddev is 0. -#}
{% macro scale_zscore(expression, relation, column, timestamp_column, start, end) %}
  {{- return(adapter.dispatch('scale_zscore', 'feature_store')(expression, relation, column, timestamp_column, start, end)) -}}
{% endmacro %}

{% macro default__scale_zscore(expression, relation, column, timestamp_column, start, end) -%}
  {%- set period = feature_store.training_period_filter(timestamp_column, start, end) -%}
  (({{ expression }} - (select avg({{ column }}) from {{ relation }} where {{ period }}))
    / nullif((select stddev_samp({{ column }}) from {{ relation }} where {{ period }}), 0))
{%- endmacro %}
