{#- The one SQL text of an on-demand view: its expressions over its inputs, each input and
    each result cast to its declared type. The warehouse runs it inside the point-in-time
    query (point_in_time_on_demand_sql) and DuckDB runs it in process over an online
    read's rows (serving/on_demand.py), so training and serving compute the same thing.

    `relation`: what to read (a name, or a parenthesized query with an alias);
    `columns`: input name -> the relation's column holding it (default: the same name);
    `carry`: relation columns passed through unchanged (the row position, offline). -#}
{% macro on_demand_select(view, relation, columns=none, carry=[]) -%}
select
    {%- for column in carry %}
    {{ adapter.quote(column) }},
    {%- endfor %}
    {%- for feature in view.features %}
    cast(({{ feature.expression }}) as {{ feature_store.engine_data_type(feature.data_type) }}) as {{ adapter.quote(feature.name) }}{{ ',' if not loop.last }}
    {%- endfor %}
from (
    select
        {%- for column in carry %}
        {{ adapter.quote(column) }},
        {%- endfor %}
        {%- for input in view.inputs %}
        cast({{ adapter.quote((columns or {}).get(input.name, input.name)) }} as {{ feature_store.engine_data_type(input.data_type) }}) as {{ adapter.quote(input.name) }}{{ ',' if not loop.last }}
        {%- endfor %}
    from {{ relation }}
) as __fs_on_demand_inputs
{%- endmacro %}

{#- DuckDB settings that make in-process evaluation compute as the target's warehouse does.
    Postgres divides integers as integers (7 / 2 = 3); DuckDB and Spark give 3.5. -#}
{% macro in_process_settings() %}
  {{- return(adapter.dispatch('in_process_settings', 'feature_store')()) -}}
{% endmacro %}

{% macro default__in_process_settings() %}
  {{- return({}) -}}
{% endmacro %}

{% macro postgres__in_process_settings() %}
  {{- return({'integer_division': true}) -}}
{% endmacro %}
