{#- Parses a duration such as "1 day", "12 hours" or "90 days" into
    {'text': '12 hours', 'seconds': 43200}. Durations have a fixed length, so
    months and years are refused, and at most 36500 days (100 years): a longer one
    reaches past the timestamps every engine can hold and fails each query that uses it.
    `owner` and `field` only name the culprit. -#}
{% macro parse_duration(text, owner, field) %}
  {%- set seconds_per = {'second': 1, 'minute': 60, 'hour': 3600, 'day': 86400, 'week': 604800} -%}
  {%- set longest = 36500 * 86400 -%}
  {%- set match = modules.re.fullmatch('[ ]*([0-9]+)[ ]*(second|minute|hour|day|week)s?[ ]*', text | string | lower) if text is string else none -%}
  {%- set seconds = (match.group(1) | int) * seconds_per[match.group(2)] if match is not none else 0 -%}
  {%- if seconds == 0 or seconds > longest -%}
    {{- exceptions.raise_compiler_error(
          owner ~ ": " ~ field ~ " is " ~ (text | string) ~ "; expected a positive whole number and a unit"
          ~ " (second, minute, hour, day or week), at most 36500 days (100 years),"
          ~ " for example '1 day', '12 hours' or '90 days'") -}}
  {%- endif -%}
  {%- set count = match.group(1) | int -%}
  {%- set unit = match.group(2) -%}
  {{- return({'text': count ~ ' ' ~ unit ~ ('s' if count != 1 else ''), 'seconds': seconds}) -}}
{% endmacro %}
