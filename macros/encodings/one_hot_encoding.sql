{#- One 0/1 column `<name>_<category>` per declared category, plus `<name>__other`.
    A category column is 1 only when the value is that category and the category occurs
    in the training period [start, end); `<name>__other` is 1 for NULL and for every
    value outside that vocabulary. The columns are the declared ones whatever the data
    holds, so a category that first appears at serving time lands in __other: it neither
    leaks into training nor shifts a column. -#}
{% macro one_hot_encoding(expression, relation, column, timestamp_column, start, end, categories, name) %}
  {{- return(adapter.dispatch('one_hot_encoding', 'feature_store')(expression, relation, column, timestamp_column, start, end, categories, name)) -}}
{% endmacro %}

{% macro default__one_hot_encoding(expression, relation, column, timestamp_column, start, end, categories, name) -%}
  {%- if categories is none or categories is string or categories | length == 0 -%}
    {{- exceptions.raise_compiler_error("one_hot_encoding: categories is " ~ categories ~ "; expected a non-empty list of the categories to give columns") -}}
  {%- endif -%}
  {%- set vocabulary = feature_store.training_vocabulary(relation, column, timestamp_column, start, end) -%}
  {%- set matches = [] -%}
  {%- for category in categories -%}
    {%- set literal = feature_store.category_literal(category) -%}
    {#- A scalar subquery, not IN (subquery): Spark allows IN subqueries only in filters. #}
    {%- do matches.append('(' ~ expression ~ ' = ' ~ literal ~ ' and (select count(*) from ' ~ vocabulary ~ ' as __fs_vocabulary where value = ' ~ literal ~ ') > 0)') -%}
  {%- endfor -%}
  {%- for category in categories -%}
  cast(case when {{ matches[loop.index0] }} then 1 else 0 end as bigint) as {{ adapter.quote(name ~ '_' ~ category) }},
  {% endfor -%}
  cast(case when {{ matches | join(' or ') }} then 0 else 1 end as bigint) as {{ adapter.quote(name ~ '__other') }}
{%- endmacro %}
