{#- Training/serving skew of one feature view: every value the serving log holds for it,
    next to what the point-in-time join (point_in_time_join_sql, the macro training sets
    use) gives for the same entity twice: at the snapshot's as_of and at the request time.

    One row per log row (request x entity row x feature). Besides the log's columns:
    export_* / request_* (the recomputed value as a number or text, and the matched
    event time), matches_export, matches_request, is_mismatch, cause, abs_difference.
    A row is a mismatch, with the first cause that applies:
    - changed_after_export: the warehouse now gives another value (or presence) at the
      snapshot's as_of than was served: a late correction or backfill, or an export bug;
    - missing_entity: the snapshot had no row for the key (a wrong or unknown key);
    - outside_ttl: served a value, but at request time its row was older than the TTL;
    - stale_snapshot: newer data arrived between the export and the request.
    Numbers match within 1e-9 relative; other types by their text. `since` (naive UTC
    text or none) keeps requests from then on. `key_types`: entity column -> data type. -#}
{% macro serving_skew_sql(log_relation, view, key_types, since=none) -%}
{%- set spine_columns = ['request_id', 'row_index'] -%}
{%- set joined = view.name ~ '__' -%}
with __fs_served as (
    select * from {{ log_relation }}
    where feature_view = '{{ view.name }}'
    {%- if since is not none %} and request_at >= {{ feature_store.timestamp_literal(since) }}{% endif %}
),
__fs_request_rows as (
    select distinct request_id, row_index, request_at, snapshot_as_of
        {%- for key in view.entity %},
        cast({{ feature_store.json_text_value('entity_key', key) }} as {{ feature_store.engine_data_type(key_types[key]) }}) as {{ adapter.quote(key) }}
        {%- endfor %}
    from __fs_served
),
__fs_at_export as (
    {{ feature_store.point_in_time_join_sql('__fs_request_rows', 'snapshot_as_of', [view], true, true, spine_columns) }}
),
__fs_at_request as (
    {{ feature_store.point_in_time_join_sql('__fs_request_rows', 'request_at', [view], true, true, spine_columns) }}
),
__fs_compared as (
    {%- for feature in view.features %}
    {%- set column = adapter.quote(joined ~ feature.name) %}
    select
        __fs_log.request_id, __fs_log.request_at, __fs_log.row_index, __fs_log.entity_key,
        __fs_log.feature_view, __fs_log.feature, __fs_log.feature_ref, __fs_log.status,
        __fs_log.value_number, __fs_log.value_text, __fs_log.event_at,
        __fs_log.snapshot_version, __fs_log.snapshot_as_of,
        {{ feature_store.skew_number(feature, '__fs_export.' ~ column) }} as export_number,
        {{ feature_store.skew_text(feature, '__fs_export.' ~ column) }} as export_text,
        __fs_export.{{ adapter.quote(joined ~ 'event_timestamp') }} as export_event_at,
        {{ feature_store.skew_number(feature, '__fs_now.' ~ column) }} as request_number,
        {{ feature_store.skew_text(feature, '__fs_now.' ~ column) }} as request_text,
        __fs_now.{{ adapter.quote(joined ~ 'event_timestamp') }} as request_event_at
    from __fs_served as __fs_log
    inner join __fs_at_export as __fs_export
        on __fs_export.request_id = __fs_log.request_id and __fs_export.row_index = __fs_log.row_index
    inner join __fs_at_request as __fs_now
        on __fs_now.request_id = __fs_log.request_id and __fs_now.row_index = __fs_log.row_index
    where __fs_log.feature = '{{ feature.name }}'
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
),
__fs_matched as (
    select __fs_compared.*,
        {{ feature_store.skew_same('export') }} as matches_export,
        {{ feature_store.skew_same('request') }} as matches_request
    from __fs_compared
),
__fs_caused as (
    select __fs_matched.*,
        case
            when not matches_export then 'changed_after_export'
            when status = 'missing' then 'missing_entity'
            when not matches_request and request_event_at is null then 'outside_ttl'
            when not matches_request then 'stale_snapshot'
        end as cause
    from __fs_matched
)
select __fs_caused.*,
    cause is not null as is_mismatch,
    case
        when cause = 'changed_after_export' then abs(value_number - export_number)
        when cause is not null then abs(value_number - request_number)
    end as abs_difference
from __fs_caused
{%- endmacro %}

{#- Whether a feature is compared as a number (numbers and booleans) or as text. -#}
{% macro skew_numeric(feature) -%}
  {%- set base = (feature.data_type or '') | lower | trim -%}
  {{- return(base.startswith('bool') or base.split('(')[0] | trim in [
      'tinyint', 'smallint', 'integer', 'int', 'bigint', 'hugeint', 'int1', 'int2', 'int4', 'int8', 'long', 'utinyint',
      'usmallint', 'uinteger', 'ubigint', 'double', 'double precision', 'float', 'float4', 'float8', 'real', 'decimal', 'numeric']) -}}
{%- endmacro %}

{% macro skew_number(feature, expression) -%}
  {%- if not feature_store.skew_numeric(feature) -%} cast(null as {{ feature_store.engine_data_type('double') }})
  {%- elif ((feature.data_type or '') | lower | trim).startswith('bool') -%} case when {{ expression }} then 1.0 when not {{ expression }} then 0.0 end
  {%- else -%} cast({{ expression }} as {{ feature_store.engine_data_type('double') }})
  {%- endif -%}
{%- endmacro %}

{% macro skew_text(feature, expression) -%}
  {%- if feature_store.skew_numeric(feature) -%} cast(null as {{ feature_store.engine_data_type('varchar') }})
  {%- else -%} cast({{ expression }} as {{ feature_store.engine_data_type('varchar') }})
  {%- endif -%}
{%- endmacro %}

{#- Served and recomputed agree: both found a row (within the TTL) or neither did, and
    the values are equal (NULL equals NULL; numbers within 1e-9 relative). -#}
{% macro skew_same(side) -%}
  ((status in ('present', 'null')) = ({{ side }}_event_at is not null)
        and case
            when value_number is not null and {{ side }}_number is not null
                then abs(value_number - {{ side }}_number) <= 1e-9 * greatest(1.0, abs({{ side }}_number))
            when value_text is not null and {{ side }}_text is not null then value_text = {{ side }}_text
            else value_number is null and value_text is null and {{ side }}_number is null and {{ side }}_text is null
        end)
{%- endmacro %}
