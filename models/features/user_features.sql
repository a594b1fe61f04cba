-- A feature view over an existing Parquet file: daily snapshots, valid for one day.
select
    user_id,
    event_timestamp,
    created_timestamp,
    total_purchases,
    avg_purchase_amount,
    days_since_last_purchase
from {{ source('raw', 'user_features') }}
