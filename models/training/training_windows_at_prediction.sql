-- The same user purchase windows, evaluated directly at each prediction time instead of
-- joined from the feature view. Tests check the two agree wherever the user has history.
{{ feature_store.window_aggregates(
    source=ref('stg_purchases'),
    entity='user_id',
    timestamp_column='event_timestamp',
    aggregations=var('user_purchase_aggregations'),
    at='spine',
    spine=ref('stg_label_spine'),
    spine_timestamp='prediction_time'
) }}
