{#- Point-in-time join of a spine against feature views named as dbt models; their keys,
    timestamps and TTLs come from each model's config.meta.feature_store. -#}
{% macro point_in_time_join(spine, spine_timestamp, feature_views, features=none, full_feature_names=false, include_timestamps=false) %}
  {%- set specs = feature_store.feature_view_specs(feature_views) -%}
  {%- if not execute -%}{{ return('select 1') }}{%- endif -%}
  {%- if features is not none -%}
    {%- set specs = feature_store.select_features(specs, features) -%}
  {%- endif -%}
  {{- return(feature_store.point_in_time_join_sql(spine, spine_timestamp, specs, full_feature_names, include_timestamps)) -}}
{% endmacro %}
