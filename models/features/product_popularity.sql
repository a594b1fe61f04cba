-- How much each product sells, and to how many different users.
{{ feature_store.window_aggregates(
    source=ref('stg_purchases'),
    entity='product_id',
    timestamp_column='event_timestamp',
    aggregations=[
        {'name': 'product_purchases_1d', 'function': 'count', 'window': '1 day'},
        {'name': 'product_purchases_7d', 'function': 'count', 'window': '7 days'},
        {'name': 'product_buyers_7d', 'function': 'count_distinct', 'column': 'user_id', 'window': '7 days'},
        {'name': 'product_revenue_7d', 'function': 'sum', 'column': 'amount', 'window': '7 days'},
    ],
    at='change_points'
) }}
