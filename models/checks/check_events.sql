-- Empty input for unit tests: events to aggregate over time windows.
select
    cast(null as bigint) as user_id,
    cast(null as {{ feature_store.engine_data_type('varchar') }}) as shop,
    cast(null as {{ feature_store.engine_data_type('timestamp') }}) as event_timestamp,
    cast(null as {{ feature_store.engine_data_type('double') }}) as amount
where false
