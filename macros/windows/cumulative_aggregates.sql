{#- Lifetime aggregates of `source` per entity, point-in-time: at time t each one covers
    every event of the entity at or before t (the as-of rule: the events at exactly t,
    all of them, count). Exact: sums add the events' own values.

    at='events'  one row per (entity, event time), by entity and time.
    at='spine'   one row per row of `spine`, in spine order, at `spine_timestamp`.

    aggregations: [{'name', 'function', 'column'}]; function is count, sum, avg, min or
    max; count without a column counts events. With no events yet (an empty history)
    count and sum are 0, avg, min and max NULL; a spine row with a NULL key or time gets
    NULL everywhere. -#}
{% macro cumulative_aggregates(source, entity, timestamp_column, aggregations, at='events', spine=none, spine_timestamp=none, spine_columns=none) %}
  {{- return(adapter.dispatch('cumulative_aggregates', 'feature_store')(source, entity, timestamp_column, aggregations, at, spine, spine_timestamp, spine_columns)) -}}
{% endmacro %}

{#- Events: partial aggregates per (entity, time), then running totals over them, so
    ties at one time share one row and one value. Spine: each spine row joined to the
    entity's events up to its time. -#}
{% macro default__cumulative_aggregates(source, entity, timestamp_column, aggregations, at, spine, spine_timestamp, spine_columns) %}
{%- set plan = feature_store.cumulative_plan(entity, aggregations, at, spine, spine_timestamp) -%}
{%- set keys %}{% for key in plan.entity %}{{ adapter.quote(key) }}{{ ', ' if not loop.last }}{% endfor %}{% endset -%}
{{ feature_store.window_inputs(source, plan, timestamp_column, spine, spine_timestamp) }},
{%- if plan.at == 'spine' %}
__fs_evaluated as (
    select
        __fs_points.__fs_row
        {%- for aggregation in plan.aggregations %},
        {{ feature_store.window_aggregate_call(aggregation, '__fs_events.' ~ aggregation.value, none) }} as {{ adapter.quote(aggregation.name) }}
        {%- endfor %}
    from __fs_points
    left join __fs_events
        on {% for key in plan.entity %}__fs_events.{{ adapter.quote(key) }} = __fs_points.{{ adapter.quote(key) }} and {% endfor %}__fs_events.__fs_event_at <= __fs_points.__fs_at
    group by __fs_points.__fs_row
)
{%- else %}
__fs_per_time as (
    select {{ keys }}, __fs_event_at
        {%- for value in plan.value_columns %},
        count({{ value }}) as {{ value }}_count, sum({{ value }}) as {{ value }}_sum,
        min({{ value }}) as {{ value }}_min, max({{ value }}) as {{ value }}_max
        {%- endfor %}
    from __fs_events
    group by {{ keys }}, __fs_event_at
),
__fs_running as (
    select {{ keys }}, __fs_event_at
        {%- for aggregation in plan.aggregations %}
        {%- set over = 'over (partition by ' ~ keys ~ ' order by __fs_event_at rows between unbounded preceding and current row)' %},
        {%- set value = aggregation.value %}
        {%- if aggregation.function == 'count' %}
        cast(sum({{ value }}_count) {{ over }} as bigint)
        {%- elif aggregation.function == 'sum' %}
        coalesce(cast(sum({{ value }}_sum) {{ over }} as {{ feature_store.engine_data_type('double') }}), 0)
        {%- elif aggregation.function == 'avg' %}
        cast(sum({{ value }}_sum) {{ over }} as {{ feature_store.engine_data_type('double') }}) / nullif(sum({{ value }}_count) {{ over }}, 0)
        {%- else %}
        {{ aggregation.function }}({{ value }}_{{ aggregation.function }}) {{ over }}
        {%- endif %} as {{ adapter.quote(aggregation.name) }}
        {%- endfor %}
    from __fs_per_time
),
__fs_evaluated as (
    select __fs_points.__fs_row{% for aggregation in plan.aggregations %}, __fs_running.{{ adapter.quote(aggregation.name) }}{% endfor %}
    from __fs_points
    inner join __fs_running
        on {% for key in plan.entity %}__fs_running.{{ adapter.quote(key) }} = __fs_points.{{ adapter.quote(key) }} and {% endfor %}__fs_running.__fs_event_at = __fs_points.__fs_at
)
{%- endif %}
{{ feature_store.window_output(plan, timestamp_column, spine_columns) }}
{% endmacro %}

{#- Validates cumulative_aggregates' arguments into the plan window_inputs and
    window_output read (no windows: every aggregate covers the whole history). -#}
{% macro cumulative_plan(entity, aggregations, at, spine, spine_timestamp) %}
  {%- set functions = ['count', 'sum', 'avg', 'min', 'max'] -%}
  {%- if at not in ['events', 'spine'] -%}
    {{- exceptions.raise_compiler_error("cumulative_aggregates: at is '" ~ at ~ "'; expected events or spine") -}}
  {%- endif -%}
  {%- if at == 'spine' and (spine is none or spine_timestamp is none) -%}
    {{- exceptions.raise_compiler_error("cumulative_aggregates: at='spine' needs spine and spine_timestamp") -}}
  {%- endif -%}
  {%- set plan = {'entity': [entity] if entity is string else entity, 'at': at, 'aggregations': [], 'columns': [], 'value_columns': [], 'windows': {}} -%}
  {%- for aggregation in aggregations -%}
    {%- do feature_store.window_plan_check(aggregation, loop.index, 'cumulative_aggregates', functions) -%}
    {%- set column = aggregation.column or none -%}
    {%- if column not in plan.columns -%}
      {%- do plan.columns.append(column) -%}
      {%- do plan.value_columns.append('__fs_value_' ~ (plan.columns | length - 1)) -%}
    {%- endif -%}
    {%- do plan.aggregations.append({'name': aggregation.name, 'function': aggregation.function, 'column': column, 'value': '__fs_value_' ~ plan.columns.index(column)}) -%}
  {%- endfor -%}
  {{- return(plan) -}}
{% endmacro %}
