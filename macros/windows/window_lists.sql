{#- The previous DuckDB plan at a spine, replaced by window_buckets.sql and kept so that
    bench/bench_offline.py can time the two side by side (duckdb_old); nothing else calls
    it. The windows evaluated only at the spine rows. Events and spine
    rows of each entity are grouped into lists (times, one list per value column, and
    the spine rows asked about); each spine row then keeps the list elements inside
    (t - w, t] (list_where over a mask), longest window first so shorter ones filter a
    shorter list, and the aggregates run over the kept values themselves: sums add the
    window's own values, never a difference of running totals, so nothing cancels. Work
    per spine row grows with its entity's history, not with the table; the stacked
    RANGE frames evaluated every event too, ten times more rows at 10M events x 1M spine
    rows. The entities are split into `parts` hash partitions evaluated one after the
    other, so only an eighth of the lists is held at once: the peak then comes from
    ordering the output, as in the stacked plan (1.10 GiB against its 1.05 GiB at 10M x
    1M in bench/bench_offline.py; one list stage for all entities took 1.19 GiB). -#}
{% macro window_lists(plan, parts=8) -%}
{#- A count without a column counts the kept times: the constant 1 needs no list. #}
{%- set values = [] %}
{%- for column in plan.columns %}{% if column is not none %}{% do values.append('__fs_value_' ~ loop.index0) %}{% endif %}{% endfor %}
{%- set keys %}{% for key in plan.entity %}{{ adapter.quote(key) }}{{ ', ' if not loop.last }}{% endfor %}{% endset %}
__fs_evaluated as (
    {%- for part in range(parts) %}
    {{ feature_store.window_lists_part(plan, values, keys, 'hash(' ~ keys ~ ') % ' ~ parts ~ ' = ' ~ part) }}
    {{- '\n    union all' if not loop.last }}
    {%- endfor %}
)
{%- endmacro %}

{#- The evaluation of the spine rows whose keys satisfy `partition`, one select. The
    lists of one group are fed the same rows in the same order, so they stay aligned. -#}
{% macro window_lists_part(plan, values, keys, partition) -%}
{%- set windows = plan.windows.values() | sort(attribute='seconds', reverse=true) -%}
{%- set grouped -%}
    select
        list(__fs_at_us) filter (where __fs_row is null) as __fs_times
        {%- for value in values %},
        list({{ value }}) filter (where __fs_row is null) as {{ value }}
        {%- endfor %},
        list({'row': __fs_row, 'at_us': __fs_at_us}) filter (where __fs_row is not null) as __fs_asked
    from (
        select {{ keys }}, {{ feature_store.epoch_microseconds('__fs_event_at') }} as __fs_at_us, cast(null as bigint) as __fs_row{% for value in values %}, {{ value }}{% endfor %}
        from __fs_events where {{ partition }}
        union all
        select {{ keys }}, {{ feature_store.epoch_microseconds('__fs_at') }}, __fs_row{% for value in values %}, null{% endfor %}
        from __fs_points where {{ partition }}
    ) as __fs_stream
    group by {{ keys }}
{%- endset -%}
{#- One row per spine row. Without a time it gets no lists (a mask of NULLs is not
    allowed); with a NULL key it shares its group with no event (events need keys). -#}
{%- set layers = [] -%}
{%- set query -%}
    select __fs_point.row as __fs_row, __fs_point.at_us as __fs_at_us
        {%- for column in ['__fs_times'] + values %},
        case when __fs_point.at_us is not null then {{ column }} end as {{ column }}
        {%- endfor %}
    from (select unnest(__fs_asked) as __fs_point, * exclude (__fs_asked) from ({{ grouped }}) as __fs_grouped) as __fs_unnested
{%- endset -%}
{%- do layers.append(query) -%}
{#- Loop-local `set`s do not leave a for loop, so each layer is appended to a list. -#}
{%- for window in windows -%}
  {%- set times = '__fs_times' if loop.first else '__fs_times_' ~ loop.previtem.seconds -%}
  {%- set suffix = '' if loop.first else '_' ~ loop.previtem.seconds -%}
  {%- set layer -%}
    select *,
        list_where({{ times }}, __fs_mask) as __fs_times_{{ window.seconds }}
        {%- for value in values %},
        list_where({{ value }}{{ suffix }}, __fs_mask) as {{ value }}_{{ window.seconds }}
        {%- endfor %}
    from (
        select *, list_transform({{ times }}, lambda __fs_t: __fs_t > __fs_at_us - {{ window.seconds * 1000000 }} and __fs_t <= __fs_at_us) as __fs_mask
        from ({{ layers | last }}) as __fs_previous
    ) as __fs_masked
  {%- endset -%}
  {%- do layers.append('select * exclude (__fs_mask) from (' ~ layer ~ ') as __fs_within_' ~ window.seconds) -%}
{%- endfor %}
    select
        __fs_row
        {%- for aggregation in plan.aggregations %},
        {{ feature_store.window_list_call(aggregation, aggregation.value ~ '_' ~ aggregation.window.seconds, '__fs_times_' ~ aggregation.window.seconds) }} as {{ adapter.quote(aggregation.name) }}
        {%- endfor %}
    from ({{ layers | last }}) as __fs_within
{%- endmacro %}

{#- One aggregate over a window's kept values (`values`, a list; `times` the kept
    times), with the same results as window_aggregate_call: list_count skips NULLs as
    count(x) does, an empty window gives 0 for count, count_distinct and sum. -#}
{% macro window_list_call(aggregation, values, times) -%}
  {%- set function = aggregation.function -%}
  {%- set double = feature_store.engine_data_type('double') -%}
  {%- if function == 'count' and aggregation.column is none -%} cast(coalesce(len({{ times }}), 0) as bigint)
  {%- elif function == 'count' -%} cast(coalesce(list_count({{ values }}), 0) as bigint)
  {%- elif function == 'count_distinct' -%} cast(coalesce(list_unique({{ values }}), 0) as bigint)
  {%- elif function == 'sum' -%} coalesce(cast(list_sum({{ values }}) as {{ double }}), 0)
  {%- elif function == 'avg' -%} cast(list_avg({{ values }}) as {{ double }})
  {%- elif function == 'stddev' -%} cast(list_stddev_samp({{ values }}) as {{ double }})
  {%- else -%} list_{{ function }}({{ values }})
  {%- endif -%}
{%- endmacro %}
