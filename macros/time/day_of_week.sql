{#- The weekday of a naive UTC timestamp as a number, 0 = Sunday to 6 = Saturday. -#}
{% macro day_of_week(expression) %}
  {{- return(adapter.dispatch('day_of_week', 'feature_store')(expression)) -}}
{% endmacro %}

{% macro default__day_of_week(expression) -%}
  extract(dow from {{ expression }})
{%- endmacro %}

{#- Spark's dow counts from 1 = Sunday. -#}
{% macro spark__day_of_week(expression) -%}
  (extract(dow from {{ expression }}) - 1)
{%- endmacro %}
