{#- DuckDB, at='spine': the windows evaluated only at the spine rows, each row joined to
    the events of its longest window (t - w, t]. Time is cut into buckets of w (integer
    microseconds since the epoch, divided by w), and each spine row asks for its own
    bucket and the one before it: a window of length w never reaches further back, so
    the join has an equality on (keys, bucket) and costs what the two buckets hold, not
    the entity's whole history. Shorter windows are FILTER clauses over the same joined
    rows. Aggregates add the window's own values, never a difference of running totals,
    so nothing cancels.

    Against the per-entity lists (window_lists.sql) it builds no list per entity (list
    aggregation was most of that plan's time) and copies no history per spine row: at
    10M events x 1M spine rows in bench/bench_offline.py it takes about half the CPU time
    and less memory. Every bucket is at least w wide (truncating division widens the one
    around the epoch to 2w), which is all the two-bucket rule needs. -#}
{% macro window_buckets(plan) -%}
{%- set width = plan.longest.seconds * 1000000 -%}
{%- set asked_at = feature_store.epoch_microseconds('__fs_at') -%}
{%- set found_at = feature_store.epoch_microseconds('__fs_event_at') -%}
__fs_evaluated as (
    select
        __fs_asked.__fs_row
        {%- for aggregation in plan.aggregations %}
        {%- set within = none if aggregation.window.seconds == plan.longest.seconds else '__fs_found.__fs_at_us > __fs_asked.__fs_at_us - ' ~ aggregation.window.seconds * 1000000 %},
        {{ feature_store.window_aggregate_call(aggregation, '__fs_found.' ~ aggregation.value, none, within) }} as {{ adapter.quote(aggregation.name) }}
        {%- endfor %}
    from (
        select {% for key in plan.entity %}{{ adapter.quote(key) }}, {% endfor %}__fs_row, {{ asked_at }} as __fs_at_us,
            {{ asked_at }} // {{ width }} - __fs_shift as __fs_bucket
        from __fs_points, (values (0), (1)) as __fs_shifts(__fs_shift)
    ) as __fs_asked
    left join (
        select {% for key in plan.entity %}{{ adapter.quote(key) }}, {% endfor %}{% for value in plan.value_columns %}{{ value }}, {% endfor %}{{ found_at }} as __fs_at_us,
            {{ found_at }} // {{ width }} as __fs_bucket
        from __fs_events
    ) as __fs_found
        on {% for key in plan.entity %}__fs_found.{{ adapter.quote(key) }} = __fs_asked.{{ adapter.quote(key) }} and {% endfor %}__fs_found.__fs_bucket = __fs_asked.__fs_bucket
        and __fs_found.__fs_at_us > __fs_asked.__fs_at_us - {{ width }} and __fs_found.__fs_at_us <= __fs_asked.__fs_at_us
    group by __fs_asked.__fs_row
)
{%- endmacro %}
