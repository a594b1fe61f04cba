{#- The training period [start, end) as a predicate on a timestamp column. -#}
{% macro training_period_filter(timestamp_column, start, end) -%}
  {%- set at = feature_store.normalize_timestamp(timestamp_column) -%}
  {{ at }} >= cast('{{ start }}' as timestamp) and {{ at }} < cast('{{ end }}' as timestamp)
{%- endmacro %}
