{#- The value `offset` rows earlier in the partition (NULL before the first). -#}
{% macro lag_value(expression, partition_by, order_by, offset=1) %}
  {{- return(adapter.dispatch('lag_value', 'feature_store')(expression, partition_by, order_by, offset)) -}}
{% endmacro %}

{% macro default__lag_value(expression, partition_by, order_by, offset) -%}
  lag({{ expression }}, {{ offset | int }}) over (partition by {{ partition_by }} order by {{ order_by }})
{%- endmacro %}
