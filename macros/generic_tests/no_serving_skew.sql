{#- Fails for each feature whose share of mismatched served values (serving_skew's
    is_mismatch) is above its threshold: `thresholds` maps feature references
    ("view:feature") to a rate, `threshold` (default 0) covers the others. One failing
    row per feature: its reference, rows compared, mismatches, rate and threshold. -#}
{% test no_serving_skew(model, threshold=0, thresholds={}) %}
select feature_ref, compared, mismatches, rate, threshold
from (
    select feature_ref, compared, mismatches,
        cast(mismatches as {{ feature_store.engine_data_type('double') }}) / compared as rate,
        {% if thresholds -%}
        case feature_ref
            {%- for reference, rate in thresholds.items() %}
            when '{{ reference }}' then {{ rate }}
            {%- endfor %}
            else {{ threshold }}
        end
        {%- else %}{{ threshold }}{% endif %} as threshold
    from (
        select feature_ref, count(*) as compared, sum(case when is_mismatch then 1 else 0 end) as mismatches
        from {{ model }}
        group by feature_ref
    ) as __fs_counts
) as __fs_rates
where rate > threshold
{% endtest %}
