{#- The bucket index of x among sorted boundaries b1 < b2 < ... < bn: 0 below b1, i for
    b_i <= x < b_(i+1), n at or above bn (left-closed, as numpy.digitize). NULL stays
    NULL. -#}
{% macro bucketize(expression, boundaries) %}
  {{- return(adapter.dispatch('bucketize', 'feature_store')(expression, boundaries)) -}}
{% endmacro %}

{% macro default__bucketize(expression, boundaries) -%}
  {%- if boundaries is string or boundaries is not iterable or boundaries | length == 0 -%}
    {{- exceptions.raise_compiler_error("bucketize: boundaries is " ~ boundaries ~ "; expected a non-empty list of increasing numbers") -}}
  {%- endif -%}
  {%- for bound in boundaries -%}
    {%- if bound is not number or (not loop.first and bound <= loop.previtem) -%}
      {{- exceptions.raise_compiler_error("bucketize: boundaries " ~ boundaries ~ " are not strictly increasing numbers; expected e.g. [0, 10, 100]") -}}
    {%- endif -%}
  {%- endfor -%}
  cast(case when {{ expression }} is null then null
    {%- for bound in boundaries %} when {{ expression }} < {{ bound }} then {{ loop.index0 }}{% endfor %}
    else {{ boundaries | length }} end as bigint)
{%- endmacro %}
