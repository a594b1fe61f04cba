-- The point-in-time join on the check inputs, check_view read as a feature view keyed
-- by (user_id, shop) with a one-day TTL. The spec is written out here rather than read
-- from YAML meta by point_in_time_join: dbt gives unit tests an empty `graph`, so
-- feature_view_specs cannot look the view up there.
{%- set check_view = {
    'name': 'check_view',
    'relation': ref('check_view') | string,
    'entity': ['user_id', 'shop'],
    'timestamp_column': 'event_timestamp',
    'created_timestamp_column': 'created_timestamp',
    'ttl': feature_store.parse_duration('1 day', 'check_pit', 'ttl'),
    'features': [{'name': 'score'}],
} %}
{{ feature_store.point_in_time_join_sql(ref('check_spine'), 'prediction_time', [check_view], false, true) }}
