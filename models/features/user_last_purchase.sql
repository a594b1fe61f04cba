-- What the user's latest purchase looked like: when in the day and week it happened,
-- how big it was against the user's own recent purchases and against the training
-- period's distribution.
with purchases as (
    select
        user_id,
        event_timestamp,
        amount,
        {{ feature_store.lag_value('amount', 'user_id', 'event_timestamp, purchase_id') }} as previous_amount,
        {{ feature_store.rolling_rows('amount', 'avg', 'user_id', 'event_timestamp, purchase_id', 3) }} as avg_amount_last_3,
        {{ feature_store.cyclical_encoding('event_timestamp', 'hour', 'hour_of_day') }},
        {{ feature_store.cyclical_encoding('event_timestamp', 'weekday', 'day_of_week') }},
        row_number() over (partition by user_id, event_timestamp order by purchase_id desc) as is_last_at_time
    from {{ ref('stg_purchases') }}
)
select
    user_id,
    {{ feature_store.normalize_timestamp('event_timestamp') }} as event_timestamp,
    amount as last_amount,
    previous_amount,
    avg_amount_last_3,
    {{ feature_store.safe_ratio('amount', 'avg_amount_last_3') }} as last_vs_recent_avg_ratio,
    {{ feature_store.log_transform('amount') }} as last_amount_log,
    {{ feature_store.scale_zscore('amount', ref('stg_purchases'), 'amount', 'event_timestamp', var('training_start'), var('training_end')) }} as last_amount_zscore,
    hour_of_day_sin,
    hour_of_day_cos,
    day_of_week_sin,
    day_of_week_cos,
    {{ feature_store.interaction('hour_of_day_sin', feature_store.log_transform('amount')) }} as evening_spend_interaction
from purchases
-- one row per (user, time): the last purchase at that time wins
where is_last_at_time = 1
