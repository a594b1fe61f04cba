{#- A naive UTC instant written as 'YYYY-MM-DD HH:MM:SS[.ffffff]', as a SQL timestamp. -#}
{% macro timestamp_literal(text) %}
  {{- return(adapter.dispatch('timestamp_literal', 'feature_store')(text)) -}}
{% endmacro %}

{% macro default__timestamp_literal(text) -%}
  cast('{{ text }}' as timestamp)
{%- endmacro %}
