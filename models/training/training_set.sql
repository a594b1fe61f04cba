-- The training set: every labelled prediction time, in spine order, with each feature
-- as it was known at that time (point-in-time correct, TTLs applied).
{{ feature_store.point_in_time_join(
    spine=ref('stg_label_spine'),
    spine_timestamp='prediction_time',
    feature_views=['user_features', 'user_purchase_windows', 'user_spend_trend', 'user_last_purchase'],
    include_timestamps=true
) }}
