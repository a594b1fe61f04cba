-- Window aggregates evaluated at each spine row.
{{ feature_store.window_aggregates(
    source=ref('check_events'),
    entity=['user_id', 'shop'],
    timestamp_column='event_timestamp',
    aggregations=[
        {'name': 'events_1h', 'function': 'count', 'window': '1 hour'},
        {'name': 'spend_1h', 'function': 'sum', 'column': 'amount', 'window': '1 hour'},
        {'name': 'avg_amount_1h', 'function': 'avg', 'column': 'amount', 'window': '1 hour'},
        {'name': 'amounts_1d', 'function': 'count', 'column': 'amount', 'window': '1 day'},
    ],
    at='spine',
    spine=ref('check_spine'),
    spine_timestamp='prediction_time'
) }}
