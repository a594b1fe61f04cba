-- Rolling purchase aggregates per user over 1 hour to 90 days. Evaluated at every
-- purchase and at every moment a purchase leaves a window, so an as-of join at any
-- time returns the exact window value there (a quiet user's 7-day spend drops to 0).
{{ feature_store.window_aggregates(
    source=ref('stg_purchases'),
    entity='user_id',
    timestamp_column='event_timestamp',
    aggregations=var('user_purchase_aggregations'),
    at='change_points'
) }}
