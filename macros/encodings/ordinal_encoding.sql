{#- The category's code among the training period's vocabulary: 1..K in `categories`'
    order when given (categories never seen in the period are left out, later ones keep
    their code), else in the sorted order of the values seen (on Postgres text sorts by
    the column's collation: pass categories for one order on every engine). 0 is the bucket for NULL and
    for every category outside that vocabulary, so a category that first appears at
    serving time gets 0 and never moves another category's code. -#}
{% macro ordinal_encoding(expression, relation, column, timestamp_column, start, end, categories=none) %}
  {{- return(adapter.dispatch('ordinal_encoding', 'feature_store')(expression, relation, column, timestamp_column, start, end, categories)) -}}
{% endmacro %}

{% macro default__ordinal_encoding(expression, relation, column, timestamp_column, start, end, categories) -%}
  {%- set vocabulary = feature_store.training_vocabulary(relation, column, timestamp_column, start, end) -%}
  {%- if categories is none -%}
    {%- set codes -%}
      (select value, dense_rank() over (order by value) as code from {{ vocabulary }} as __fs_vocabulary)
    {%- endset -%}
  {%- else -%}
    {%- if categories is string or categories | length == 0 -%}
      {{- exceptions.raise_compiler_error("ordinal_encoding: categories is " ~ categories ~ "; expected a non-empty list, or none for the sorted training vocabulary") -}}
    {%- endif -%}
    {%- set codes -%}
      (select value, code from (values {% for category in categories %}({{ feature_store.category_literal(category) }}, {{ loop.index }}){{ ', ' if not loop.last }}{% endfor %}) as __fs_declared (value, code)
        where value in (select value from {{ vocabulary }} as __fs_vocabulary))
    {%- endset -%}
  {%- endif -%}
  cast(coalesce((select max(__fs_codes.code) from {{ codes }} as __fs_codes where __fs_codes.value = {{ expression }}), 0) as bigint)
{%- endmacro %}
