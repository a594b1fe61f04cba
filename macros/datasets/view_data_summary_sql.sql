{#- How much data a feature view holds now: its row count and its latest event time
    (naive UTC). A saved training set records it, so that verifying the set later can
    tell new or corrected data from changed definitions. -#}
{% macro view_data_summary_sql(view) %}
  {{- return(adapter.dispatch('view_data_summary_sql', 'feature_store')(view)) -}}
{% endmacro %}

{% macro default__view_data_summary_sql(view) -%}
select
    count(*) as row_count,
    max({{ feature_store.normalize_timestamp(adapter.quote(view.timestamp_column)) }}) as latest_event_time
from {{ view.relation }}
{%- endmacro %}
