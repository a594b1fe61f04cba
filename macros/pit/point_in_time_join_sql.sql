{#- The point-in-time join itself, from plain specs (see feature_view_spec). Also
    rendered by the Python package, so training sets, get_historical_features and the
    online exporter all run this one piece of SQL.

    For each spine row and each view: the row with the spine's keys and the latest
    timestamp <= the spine timestamp, if that timestamp is also within the TTL; ties on
    timestamp go to the latest created timestamp, then to the smallest feature values.
    Every spine row comes out once, in spine order; features are NULL where no row
    qualifies. `spine_columns` lists the spine columns to return (default: all). -#}
{% macro point_in_time_join_sql(spine, spine_timestamp, views, full_feature_names=false, include_timestamps=false, spine_columns=none) %}
  {{- return(adapter.dispatch('point_in_time_join_sql', 'feature_store')(spine, spine_timestamp, views, full_feature_names, include_timestamps, spine_columns)) -}}
{% endmacro %}

{#- Output names, checked for collisions once for both implementations. -#}
{% macro pit_output_names(views, full_feature_names, include_timestamps) %}
  {%- set names = [] -%}
  {%- for view in views -%}
    {%- for feature in view.features -%}
      {%- do names.append(view.name | replace('.', '_') ~ '__' ~ feature.name if full_feature_names else feature.name) -%}
    {%- endfor -%}
    {%- if include_timestamps -%}{%- do names.append(view.name | replace('.', '_') ~ '__event_timestamp') -%}{%- endif -%}
  {%- endfor -%}
  {%- for name in names if names.count(name) > 1 -%}
    {{- exceptions.raise_compiler_error("feature name '" ~ name ~ "' comes from more than one feature view; ask for full_feature_names (view__feature) or drop one") -}}
  {%- endfor -%}
  {{- return(names) -}}
{% endmacro %}


{#- The tie-break order among rows of one entity at one timestamp. -#}
{% macro pit_tie_break(view, alias) -%}
  {%- if view.created_timestamp_column -%}{{ alias }}.{{ adapter.quote(view.created_timestamp_column) }} desc nulls last{{ ', ' if view.features }}{%- endif -%}
  {%- for feature in view.features -%}{{ alias }}.{{ adapter.quote(feature.name) }} asc nulls last{{ ', ' if not loop.last }}{%- endfor -%}
  {%- if not view.created_timestamp_column and not view.features -%}1{%- endif -%}
{%- endmacro %}

{#- A view's rows as both implementations read them: keys, created timestamp, features
    and the normalized event time __fs_event_at. -#}
{% macro pit_view_rows(view) -%}
select
    {%- for key in view.entity %}
    {{ adapter.quote(key) }},
    {%- endfor %}
    {%- if view.created_timestamp_column %}
    {{ adapter.quote(view.created_timestamp_column) }},
    {%- endif %}
    {%- for feature in view.features %}
    {{ adapter.quote(feature.name) }},
    {%- endfor %}
    {{ feature_store.normalize_timestamp(adapter.quote(view.timestamp_column)) }} as __fs_event_at
from {{ view.relation }} as __fs_source
{%- endmacro %}

{#- The final select of both implementations: every spine row, in order, left-joined
    to each view's __fs_match_<n> (__fs_row, features, __fs_event_at). -#}
{% macro pit_select_matches(spine_columns, views, names, include_timestamps) -%}
select
    {{ feature_store.spine_select(spine_columns, '__fs_spine') }}
    {%- set position = namespace(value=0) %}
    {%- for view in views %}
    {%- set outer = loop %}
    {%- for feature in view.features %},
    __fs_match_{{ outer.index }}.{{ adapter.quote(feature.name) }} as {{ adapter.quote(names[position.value]) }}
    {%- set position.value = position.value + 1 %}
    {%- endfor %}
    {%- if include_timestamps %},
    __fs_match_{{ outer.index }}.__fs_event_at as {{ adapter.quote(names[position.value]) }}
    {%- set position.value = position.value + 1 %}
    {%- endif %}
    {%- endfor %}
from __fs_spine
{%- for view in views %}
left join __fs_match_{{ loop.index }} on __fs_match_{{ loop.index }}.__fs_row = __fs_spine.__fs_row
{%- endfor %}
order by __fs_spine.__fs_row
{%- endmacro %}

{#- Portable: a range join of each spine row to its candidate rows, ranked. -#}
{% macro default__point_in_time_join_sql(spine, spine_timestamp, views, full_feature_names, include_timestamps, spine_columns) %}
{%- set names = feature_store.pit_output_names(views, full_feature_names, include_timestamps) -%}
with __fs_spine as (
    {{ feature_store.spine_rows(spine, spine_timestamp) }}
)
{%- for view in views %},
__fs_view_{{ loop.index }} as (
    {{ feature_store.pit_view_rows(view) }}
),
__fs_match_{{ loop.index }} as (
    select * from (
        select
            __fs_spine.__fs_row,
            {%- for feature in view.features %}
            __fs_candidate.{{ adapter.quote(feature.name) }},
            {%- endfor %}
            __fs_candidate.__fs_event_at,
            row_number() over (
                partition by __fs_spine.__fs_row
                order by __fs_candidate.__fs_event_at desc, {{ feature_store.pit_tie_break(view, '__fs_candidate') }}
            ) as __fs_rank
        from __fs_spine
        inner join __fs_view_{{ loop.index }} as __fs_candidate
            on {% for key in view.entity %}__fs_candidate.{{ adapter.quote(key) }} = __fs_spine.{{ adapter.quote(key) }} and {% endfor %}__fs_candidate.__fs_event_at <= __fs_spine.__fs_at
            and {{ feature_store.within_ttl('__fs_candidate.__fs_event_at', '__fs_spine.__fs_at', view.ttl) }}
    ) as __fs_ranked
    where __fs_rank = 1
)
{%- endfor %}
{{ feature_store.pit_select_matches(spine_columns, views, names, include_timestamps) }}
{% endmacro %}

{#- DuckDB: a native ASOF JOIN per view finds, for each spine row, the latest timestamp
    <= the spine time (keys and timestamps only, so its sort stays narrow); the TTL is a
    check on that timestamp. The ASOF JOIN sorts all of its right side, so that side is
    first cut, entity by entity, to the rows a spine row could match: no later than the
    entity's latest spine time and, with a TTL, no earlier than its earliest spine time
    less the TTL (a hash join on the keys, which also drops entities the spine lacks).
    A row cut below that bound is older than the TTL allows at every spine time of its
    entity: where it would have been the latest row, the answer is NULL either way. Only
    the rows at the matched (keys, timestamp) are then fetched and ranked by the
    tie-break, so ties are resolved for about one row per spine row rather than by
    ranking every row of the view. -#}
{% macro duckdb__point_in_time_join_sql(spine, spine_timestamp, views, full_feature_names, include_timestamps, spine_columns) %}
{%- set names = feature_store.pit_output_names(views, full_feature_names, include_timestamps) -%}
with __fs_spine as (
    {{ feature_store.spine_rows(spine, spine_timestamp) }}
)
{%- for view in views %}
{%- set times = '__fs_times_' ~ loop.index %}
{%- set latest = '__fs_latest_' ~ loop.index %}
{%- set event_at = feature_store.normalize_timestamp('__fs_source.' ~ adapter.quote(view.timestamp_column)) %},
{{ times }} as (
    select {% for key in view.entity %}__fs_source.{{ adapter.quote(key) }}, {% endfor %}{{ event_at }} as __fs_event_at
    from {{ view.relation }} as __fs_source
    inner join (
        select {% for key in view.entity %}{{ adapter.quote(key) }}, {% endfor %}min(__fs_at) as __fs_first, max(__fs_at) as __fs_last
        from __fs_spine
        group by {% for key in view.entity %}{{ adapter.quote(key) }}{{ ', ' if not loop.last }}{% endfor %}
    ) as __fs_bounds
        on {% for key in view.entity %}__fs_bounds.{{ adapter.quote(key) }} = __fs_source.{{ adapter.quote(key) }} and {% endfor %}{{ event_at }} <= __fs_bounds.__fs_last
        and {{ feature_store.within_ttl(event_at, '__fs_bounds.__fs_first', view.ttl) }}
),
__fs_view_{{ loop.index }} as (
    {{ feature_store.pit_view_rows(view) }}
),
{{ latest }} as (
    select __fs_spine.__fs_row, {% for key in view.entity %}__fs_spine.{{ adapter.quote(key) }}, {% endfor %}{{ times }}.__fs_event_at
    from __fs_spine
    asof join {{ times }}
        on {% for key in view.entity %}{{ times }}.{{ adapter.quote(key) }} = __fs_spine.{{ adapter.quote(key) }} and {% endfor %}__fs_spine.__fs_at >= {{ times }}.__fs_event_at
    where {{ feature_store.within_ttl(times ~ '.__fs_event_at', '__fs_spine.__fs_at', view.ttl) }}
),
__fs_match_{{ loop.index }} as (
    select
        {{ latest }}.__fs_row,
        {%- for feature in view.features %}
        __fs_candidate.{{ adapter.quote(feature.name) }},
        {%- endfor %}
        {{ latest }}.__fs_event_at
    from {{ latest }}
    inner join __fs_view_{{ loop.index }} as __fs_candidate
        on {% for key in view.entity %}__fs_candidate.{{ adapter.quote(key) }} = {{ latest }}.{{ adapter.quote(key) }} and {% endfor %}__fs_candidate.__fs_event_at = {{ latest }}.__fs_event_at
    qualify row_number() over (
        partition by {{ latest }}.__fs_row
        order by {{ feature_store.pit_tie_break(view, '__fs_candidate') }}
    ) = 1
)
{%- endfor %}
{{ feature_store.pit_select_matches(spine_columns, views, names, include_timestamps) }}
{% endmacro %}
