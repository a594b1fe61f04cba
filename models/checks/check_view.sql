-- Empty input for unit tests: feature rows keyed by (user_id, shop), with a created
-- timestamp for corrections. Naive timestamps: UTC.
select
    cast(null as bigint) as user_id,
    cast(null as {{ feature_store.engine_data_type('varchar') }}) as shop,
    cast(null as {{ feature_store.engine_data_type('timestamp') }}) as event_timestamp,
    cast(null as {{ feature_store.engine_data_type('timestamp') }}) as created_timestamp,
    cast(null as {{ feature_store.engine_data_type('double') }}) as score
where false
