{#- The categories of `column` seen in the training period [start, end), as a subquery
    with one column `value` (NULL is never a category). Encodings read their vocabulary
    here only, so a category first seen after the period is unseen, never leaked. -#}
{% macro training_vocabulary(relation, column, timestamp_column, start, end) -%}
  (select distinct {{ adapter.quote(column) }} as value from {{ relation }}
    where {{ feature_store.training_period_filter(adapter.quote(timestamp_column), start, end) }} and {{ adapter.quote(column) }} is not null)
{%- endmacro %}

{#- A category as a SQL literal: numbers as they are, anything else a quoted string. -#}
{% macro category_literal(category) -%}
  {%- if category is number -%}{{ category }}
  {%- else -%}'{{ category | string | replace("'", "''") }}'
  {%- endif -%}
{%- endmacro %}
