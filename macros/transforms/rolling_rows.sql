{#- An aggregate over the current row and the `rows - 1` rows before it, per partition. -#}
{% macro rolling_rows(expression, function, partition_by, order_by, rows) %}
  {{- return(adapter.dispatch('rolling_rows', 'feature_store')(expression, function, partition_by, order_by, rows)) -}}
{% endmacro %}

{% macro default__rolling_rows(expression, function, partition_by, order_by, rows) -%}
  {%- if rows | int < 1 -%}
    {{- exceptions.raise_compiler_error("rolling_rows: rows is " ~ rows ~ "; expected a whole number >= 1") -}}
  {%- endif -%}
  {{ function }}({{ expression }}) over (partition by {{ partition_by }} order by {{ order_by }} rows between {{ rows | int - 1 }} preceding and current row)
{%- endmacro %}
