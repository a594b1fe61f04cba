{#- x limited to [lower, upper]; either bound may be none. NULL stays NULL (greatest()
    and least() would turn it into a bound on Postgres, DuckDB and Spark). -#}
{% macro clip(expression, lower=none, upper=none) %}
  {{- return(adapter.dispatch('clip', 'feature_store')(expression, lower, upper)) -}}
{% endmacro %}

{% macro default__clip(expression, lower, upper) -%}
  {%- if lower is none and upper is none -%}
    {{- exceptions.raise_compiler_error("clip: lower and upper are both none; expected at least one bound") -}}
  {%- endif -%}
  {%- for bound in [lower, upper] if bound is not none and bound is not number -%}
    {{- exceptions.raise_compiler_error("clip: bound " ~ bound ~ " is not a number; expected numbers or none") -}}
  {%- endfor -%}
  {%- if lower is not none and upper is not none and lower > upper -%}
    {{- exceptions.raise_compiler_error("clip: lower " ~ lower ~ " is above upper " ~ upper ~ "; expected lower <= upper") -}}
  {%- endif -%}
  (case when {{ expression }} is null then null
    {%- if lower is not none %} when {{ expression }} < {{ lower }} then {{ lower }}{% endif %}
    {%- if upper is not none %} when {{ expression }} > {{ upper }} then {{ upper }}{% endif %}
    else {{ expression }} end)
{%- endmacro %}
