{#- The square root as a double; NULL for negative or NULL x (Postgres would raise,
    Spark would give NaN). -#}
{% macro sqrt_transform(expression) %}
  {{- return(adapter.dispatch('sqrt_transform', 'feature_store')(expression)) -}}
{% endmacro %}

{% macro default__sqrt_transform(expression) -%}
  (case when {{ expression }} >= 0 then sqrt(cast({{ expression }} as {{ feature_store.engine_data_type('double') }})) end)
{%- endmacro %}
