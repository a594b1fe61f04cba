{#- One aggregate over `value`, either as a window function (`over` names the window)
    or as a grouped aggregate (`over` is none), optionally over only the rows that meet
    `condition` (a FILTER clause). Empty windows give 0 for count, count_distinct and
    sum, so a window evaluated long after the last event is 0. -#}
{% macro window_aggregate_call(aggregation, value, over, condition=none) -%}
  {%- set function = aggregation.function -%}
  {%- set suffix = (' filter (where ' ~ condition ~ ')' if condition else '') ~ (' over ' ~ over if over else '') -%}
  {%- set double = feature_store.engine_data_type('double') -%}
  {%- if function == 'count' -%} cast(count({{ value }}){{ suffix }} as bigint)
  {%- elif function == 'count_distinct' -%} cast(count(distinct {{ value }}){{ suffix }} as bigint)
  {%- elif function == 'sum' -%} coalesce(cast(sum({{ value }}){{ suffix }} as {{ double }}), 0)
  {%- elif function == 'avg' -%} cast(avg({{ value }}){{ suffix }} as {{ double }})
  {%- elif function == 'stddev' -%} cast(stddev_samp({{ value }}){{ suffix }} as {{ double }})
  {%- else -%} {{ function }}({{ value }}){{ suffix }}
  {%- endif -%}
{%- endmacro %}
