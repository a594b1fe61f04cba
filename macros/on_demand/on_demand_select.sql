{#- The one SQL text of an on-demand view: its expressions over its inputs, each input and
    each result cast to its declared type. The warehouse runs it inside the point-in-time
    query (point_in_time_on_demand_sql) and DuckDB runs it in process over an online
    read's rows (serving/on_demand.py), so training and serving compute the same thing.

    `relation`: what to read (a name, or a parenthesized query with an alias);
    `columns`: input name -> the relation's column holding it (default: the same name);
    `carry`: relation columns passed through unchanged (the row position, offline);
    `in_process`: the text for DuckDB in process, whatever the target: identifiers quoted
    and types spelled as DuckDB does (the project's own type names), and, without a
    relation, the inputs read from one parameter each ($1, $2, ... in input order): a list
    (true), or a JSON array in a string ('json'; only for inputs of on_demand_types). -#}
{% macro on_demand_select(view, relation, columns=none, carry=[], in_process=false) -%}
{%- set quote = feature_store.on_demand_quote if in_process else adapter.quote -%}
select
    {%- for column in carry %}
    {{ quote(column) }},
    {%- endfor %}
    {%- for feature in view.features %}
    cast(({{ feature.expression }}) as {{ feature.data_type if in_process else feature_store.engine_data_type(feature.data_type) }}) as {{ quote(feature.name) }}{{ ',' if not loop.last }}
    {%- endfor %}
from (
    select
        {%- for column in carry %}
        {{ quote(column) }},
        {%- endfor %}
        {%- for input in view.inputs %}
        cast({{ quote((columns or {}).get(input.name, input.name)) }} as {{ input.data_type if in_process else feature_store.engine_data_type(input.data_type) }}) as {{ quote(input.name) }}{{ ',' if not loop.last }}
        {%- endfor %}
    {%- if relation is none %}
    from (select {% for input in view.inputs -%}
      {%- if in_process == 'json' -%}
        unnest(from_json(${{ loop.index }}::varchar, '["{{ input.data_type }}"]'))
      {%- else -%}
        unnest(${{ loop.index }})
      {%- endif %} as {{ quote(input.name) }}{{ ', ' if not loop.last }}{% endfor %}) as __fs_request
    {%- else %}
    from {{ relation }}
    {%- endif %}
) as __fs_on_demand_inputs
{%- endmacro %}

{#- An identifier quoted as DuckDB quotes it. -#}
{% macro on_demand_quote(name) -%}
  "{{ name | replace('"', '""') }}"
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
