{#- DuckDB, at='spine': the windows evaluated only at the spine rows, each row joined to
    the events of its longest window (t - w, t]. Time is cut into buckets of w (integer
    microseconds since the epoch, divided by w); an event belongs to its own bucket and
    the next one, and a spine row looks in its own: a window of length w never reaches
    further back than the bucket before, and each (spine row, event) pair meets exactly
    once. So the join has an equality on (keys, bucket) and costs what two buckets hold,
    not the entity's whole history. Shorter windows are FILTER clauses over the same
    joined rows. Aggregates add the window's own values, never a difference of running
    totals, so nothing cancels.

    Against the per-entity lists (window_lists.sql) it builds no list per entity (list
    aggregation was most of that plan's time) and copies no history per spine row: at
    10M events x 1M spine rows in bench/bench_offline.py it takes about half the CPU
    time. Copying the events into two buckets rather than the spine rows keeps the join's
    hash table to the spine: the peak memory is then the grouping's, below the lists
    plan's. Every bucket is at least w wide (truncating division widens the one around
    the epoch to 2w), which is all the two-bucket rule needs. -#}
{% macro window_buckets(plan) -%}
{%- set width = plan.longest.seconds * 1000000 -%}
{%- set asked_at = feature_store.epoch_microseconds('__fs_at') -%}
{%- set found_at = feature_store.epoch_microseconds('__fs_event_at') -%}
__fs_evaluated as (
    select
        __fs_asked.__fs_row
        {%- for aggregation in plan.aggregations %}
        {%- set within = none if aggregation.window.seconds == plan.longest.seconds else '__fs_found.__fs_at_us > __fs_asked.__fs_at_us - ' ~ aggregation.window.seconds * 1000000 %}
        {#- A count without a column counts the joined events' times: NULL only on a spine
            row that found none. An average is its sum over its count, sharing their states. #}
        {%- set value = '__fs_found.__fs_at_us' if aggregation.column is none else '__fs_found.' ~ aggregation.value %},
        {%- if aggregation.function == 'avg' %}
        {{ feature_store.window_aggregate_call({'function': 'sum'}, value, none, within) }}
            / nullif({{ feature_store.window_aggregate_call({'function': 'count'}, value, none, within) }}, 0)
        {%- else %}
        {{ feature_store.window_aggregate_call(aggregation, value, none, within) }}
        {%- endif %} as {{ adapter.quote(aggregation.name) }}
        {%- endfor %}
    from (
        select {% for key in plan.entity %}{{ adapter.quote(key) }}, {% endfor %}__fs_row, {{ asked_at }} as __fs_at_us,
            {{ asked_at }} // {{ width }} as __fs_bucket
        from __fs_points
    ) as __fs_asked
    left join (
        select {% for key in plan.entity %}{{ adapter.quote(key) }}, {% endfor %}{% for column in plan.columns %}{% if column is not none %}{{ plan.value_columns[loop.index0] }}, {% endif %}{% endfor %}{{ found_at }} as __fs_at_us,
            {{ found_at }} // {{ width }} + __fs_shift as __fs_bucket
        from __fs_events, (values (0), (1)) as __fs_shifts(__fs_shift)
    ) as __fs_found
        on {% for key in plan.entity %}__fs_found.{{ adapter.quote(key) }} = __fs_asked.{{ adapter.quote(key) }} and {% endfor %}__fs_found.__fs_bucket = __fs_asked.__fs_bucket
        and __fs_found.__fs_at_us > __fs_asked.__fs_at_us - {{ width }} and __fs_found.__fs_at_us <= __fs_asked.__fs_at_us
    group by __fs_asked.__fs_row
)
{%- endmacro %}
