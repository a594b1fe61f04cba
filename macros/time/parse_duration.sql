{#- Parses a duration such as "1 day", "12 hours" or "90 days" into
    {'text': '12 hours', 'seconds': 43200}. Durations have a fixed length, so
    months and years are refused. `owner` and `field` only name the culprit. -#}
{% macro parse_duration(text, owner, field) %}
  {%- set seconds_per = {'second': 1, 'minute': 60, 'hour': 3600, 'day': 86400, 'week': 604800} -%}
  {%- set match = modules.re.fullmatch('[ ]*([0-9]+)[ ]*(second|minute|hour|day|week)s?[ ]*', text | string | lower) if text is string else none -%}
  {%- if match is none or (match.group(1) | int) == 0 -%}
    {{- exceptions.raise_compiler_error(
          owner ~ ": " ~ field ~ " is " ~ (text | string) ~ "; expected a positive whole number and a unit"
          ~ " (second, minute, hour, day or week), for example '1 day', '12 hours' or '90 days'") -}}
  {%- endif -%}
  {%- set count = match.group(1) | int -%}
  {%- set unit = match.group(2) -%}
  {{- return({'text': count ~ ' ' ~ unit ~ ('s' if count != 1 else ''), 'seconds': count * seconds_per[unit]}) -}}
{% endmacro %}
