{#- numerator / denominator as a double; NULL when the denominator is 0 or NULL. -#}
{% macro safe_ratio(numerator, denominator) %}
  {{- return(adapter.dispatch('safe_ratio', 'feature_store')(numerator, denominator)) -}}
{% endmacro %}

{% macro default__safe_ratio(numerator, denominator) -%}
  {%- set double = feature_store.engine_data_type('double') -%}
  (cast({{ numerator }} as {{ double }}) / nullif(cast({{ denominator }} as {{ double }}), 0))
{%- endmacro %}
