{#- The engine's spelling of a column type written the project's way (bigint, double,
    varchar, timestamp for naive UTC, timestamptz for an instant). YAML contracts, the
    check models and the macros' casts all use these names, so one spelling serves every
    engine. -#}
{% macro engine_data_type(data_type) %}
  {{- return(adapter.dispatch('engine_data_type', 'feature_store')(data_type)) -}}
{% endmacro %}

{% macro default__engine_data_type(data_type) -%}
  {{- return(data_type) -}}
{%- endmacro %}

{#- Postgres has no `double`; text is its usual string type. -#}
{% macro postgres__engine_data_type(data_type) -%}
  {{- return({'double': 'double precision', 'varchar': 'text'}.get(data_type | lower, data_type)) -}}
{%- endmacro %}

{#- Spark needs a length for varchar and has no timestamptz or double precision. Its
    `timestamp` is an instant (timestamp_ltz, unless spark.sql.timestampType says
    otherwise), so both timestamp kinds are named explicitly. -#}
{% macro spark__engine_data_type(data_type) -%}
  {{- return({
      'varchar': 'string', 'text': 'string', 'double precision': 'double',
      'timestamp': 'timestamp_ntz', 'timestamp without time zone': 'timestamp_ntz',
      'timestamptz': 'timestamp_ltz', 'timestamp with time zone': 'timestamp_ltz',
  }.get(data_type | lower, data_type)) -}}
{%- endmacro %}
