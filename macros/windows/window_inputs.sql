{#- The two CTEs both window implementations start from: the events (keys, normalized
    time, one column per aggregated value; a count without a column counts a constant 1)
    and the points to evaluate at, each with a row number __fs_row. -#}
{% macro window_inputs(source, plan, timestamp_column, spine, spine_timestamp) -%}
with __fs_events as (
    select
        {%- for key in plan.entity %}
        {{ adapter.quote(key) }},
        {%- endfor %}
        {%- for column in plan.columns %}
        {{ '1' if column is none else adapter.quote(column) }} as __fs_value_{{ loop.index0 }},
        {%- endfor %}
        {{ feature_store.normalize_timestamp(adapter.quote(timestamp_column)) }} as __fs_event_at
    from {{ source }}
    where {% for key in plan.entity %}{{ adapter.quote(key) }} is not null and {% endfor %}{{ adapter.quote(timestamp_column) }} is not null
),
__fs_points as (
    {%- if plan.at == 'spine' %}
    {{ feature_store.spine_rows(spine, spine_timestamp) }}
    {%- else %}
    {%- set keys %}{% for key in plan.entity %}{{ adapter.quote(key) }}, {% endfor %}{% endset %}
    select {{ keys }}__fs_at, row_number() over (order by {{ keys }}__fs_at) as __fs_row
    from (
        select distinct {{ keys }}__fs_event_at as __fs_at from __fs_events
        {%- if plan.at == 'change_points' %}
        {%- for window in plan.windows.values() %}
        union
        select {{ keys }}__fs_event_at + {{ feature_store.interval_literal(window) }} from __fs_events
        {%- endfor %}
        {%- endif %}
    ) as __fs_times
    {%- endif %}
)
{%- endmacro %}
