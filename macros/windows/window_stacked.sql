{#- DuckDB: the evaluation points are stacked into the event stream as value-less rows,
    and one sort per entity feeds every window through RANGE frames (segment trees),
    instead of a range join whose size grows with the window. Every row of the stream is
    evaluated, so this suits points that are mostly events (at='events',
    'change_points'). -#}
{% macro window_stacked(plan) -%}
__fs_stacked as (
    select {% for key in plan.entity %}{{ adapter.quote(key) }}, {% endfor %}__fs_event_at as __fs_at, cast(null as bigint) as __fs_row{% for value in plan.value_columns %}, {{ value }}{% endfor %}
    from __fs_events
    union all
    select {% for key in plan.entity %}{{ adapter.quote(key) }}, {% endfor %}__fs_at, __fs_row{% for value in plan.value_columns %}, null{% endfor %}
    from __fs_points
),
__fs_evaluated as (
    select
        __fs_row
        {%- for aggregation in plan.aggregations %},
        {{ feature_store.window_aggregate_call(aggregation, aggregation.value, '__fs_window_' ~ aggregation.window.seconds) }} as {{ adapter.quote(aggregation.name) }}
        {%- endfor %}
    from __fs_stacked
    window
        {%- for seconds, window in plan.windows.items() %}
        __fs_window_{{ seconds }} as (
            partition by {% for key in plan.entity %}{{ adapter.quote(key) }}{{ ', ' if not loop.last }}{% endfor %}
            order by {{ feature_store.epoch_microseconds('__fs_at') }}
            {{ feature_store.window_frame(window) }}
        ){{ ',' if not loop.last }}
        {%- endfor %}
    qualify __fs_row is not null
)
{%- endmacro %}
