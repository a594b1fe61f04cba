-- Every served value next to what training would have seen (see serving_skew_sql).
-- The online feature views, so that dbt builds them first:
-- depends_on: {{ ref('user_features') }}
-- depends_on: {{ ref('user_purchase_windows') }}
-- depends_on: {{ ref('user_last_purchase') }}
-- depends_on: {{ ref('user_category_windows') }}
-- depends_on: {{ ref('product_popularity') }}
-- depends_on: {{ ref('user_spend_trend') }}
{{ feature_store.serving_skew(source('feature_store', 'serving_log')) }}
