select user_id, prediction_time, label
from {{ source('raw', 'label_spine') }}
