{#- "This entity compared with the average entity", point-in-time. For each (entity,
    time) of `source`: the entity's value of `column` then, and the population average
    as of that same time: the mean, over every entity, of its latest value at or before
    the time (rows after it are never seen, unlike an average over the whole table).
    Several rows of one entity at one time: the smallest value counts (the time rules'
    tie-break without a created timestamp).

    Returns the keys, `timestamp_column` and `<name>`, `<name>_population_avg`,
    `<name>_population_size` (entities with a non-NULL latest value),
    `<name>_minus_population` (value - average) and `<name>_vs_population` (value /
    average, NULL when the average is 0), by entity and time. An entity whose latest
    value is NULL is left out of the population. The population's sum is kept as a
    running total of each entity's changes, so it carries the rounding of one addition
    per change (relative 1e-16 each). -#}
{% macro population_relative(source, entity, timestamp_column, column, name=none) %}
  {{- return(adapter.dispatch('population_relative', 'feature_store')(source, entity, timestamp_column, column, name)) -}}
{% endmacro %}

{% macro default__population_relative(source, entity, timestamp_column, column, name) %}
{%- set keys_list = [entity] if entity is string else entity -%}
{%- set keys %}{% for key in keys_list %}{{ adapter.quote(key) }}{{ ', ' if not loop.last }}{% endfor %}{% endset -%}
{%- set name = name or column -%}
{%- set double = feature_store.engine_data_type('double') -%}
with __fs_rows as (
    select {{ keys }}, __fs_at, __fs_value
    from (
        select {{ keys }}, {{ feature_store.normalize_timestamp(adapter.quote(timestamp_column)) }} as __fs_at,
            cast({{ adapter.quote(column) }} as {{ double }}) as __fs_value,
            row_number() over (
                partition by {{ keys }}, {{ feature_store.normalize_timestamp(adapter.quote(timestamp_column)) }}
                order by cast({{ adapter.quote(column) }} as {{ double }}) nulls last
            ) as __fs_rank
        from {{ source }}
        where {% for key in keys_list %}{{ adapter.quote(key) }} is not null and {% endfor %}{{ adapter.quote(timestamp_column) }} is not null
    ) as __fs_ranked
    where __fs_rank = 1
),
{#- Each row replaces the entity's previous value in the population. #}
__fs_changes as (
    select {{ keys }}, __fs_at, __fs_value,
        coalesce(__fs_value, 0) - coalesce(lag(__fs_value) over (partition by {{ keys }} order by __fs_at), 0) as __fs_sum_change,
        case when __fs_value is null then 0 else 1 end
          - case when lag(__fs_value) over (partition by {{ keys }} order by __fs_at) is null then 0 else 1 end as __fs_size_change
    from __fs_rows
),
__fs_population as (
    select __fs_at,
        sum(sum(__fs_sum_change)) over (order by __fs_at rows between unbounded preceding and current row) as __fs_sum,
        sum(sum(__fs_size_change)) over (order by __fs_at rows between unbounded preceding and current row) as __fs_size
    from __fs_changes
    group by __fs_at
),
__fs_relative as (
    select __fs_changes.*, cast(__fs_population.__fs_size as bigint) as __fs_size,
        case when __fs_population.__fs_size > 0 then __fs_population.__fs_sum / __fs_population.__fs_size end as __fs_avg
    from __fs_changes
    inner join __fs_population on __fs_population.__fs_at = __fs_changes.__fs_at
)
select
    {%- for key in keys_list %}
    {{ adapter.quote(key) }},
    {%- endfor %}
    __fs_at as {{ adapter.quote(timestamp_column) }},
    __fs_value as {{ adapter.quote(name) }},
    __fs_avg as {{ adapter.quote(name ~ '_population_avg') }},
    __fs_size as {{ adapter.quote(name ~ '_population_size') }},
    __fs_value - __fs_avg as {{ adapter.quote(name ~ '_minus_population') }},
    __fs_value / nullif(__fs_avg, 0) as {{ adapter.quote(name ~ '_vs_population') }}
from __fs_relative
order by {{ keys }}, __fs_at
{% endmacro %}
