{#- The spine's columns in a join's output: the listed ones, or all of them. -#}
{% macro spine_select(spine_columns, alias) %}
  {{- return(adapter.dispatch('spine_select', 'feature_store')(spine_columns, alias)) -}}
{% endmacro %}

{#- Portable SQL cannot drop columns from `*`, so without a list the helper columns
    __fs_row (spine position) and __fs_at (normalized time) come along. -#}
{% macro default__spine_select(spine_columns, alias) -%}
  {%- if spine_columns is none -%} {{ alias }}.*
  {%- else -%}
    {%- for column in spine_columns -%}{{ alias }}.{{ adapter.quote(column) }}{{ ', ' if not loop.last }}{%- endfor -%}
  {%- endif -%}
{%- endmacro %}

{% macro duckdb__spine_select(spine_columns, alias) -%}
  {%- if spine_columns is none -%} {{ alias }}.* exclude (__fs_row, __fs_at)
  {%- else -%} {{ feature_store.default__spine_select(spine_columns, alias) }}
  {%- endif -%}
{%- endmacro %}
