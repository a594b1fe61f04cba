{#- The time rules, in one place. Every macro that compares times calls these.

    as-of:   a feature row is visible at time t when its timestamp <= t.
    TTL:     ... and its timestamp >= t - ttl (both bounds inclusive, as in Feast).
    window:  a window of length w evaluated at t holds the events in (t - w, t]:
             the event at exactly t counts, the one at exactly t - w does not, so
             back-to-back windows never count an event twice. -#}

{% macro interval_literal(duration) %}
  {{- return(adapter.dispatch('interval_literal', 'feature_store')(duration)) -}}
{% endmacro %}

{% macro default__interval_literal(duration) -%}
  interval '{{ duration.seconds }} seconds'
{%- endmacro %}

{% macro within_ttl(feature_timestamp, at, ttl) -%}
  {%- if ttl is none -%} true
  {%- else -%} {{ feature_timestamp }} >= {{ at }} - {{ feature_store.interval_literal(ttl) }}
  {%- endif -%}
{%- endmacro %}

{% macro in_window(event_timestamp, at, window) -%}
  ({{ event_timestamp }} > {{ at }} - {{ feature_store.interval_literal(window) }} and {{ event_timestamp }} <= {{ at }})
{%- endmacro %}

{#- The same window as a frame over rows ordered by epoch microseconds: `range between
    w - 1 microsecond preceding and current row` is (t - w, t] exactly, peers included. -#}
{% macro window_frame(window) -%}
  range between {{ window.seconds * 1000000 - 1 }} preceding and current row
{%- endmacro %}

{% macro epoch_microseconds(expression) %}
  {{- return(adapter.dispatch('epoch_microseconds', 'feature_store')(expression)) -}}
{% endmacro %}

{% macro default__epoch_microseconds(expression) -%}
  cast(extract(epoch from {{ expression }}) * 1000000 as bigint)
{%- endmacro %}

{% macro duckdb__epoch_microseconds(expression) -%}
  epoch_us({{ expression }})
{%- endmacro %}

{#- Spark has no extract(epoch ...). -#}
{% macro spark__epoch_microseconds(expression) -%}
  unix_micros(cast({{ expression }} as timestamp_ltz))
{%- endmacro %}
