{#- A point-in-time join never drops or duplicates spine rows: the model must have
    exactly as many rows as `compare_model`. Fails with one row holding both counts. -#}
{% test row_count_equals(model, compare_model) %}
select model_rows, spine_rows
from (select count(*) as model_rows from {{ model }}) as built
cross join (select count(*) as spine_rows from {{ compare_model }}) as spine
where model_rows != spine_rows
{% endtest %}
