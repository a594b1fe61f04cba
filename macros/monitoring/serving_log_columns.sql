{#- The serving log's columns and their types, in table order: one row per logged
    request x entity row x requested feature (see models/monitoring/monitoring.yml). -#}
{% macro serving_log_columns() %}
  {{- return([
      ('request_id', 'varchar'), ('request_at', 'timestamp'), ('row_index', 'integer'),
      ('entity_key', 'varchar'), ('feature_view', 'varchar'), ('feature', 'varchar'),
      ('feature_ref', 'varchar'), ('status', 'varchar'), ('value_number', 'double'),
      ('value_text', 'varchar'), ('event_at', 'timestamp'), ('snapshot_version', 'bigint'),
      ('snapshot_as_of', 'timestamp'), ('source', 'varchar'), ('flushed_at', 'timestamp'),
  ]) -}}
{% endmacro %}
