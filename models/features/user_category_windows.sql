-- Spend per user and category: a feature view with a composite entity key.
{{ feature_store.window_aggregates(
    source=ref('stg_purchases'),
    entity=['user_id', 'category'],
    timestamp_column='event_timestamp',
    aggregations=[
        {'name': 'category_purchases_30d', 'function': 'count', 'window': '30 days'},
        {'name': 'category_spend_30d', 'function': 'sum', 'column': 'amount', 'window': '30 days'},
    ],
    at='change_points'
) }}
