{#- The skew model's SQL: serving_skew_sql for every online feature view in dbt's graph,
    stacked. `log` is the serving log (source('feature_store', 'serving_log')); until the
    first `featurestore logs flush` creates it, the model is empty with the same columns.
    A consumer project declares the source and adds a model holding this one call. -#}
{% macro serving_skew(log) -%}
{%- set views = [] -%}
{%- if execute and load_relation(log) is not none -%}
  {%- for node in graph.nodes.values() | selectattr('resource_type', 'equalto', 'model') | sort(attribute='name')
        if node.config.meta and node.config.meta.feature_store is defined and node.config.meta.feature_store.online -%}
    {%- set spec = feature_store.feature_view_spec(node) -%}
    {%- set key_types = {} -%}
    {%- for key in spec.entity -%}{%- do key_types.update({key: node.columns[key].data_type}) -%}{%- endfor -%}
    {%- do views.append((spec, key_types)) -%}
  {%- endfor -%}
{%- endif -%}
{%- if views | length == 0 -%}
{{ feature_store.serving_skew_empty() }}
{%- else -%}
{%- for spec, key_types in views %}
select * from (
{{ feature_store.serving_skew_sql(log, spec, key_types) }}
) as __fs_skew_{{ loop.index }}
{%- if not loop.last %}
union all
{%- endif %}
{%- endfor %}
{%- endif -%}
{%- endmacro %}

{#- No rows, the columns of serving_skew_sql. -#}
{% macro serving_skew_empty() -%}
{%- set extra = [('export_number', 'double'), ('export_text', 'varchar'), ('export_event_at', 'timestamp'),
    ('request_number', 'double'), ('request_text', 'varchar'), ('request_event_at', 'timestamp'),
    ('matches_export', 'boolean'), ('matches_request', 'boolean'), ('cause', 'varchar'),
    ('is_mismatch', 'boolean'), ('abs_difference', 'double')] -%}
select
{%- for name, data_type in feature_store.serving_log_columns()[:-2] + extra %}
    cast(null as {{ feature_store.engine_data_type(data_type) }}) as {{ adapter.quote(name) }}{{ ',' if not loop.last }}
{%- endfor %}
where 1 = 0
{%- endmacro %}
