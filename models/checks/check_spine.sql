-- Empty input for unit tests (models/checks/checks.yml): a spine with a row id, a
-- composite key and a prediction time. The time is TIMESTAMPTZ so fixtures can carry
-- UTC offsets; a fixture without one is read in the session time zone, UTC.
select
    cast(null as bigint) as row_id,
    cast(null as bigint) as user_id,
    cast(null as {{ feature_store.engine_data_type('varchar') }}) as shop,
    cast(null as {{ feature_store.engine_data_type('timestamptz') }}) as prediction_time
where false
