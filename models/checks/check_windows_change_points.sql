-- Window aggregates at every event and every moment an event leaves the window.
{{ feature_store.window_aggregates(
    source=ref('check_events'),
    entity=['user_id', 'shop'],
    timestamp_column='event_timestamp',
    aggregations=[
        {'name': 'events_1h', 'function': 'count', 'window': '1 hour'},
        {'name': 'spend_1h', 'function': 'sum', 'column': 'amount', 'window': '1 hour'},
    ],
    at='change_points'
) }}
