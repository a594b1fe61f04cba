{#- The entity key types the online store can encode, by family: integers become 8-byte
    signed keys (serving/encoding.py, INT_KEY_WIDTH), strings length-prefixed UTF-8. Types
    whose values may not fit 64 signed bits (hugeint, ubigint) are not among them.
    serving/registry.py maps the same names to Python types; a test pins the two together. -#}
{% macro online_key_types() %}
  {{- return({
      'integer': ['tinyint', 'smallint', 'integer', 'int', 'bigint', 'int1', 'int2', 'int4', 'int8', 'int32', 'int64',
                  'long', 'utinyint', 'usmallint', 'uinteger'],
      'string': ['varchar', 'text', 'string', 'char', 'bpchar', 'character', 'character varying'],
  }) -}}
{% endmacro %}
