{#- For each row of `relation`: each of `columns` as it stood `days` days before the
    row's timestamp, by the same as-of rule as the point-in-time join (latest row at or
    before that moment, within `ttl` if given). Returns the keys, the timestamp and one
    `<column>_<days>d_ago` column per column, in the relation's row order. -#}
{% macro value_days_ago(relation, entity, timestamp_column, columns, days, ttl=none) %}
  {{- return(adapter.dispatch('value_days_ago', 'feature_store')(relation, entity, timestamp_column, columns, days, ttl)) -}}
{% endmacro %}

{% macro default__value_days_ago(relation, entity, timestamp_column, columns, days, ttl) -%}
  {%- set keys = [entity] if entity is string else entity -%}
  {%- set shift = feature_store.parse_duration(days ~ ' days', 'value_days_ago', 'days') -%}
  {%- set key_list %}{% for key in keys %}{{ adapter.quote(key) }}, {% endfor %}{% endset -%}
  {%- set spine -%}
    (select {{ key_list }}{{ adapter.quote(timestamp_column) }}, {{ feature_store.normalize_timestamp(adapter.quote(timestamp_column)) }} - {{ feature_store.interval_literal(shift) }} as __fs_lookup_at from {{ relation }})
  {%- endset -%}
  {%- set past -%}
    (select {{ key_list }}{{ adapter.quote(timestamp_column) }}{% for column in columns %}, {{ adapter.quote(column) }} as {{ adapter.quote(column ~ '_' ~ days ~ 'd_ago') }}{% endfor %} from {{ relation }})
  {%- endset -%}
  {%- set view = {
      'name': 'past', 'relation': past, 'entity': keys, 'timestamp_column': timestamp_column,
      'created_timestamp_column': none,
      'ttl': feature_store.parse_duration(ttl, 'value_days_ago', 'ttl') if ttl else none,
      'features': [],
  } -%}
  {%- for column in columns -%}{%- do view.features.append({'name': column ~ '_' ~ days ~ 'd_ago'}) -%}{%- endfor -%}
  {{ feature_store.point_in_time_join_sql(spine, '__fs_lookup_at', [view], false, false, keys + [timestamp_column]) }}
{%- endmacro %}
