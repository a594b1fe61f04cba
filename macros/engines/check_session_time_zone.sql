{#- on-run-start hook: every time rule assumes a UTC session (a naive timestamp means
    UTC). DuckDB and Spark get it from profiles.yml; a Postgres profile cannot set it, so
    the run stops unless the server's sessions already are UTC. -#}
{% macro check_session_time_zone() %}
  {{- return(adapter.dispatch('check_session_time_zone', 'feature_store')()) -}}
{% endmacro %}

{% macro default__check_session_time_zone() %}
  {{- return('select 1') -}}
{% endmacro %}

{% macro postgres__check_session_time_zone() %}
  {%- if execute -%}
    {%- set zone = run_query("select current_setting('TimeZone')").columns[0].values()[0] -%}
    {%- if zone not in ['UTC', 'Etc/UTC', 'Etc/UCT', 'UCT', 'Zulu', 'Etc/Zulu', 'GMT', 'Etc/GMT'] -%}
      {{- exceptions.raise_compiler_error("the Postgres session time zone is " ~ zone ~ "; the feature store needs UTC:"
          ~ " run ALTER DATABASE " ~ target.dbname ~ " SET timezone = 'UTC' or set PGTZ=UTC for dbt") -}}
    {%- endif -%}
  {%- endif -%}
  {{- return('select 1') -}}
{% endmacro %}
