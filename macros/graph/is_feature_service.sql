{#- An exposure that declares meta.feature_store (in config.meta or meta). -#}
{% macro is_feature_service(exposure) %}
  {%- set config_meta = exposure.config.meta if exposure.config is defined and exposure.config and exposure.config.meta else {} -%}
  {{- return(config_meta.feature_store is defined or (exposure.meta and exposure.meta.feature_store is defined)) -}}
{% endmacro %}
