-- An on-demand view: features computed per request from the purchase being scored and
-- the user's windows. Declared in on_demand.yml; this body only lets `dbt build` check
-- the expressions on the warehouse (it returns no rows).
{{ feature_store.on_demand_view() }}
