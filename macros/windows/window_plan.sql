{#- Validates window_aggregates' arguments once and returns what both implementations
    need: keys, aggregations with parsed windows, the distinct windows and the longest. -#}
{% macro window_plan(entity, aggregations, at, spine, spine_timestamp) %}
  {%- set functions = ['count', 'sum', 'avg', 'min', 'max', 'stddev', 'count_distinct'] -%}
  {%- set modes = ['events', 'change_points', 'spine'] -%}
  {%- if at not in modes -%}
    {{- exceptions.raise_compiler_error("window_aggregates: at is '" ~ at ~ "'; expected one of " ~ modes | join(', ')) -}}
  {%- endif -%}
  {%- if at == 'spine' and (spine is none or spine_timestamp is none) -%}
    {{- exceptions.raise_compiler_error("window_aggregates: at='spine' needs spine and spine_timestamp") -}}
  {%- endif -%}
  {%- set plan = {'entity': [entity] if entity is string else entity, 'at': at, 'aggregations': [], 'value_columns': [], 'windows': {}} -%}
  {%- set columns = [] -%}
  {%- for aggregation in aggregations -%}
    {%- set owner = feature_store.window_plan_check(aggregation, loop.index, 'window_aggregates', functions) -%}
    {%- set column = aggregation.column or none -%}
    {%- if column not in columns -%}{%- do columns.append(column) -%}{%- endif -%}
    {%- set window = feature_store.parse_duration(aggregation.window, owner, 'window') -%}
    {%- do plan.windows.update({window.seconds: window}) -%}
    {%- do plan.aggregations.append({'name': aggregation.name, 'function': aggregation.function, 'column': column,
          'value': '__fs_value_' ~ columns.index(column), 'window': window}) -%}
  {%- endfor -%}
  {%- for column in columns -%}{%- do plan.value_columns.append('__fs_value_' ~ loop.index0) -%}{%- endfor -%}
  {%- do plan.update({'columns': columns, 'longest': plan.windows[plan.windows.keys() | max]}) -%}
  {{- return(plan) -}}
{% endmacro %}

{#- Refuses an aggregation with an unknown function, or without a name or (except for
    count) a column; returns the name errors about it use. -#}
{% macro window_plan_check(aggregation, index, macro_name, functions) %}
  {%- set owner = macro_name ~ ": aggregation '" ~ (aggregation.name or index) ~ "'" -%}
  {%- if aggregation.function not in functions -%}
    {{- exceptions.raise_compiler_error(owner ~ ": function is '" ~ aggregation.function ~ "'; expected one of " ~ functions | join(', ')) -}}
  {%- endif -%}
  {%- if not aggregation.name or (aggregation.function != 'count' and not aggregation.column) -%}
    {{- exceptions.raise_compiler_error(owner ~ ": needs a name and, except for count, a column") -}}
  {%- endif -%}
  {{- return(owner) -}}
{% endmacro %}
