{#- What the online store holds for one feature view at `as_of` (naive UTC text): the
    point-in-time join at that one time for every entity (point_in_time_snapshot_sql).
    Columns: the keys, the features, then the matched event time (NULL when the
    entity's latest row is older than the TTL). -#}
{% macro snapshot_sql(view, as_of) -%}
  {{- return(feature_store.point_in_time_snapshot_sql(view, feature_store.timestamp_literal(as_of))) -}}
{%- endmacro %}
