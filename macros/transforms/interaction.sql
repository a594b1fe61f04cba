{#- The product of two features, as a double. -#}
{% macro interaction(left, right) %}
  {{- return(adapter.dispatch('interaction', 'feature_store')(left, right)) -}}
{% endmacro %}

{% macro default__interaction(left, right) -%}
  (cast({{ left }} as double precision) * cast({{ right }} as double precision))
{%- endmacro %}
