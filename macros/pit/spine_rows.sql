{#- The spine as every time-rule macro reads it: all its columns, its position
    __fs_row (scan order, which is the order rows come out in) and its time normalized
    to UTC, __fs_at. -#}
{% macro spine_rows(spine, spine_timestamp) -%}
select __fs_input.*,
        row_number() over () as __fs_row,
        {{ feature_store.normalize_timestamp('__fs_input.' ~ adapter.quote(spine_timestamp)) }} as __fs_at
    from {{ spine }} as __fs_input
{%- endmacro %}
