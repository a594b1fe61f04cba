-- Version 2 of product_popularity: a 30-day purchase count in place of the one-day count.
{{ feature_store.window_aggregates(
    source=ref('stg_purchases'),
    entity='product_id',
    timestamp_column='event_timestamp',
    aggregations=[
        {'name': 'product_purchases_7d', 'function': 'count', 'window': '7 days'},
        {'name': 'product_buyers_7d', 'function': 'count_distinct', 'column': 'user_id', 'window': '7 days'},
        {'name': 'product_revenue_7d', 'function': 'sum', 'column': 'amount', 'window': '7 days'},
        {'name': 'product_purchases_30d', 'function': 'count', 'window': '30 days'},
    ],
    at='change_points'
) }}
