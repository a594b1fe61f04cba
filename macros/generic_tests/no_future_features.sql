{#- Leakage check for a training set: fails for every row where a joined feature's event
    timestamp (`column_name`) is later than the row's prediction time (`at`). -#}
{% test no_future_features(model, column_name, at) %}
select *
from {{ model }}
where {{ feature_store.normalize_timestamp(adapter.quote(column_name)) }} > {{ feature_store.normalize_timestamp(adapter.quote(at)) }}
{% endtest %}
