-- Empty input for unit tests: events to aggregate over time windows.
select
    cast(null as bigint) as user_id,
    cast(null as varchar) as shop,
    cast(null as timestamp) as event_timestamp,
    cast(null as double) as amount
where false
