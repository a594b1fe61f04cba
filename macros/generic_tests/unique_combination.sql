{#- Fails for every combination of `columns` that occurs more than once; a feature view
    needs one row per entity and timestamp (and created timestamp, where corrections exist). -#}
{% test unique_combination(model, columns) %}
select {% for column in columns %}{{ adapter.quote(column) }}, {% endfor %}count(*) as occurrences
from {{ model }}
group by {% for column in columns %}{{ adapter.quote(column) }}{{ ', ' if not loop.last }}{% endfor %}
having count(*) > 1
{% endtest %}
