-- Is the user spending more than usual? Recent (7-day) versus historical (90-day)
-- spend, last week's 7-day spend, and the 30-day spend scaled on the training period.
with windows as (
    select user_id, event_timestamp, spend_7d, spend_30d, spend_90d
    from {{ ref('user_purchase_windows') }}
),
week_before as (
    {{ feature_store.value_days_ago(ref('user_purchase_windows'), 'user_id', 'event_timestamp', ['spend_7d'], 7) }}
)
select
    windows.user_id,
    windows.event_timestamp,
    {{ feature_store.safe_ratio('windows.spend_7d', 'windows.spend_90d / 90.0 * 7') }} as spend_7d_vs_90d_ratio,
    week_before.spend_7d_7d_ago,
    {{ feature_store.scale_minmax('windows.spend_30d', ref('user_purchase_windows'), 'spend_30d', 'event_timestamp', var('training_start'), var('training_end')) }} as spend_30d_minmax
from windows
inner join week_before
    on week_before.user_id = windows.user_id and week_before.event_timestamp = windows.event_timestamp
