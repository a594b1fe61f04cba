-- One row per purchase: the latest correction wins.
select purchase_id, user_id, product_id, category, amount, event_timestamp, created_timestamp
from (
    select
        *,
        row_number() over (partition by purchase_id order by created_timestamp desc) as version_rank
    from {{ source('raw', 'purchases') }}
) as versions
where version_rank = 1
