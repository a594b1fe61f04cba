{#- The point-in-time join with on-demand features, in one query: the join of the source
    and requested features (point_in_time_join_sql, columns named view__feature), then
    each on-demand view's expressions over its row (on_demand_select), in spine order.

    `views`: feature view specs narrowed to every feature read; `on_demand`: a list of
    {'view': on-demand spec, 'columns': input name -> joined column (view__feature, or the
    request field's spine column)}; `outputs`: the result's feature columns in order, each
    [source, column, name] where source is 0 for the join and k for the k-th on-demand view;
    `spine_columns`: the spine columns to return (the request fields come along inside). -#}
{% macro point_in_time_on_demand_sql(spine, spine_timestamp, views, on_demand, outputs, spine_columns, request_fields) -%}
with __fs_joined as (
    {{ feature_store.point_in_time_join_sql(spine, spine_timestamp, views, true, false, spine_columns + ['__fs_row'] + request_fields) }}
)
select
    {%- for column in spine_columns %}
    __fs_joined.{{ adapter.quote(column) }},
    {%- endfor %}
    {%- for source, column, name in outputs %}
    {{ '__fs_joined' if source == 0 else '__fs_on_demand_' ~ source }}.{{ adapter.quote(column) }} as {{ adapter.quote(name) }}{{ ',' if not loop.last }}
    {%- endfor %}
from __fs_joined
{%- for item in on_demand %}
inner join (
    {{ feature_store.on_demand_select(item.view, '__fs_joined', item.columns, ['__fs_row']) }}
) as __fs_on_demand_{{ loop.index }} on __fs_on_demand_{{ loop.index }}.__fs_row = __fs_joined.__fs_row
{%- endfor %}
order by __fs_joined.__fs_row
{%- endmacro %}
