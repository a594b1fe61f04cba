{#- Time-windowed aggregates of `source` per entity, evaluated exactly at chosen times.
    A window of length w at time t holds the events in (t - w, t] (see time_bounds.sql).

    at='events'         one row per (entity, event time): the value as each event lands.
    at='change_points'  also one row at every time an event leaves a window (event time +
                        w). Between two rows the values cannot change, so an as-of join
                        of this table at any time t equals the window evaluated at t:
                        use it for feature views that are joined and exported.
    at='spine'          one row per row of `spine`, in spine order, evaluated at
                        `spine_timestamp`: never stale, however long ago the last event.

    aggregations: [{'name', 'function', 'column', 'window'}]; function is one of count,
    sum, avg, min, max, stddev (sample), count_distinct; count without a column counts
    events. Over an empty window count, count_distinct and sum are 0, the rest NULL. -#}
{% macro window_aggregates(source, entity, timestamp_column, aggregations, at='events', spine=none, spine_timestamp=none, spine_columns=none) %}
  {{- return(adapter.dispatch('window_aggregates', 'feature_store')(source, entity, timestamp_column, aggregations, at, spine, spine_timestamp, spine_columns)) -}}
{% endmacro %}

{#- Portable: each evaluation point range-joined to the events of its longest window. -#}
{% macro default__window_aggregates(source, entity, timestamp_column, aggregations, at, spine, spine_timestamp, spine_columns) %}
{%- set plan = feature_store.window_plan(entity, aggregations, at, spine, spine_timestamp) -%}
{{ feature_store.window_inputs(source, plan, timestamp_column, spine, spine_timestamp) }},
__fs_evaluated as (
    select
        __fs_points.__fs_row
        {%- for aggregation in plan.aggregations %},
        {{ feature_store.window_aggregate_call(aggregation, 'case when ' ~ feature_store.in_window('__fs_events.__fs_event_at', '__fs_points.__fs_at', aggregation.window) ~ ' then __fs_events.' ~ aggregation.value ~ ' end', none) }} as {{ adapter.quote(aggregation.name) }}
        {%- endfor %}
    from __fs_points
    left join __fs_events
        on {% for key in plan.entity %}__fs_events.{{ adapter.quote(key) }} = __fs_points.{{ adapter.quote(key) }} and {% endfor %}{{ feature_store.in_window('__fs_events.__fs_event_at', '__fs_points.__fs_at', plan.longest) }}
    group by __fs_points.__fs_row
)
{{ feature_store.window_output(plan, timestamp_column, spine_columns) }}
{% endmacro %}

{#- DuckDB: evaluation points are stacked into the event stream as value-less rows, and
    one sort per entity feeds every window through RANGE frames (segment trees), instead
    of a range join whose size grows with the window. -#}
{% macro duckdb__window_aggregates(source, entity, timestamp_column, aggregations, at, spine, spine_timestamp, spine_columns) %}
{%- set plan = feature_store.window_plan(entity, aggregations, at, spine, spine_timestamp) -%}
{{ feature_store.window_inputs(source, plan, timestamp_column, spine, spine_timestamp) }},
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
{{ feature_store.window_output(plan, timestamp_column, spine_columns) }}
{% endmacro %}
