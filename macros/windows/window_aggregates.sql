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

{#- DuckDB: at a spine, each spine row joined to its events by (keys, time bucket) (see
    window_buckets.sql), so only the spine rows are evaluated; otherwise every event is an
    evaluation point anyway, and the stacked RANGE frames serve (window_stacked.sql). -#}
{% macro duckdb__window_aggregates(source, entity, timestamp_column, aggregations, at, spine, spine_timestamp, spine_columns) %}
{%- set plan = feature_store.window_plan(entity, aggregations, at, spine, spine_timestamp) -%}
{{ feature_store.window_inputs(source, plan, timestamp_column, spine, spine_timestamp) }},
{{ feature_store.window_buckets(plan) if plan.at == 'spine' else feature_store.window_stacked(plan) }}
{{ feature_store.window_output(plan, timestamp_column, spine_columns) }}
{% endmacro %}
