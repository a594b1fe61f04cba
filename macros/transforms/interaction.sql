{#- The product of two features, as a double. -#}
{% macro interaction(left, right) %}
  {{- return(adapter.dispatch('interaction', 'feature_store')(left, right)) -}}
{% endmacro %}

{% macro default__interaction(left, right) -%}
  {%- set double = feature_store.engine_data_type('double') -%}
  (cast({{ left }} as {{ double }}) * cast({{ right }} as {{ double }}))
{%- endmacro %}
