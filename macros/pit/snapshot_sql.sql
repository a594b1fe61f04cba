{#- What the online store holds for one feature view at `as_of`: every entity seen by then,
    joined point-in-time at `as_of` (the TTL counted from it). Columns: the keys, the
    features, then the matched event time (NULL when the entity's latest row is older
    than the TTL). -#}
{% macro snapshot_sql(view, as_of) -%}
  {%- set at = feature_store.timestamp_literal(as_of) -%}
  {%- set keys = [] -%}
  {%- for key in view.entity -%}{%- do keys.append(adapter.quote(key)) -%}{%- endfor -%}
  {%- set spine -%}
    (select distinct {{ keys | join(', ') }}, {{ at }} as __fs_as_of from {{ view.relation }}
     where {{ feature_store.normalize_timestamp(adapter.quote(view.timestamp_column)) }} <= {{ at }})
  {%- endset -%}
  {{- return(feature_store.point_in_time_join_sql(spine, '__fs_as_of', [view], false, true, view.entity)) -}}
{%- endmacro %}
