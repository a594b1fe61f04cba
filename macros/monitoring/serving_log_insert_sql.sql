{#- Appends an uploaded batch of log rows, skipping requests the table already holds:
    a flush that crashed after its commit and before deleting the stream entries writes
    them again, and this keeps them once. -#}
{% macro serving_log_insert_sql(relation, batch) -%}
{%- set columns = feature_store.serving_log_columns() -%}
insert into {{ relation }} ({% for name, _ in columns %}{{ adapter.quote(name) }}{{ ', ' if not loop.last }}{% endfor %})
select {% for name, data_type in columns %}cast(__fs_batch.{{ adapter.quote(name) }} as {{ feature_store.engine_data_type(data_type) }}){{ ', ' if not loop.last }}{% endfor %}
from {{ batch }} as __fs_batch
where not exists (
    select 1 from {{ relation }} as __fs_logged where __fs_logged.request_id = __fs_batch.request_id
)
{%- endmacro %}
