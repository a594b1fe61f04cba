{#- numerator / denominator as a double; NULL when the denominator is 0 or NULL. -#}
{% macro safe_ratio(numerator, denominator) %}
  {{- return(adapter.dispatch('safe_ratio', 'feature_store')(numerator, denominator)) -}}
{% endmacro %}

{% macro default__safe_ratio(numerator, denominator) -%}
  (cast({{ numerator }} as double precision) / nullif(cast({{ denominator }} as double precision), 0))
{%- endmacro %}
