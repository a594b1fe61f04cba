{#- The point-in-time join evaluated at one time for every entity of a view: what the
    online store serves after an export at `as_of` (an SQL timestamp expression, UTC).

    Every entity with a row at or before `as_of` comes out once, with the features of its
    row chosen by the same rules as point_in_time_join_sql (latest normalized event time
    <= as_of, ties by pit_tie_break) and kept only when within_ttl of `as_of`; an expired
    entity keeps its keys, with NULL features and a NULL __fs_event_at, so it reads as
    outside_ttl rather than missing. Only the join differs from point_in_time_join_sql:
    every entity shares one time, so the latest row per entity is a ranking, not an
    as-of join against a spine. A row with a NULL key is no entity: no request can name
    it. Columns: the keys, the features, __fs_event_at. -#}
{% macro point_in_time_snapshot_sql(view, as_of) %}
  {{- return(adapter.dispatch('point_in_time_snapshot_sql', 'feature_store')(view, as_of)) -}}
{% endmacro %}

{#- Both implementations' outer select over __fs_latest (one row per entity). -#}
{% macro pit_snapshot_select(view, as_of) -%}
{%- set within = feature_store.within_ttl('__fs_latest.__fs_event_at', as_of, view.ttl) -%}
select
    {%- for key in view.entity %}
    __fs_latest.{{ adapter.quote(key) }},
    {%- endfor %}
    {%- for feature in view.features %}
    case when {{ within }} then __fs_latest.{{ adapter.quote(feature.name) }} end as {{ adapter.quote(feature.name) }},
    {%- endfor %}
    case when {{ within }} then __fs_latest.__fs_event_at end as __fs_event_at
{%- endmacro %}

{#- Portable: rank each entity's rows up to as_of, keep the first. -#}
{% macro default__point_in_time_snapshot_sql(view, as_of) %}
{{ feature_store.pit_snapshot_select(view, as_of) }}
from (
    select __fs_rows.*, row_number() over (
        partition by {% for key in view.entity %}__fs_rows.{{ adapter.quote(key) }}{{ ', ' if not loop.last }}{% endfor %}
        order by __fs_rows.__fs_event_at desc, {{ feature_store.pit_tie_break(view, '__fs_rows') }}
    ) as __fs_rank
    from ({{ feature_store.pit_view_rows(view) }}) as __fs_rows
    where __fs_rows.__fs_event_at <= {{ as_of }}{% for key in view.entity %} and __fs_rows.{{ adapter.quote(key) }} is not null{% endfor %}
) as __fs_latest
where __fs_latest.__fs_rank = 1
{% endmacro %}

{#- DuckDB: the same ranking with QUALIFY, which filters inside the window operator. -#}
{% macro duckdb__point_in_time_snapshot_sql(view, as_of) %}
{{ feature_store.pit_snapshot_select(view, as_of) }}
from (
    select * from ({{ feature_store.pit_view_rows(view) }}) as __fs_rows
    where __fs_rows.__fs_event_at <= {{ as_of }}{% for key in view.entity %} and __fs_rows.{{ adapter.quote(key) }} is not null{% endfor %}
    qualify row_number() over (
        partition by {% for key in view.entity %}__fs_rows.{{ adapter.quote(key) }}{{ ', ' if not loop.last }}{% endfor %}
        order by __fs_rows.__fs_event_at desc, {{ feature_store.pit_tie_break(view, '__fs_rows') }}
    ) = 1
) as __fs_latest
{% endmacro %}
