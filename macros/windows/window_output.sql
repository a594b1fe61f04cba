{#- The final select of window_aggregates: the evaluation points with their values,
    in spine order (at='spine') or by entity and time. A spine row with a NULL key or
    time has no window: all its values are NULL. -#}
{% macro window_output(plan, timestamp_column, spine_columns) -%}
select
    {%- if plan.at == 'spine' %}
    {{ feature_store.spine_select(spine_columns, '__fs_points') }}
    {%- for aggregation in plan.aggregations %},
    case when {% for key in plan.entity %}__fs_points.{{ adapter.quote(key) }} is not null and {% endfor %}__fs_points.__fs_at is not null
        then __fs_evaluated.{{ adapter.quote(aggregation.name) }} end as {{ adapter.quote(aggregation.name) }}
    {%- endfor %}
    {%- else %}
    {%- for key in plan.entity %}
    __fs_points.{{ adapter.quote(key) }},
    {%- endfor %}
    __fs_points.__fs_at as {{ adapter.quote(timestamp_column) }}
    {%- for aggregation in plan.aggregations %},
    __fs_evaluated.{{ adapter.quote(aggregation.name) }}
    {%- endfor %}
    {%- endif %}
from __fs_points
inner join __fs_evaluated on __fs_evaluated.__fs_row = __fs_points.__fs_row
order by __fs_points.__fs_row
{%- endmacro %}
