{#- The spine as every time-rule macro reads it: all its columns, its position
    __fs_row (scan order, which is the order rows come out in) and its time normalized
    to UTC, __fs_at. -#}
{% macro spine_rows(spine, spine_timestamp) -%}
select __fs_input.*,
        {{ feature_store.spine_position() }} as __fs_row,
        {{ feature_store.normalize_timestamp('__fs_input.' ~ adapter.quote(spine_timestamp)) }} as __fs_at
    from {{ spine }} as __fs_input
{%- endmacro %}

{#- A row's position in the scan, numbered from 1. -#}
{% macro spine_position() %}
  {{- return(adapter.dispatch('spine_position', 'feature_store')()) -}}
{% endmacro %}

{% macro default__spine_position() -%}
  row_number() over ()
{%- endmacro %}

{#- Spark numbers rows only in an order: monotonically_increasing_id() follows the scan
    (partition, then position), and Spark does not inline a nondeterministic CTE that
    is referenced twice, so every reference sees the same numbers. -#}
{% macro spark__spine_position() -%}
  row_number() over (order by monotonically_increasing_id())
{%- endmacro %}
