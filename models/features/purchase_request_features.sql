-- An on-demand view: features computed per request from the purchase being scored and
-- the user's windows. Declared in on_demand.yml; this body only lets `dbt build` check
-- the expressions on the warehouse (it returns no rows). The comment below draws the
-- view's sources into dbt's lineage graph (dbt docs); nothing reads them here.
-- depends_on: {{ ref('user_purchase_windows') }}
{{ feature_store.on_demand_view() }}
