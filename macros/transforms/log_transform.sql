{#- ln(1 + x): defined at 0, compresses heavy tails; NULL where x <= -1. -#}
{% macro log_transform(expression) %}
  {{- return(adapter.dispatch('log_transform', 'feature_store')(expression)) -}}
{% endmacro %}

{% macro default__log_transform(expression) -%}
  (case when {{ expression }} > -1 then ln(1 + {{ expression }}) end)
{%- endmacro %}
