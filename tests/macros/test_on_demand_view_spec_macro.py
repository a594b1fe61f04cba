"""on_demand_view_spec: what an on-demand view's YAML may say, checked against the feature
views it reads, and the error (naming the view and what is wrong) when it says something
else. The on-run-start hook (validate_feature_views) and the Python registry call it."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from serving.errors import FeatureStoreError
from serving.on_demand import PYTHON_TYPES
from serving.rendering import Renderer

VIEWS = {
    "user_stats": {
        "name": "user_stats", "entity": ["user_id"],
        "features": [{"name": "spend", "data_type": "double"}, {"name": "visits", "data_type": "bigint"}],
    },
    "user_profile": {"name": "user_profile", "entity": ["user_id"], "features": [{"name": "visits", "data_type": "bigint"}]},
}


def node(**meta: Any) -> dict[str, Any]:
    """An on-demand view's model node as it appears in dbt's manifest."""
    declared = {"sources": ["user_stats:spend"], "request_fields": [{"name": "amount", "data_type": "double"}], **meta}
    return {
        "name": "scored",
        "description": "Per request.",
        "config": {"meta": {"on_demand_feature_view": {k: v for k, v in declared.items() if v is not None}}},
        "columns": {
            "ratio": {"name": "ratio", "data_type": "double", "description": "amount over spend",
                      "config": {"meta": {"expression": "amount / nullif(spend, 0)"}}},
        },
    }


def test_spec_of_a_valid_on_demand_view(macros: Renderer) -> None:
    spec = macros.call("on_demand_view_spec", node(sources=["user_stats:*"]), VIEWS)
    assert spec == {
        "name": "scored", "description": "Per request.", "owner": None, "tags": [],
        "sources": [{"view": "user_stats", "features": ["spend", "visits"]}],
        "request_fields": [{"name": "amount", "data_type": "double"}],
        "inputs": [
            {"name": "spend", "data_type": "double", "view": "user_stats"},
            {"name": "visits", "data_type": "bigint", "view": "user_stats"},
            {"name": "amount", "data_type": "double", "view": None},
        ],
        "features": [{"name": "ratio", "data_type": "double", "description": "amount over spend", "expression": "amount / nullif(spend, 0)"}],
    }


def broken(**changes: Any) -> dict[str, Any]:
    bad = node(**{k: v for k, v in changes.items() if k != "columns"})
    if "columns" in changes:
        bad["columns"] = changes["columns"]
    return bad


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (broken(sources=["user_stat:spend"]), "on-demand view 'scored': config.meta.on_demand_feature_view.sources: 'user_stat:spend' names feature view 'user_stat', which does not exist; feature views: user_profile, user_stats"),
        (broken(sources=["user_stats:spent"]), "sources: feature 'spent' is not in feature view 'user_stats'; its features: spend, visits"),
        (broken(sources="user_stats:spend"), "sources must be a non-empty list of feature references"),
        (broken(sources=["user_stats"]), "sources: 'user_stats' is not of the form view:feature"),
        (broken(request_fields=[{"name": "amount", "data_type": "float64"}]), "request_fields: field 'amount' has data_type 'float64'; request field types: boolean, integer, bigint, double, varchar"),
        (broken(request_fields=[{"name": "amount"}]), "field 'amount' has data_type ''"),
        (broken(request_fields=[{"name": "spend", "data_type": "double"}]), "input name 'spend' is both a feature of 'user_stats' and a request field"),
        (broken(sources=["user_stats:visits", "user_profile:visits"]), "input name 'visits' is both a feature of 'user_stats' and a feature of 'user_profile'"),
        (broken(request_fields=[{"name": "user_id", "data_type": "bigint"}]), "request field 'user_id' is also an entity key of feature view 'user_stats'"),
        (broken(colour="blue"), "config.meta.on_demand_feature_view.colour is not a known field; valid fields: sources, request_fields, owner, tags"),
        (broken(columns={"ratio": {"name": "ratio", "data_type": "double"}}), "column 'ratio' has no expression; give it config.meta.expression, a SQL expression over spend, amount"),
        (broken(columns={"ratio": {"name": "ratio", "data_type": "decimal(10,2)", "config": {"meta": {"expression": "amount"}}}}), "column 'ratio' has data_type 'decimal(10,2)'; on-demand feature types:"),
        (broken(columns={"amount": {"name": "amount", "data_type": "double", "config": {"meta": {"expression": "amount"}}}}), "feature 'amount' has the name of its input"),
        (broken(columns={}), "no features; declare each as a column"),
    ],
    ids=["unknown_view", "unknown_feature", "sources_not_a_list", "reference_without_feature", "bad_request_type", "untyped_request_field",
         "request_field_clashes_with_feature", "features_clash", "request_field_is_a_key", "unknown_field", "no_expression", "bad_feature_type",
         "feature_named_as_input", "no_features"],
)
def test_bad_declarations_are_refused_naming_what_is_wrong(macros: Renderer, bad: dict[str, Any], message: str) -> None:
    with pytest.raises(FeatureStoreError) as error:
        macros.call("on_demand_view_spec", copy.deepcopy(bad), VIEWS)
    assert message in str(error.value)
    assert "on-demand view 'scored'" in str(error.value)


def test_python_maps_every_type_the_macro_allows(macros: Renderer) -> None:
    assert macros.call("on_demand_types") == list(PYTHON_TYPES)


def test_one_sql_text_casts_inputs_and_results_to_their_declared_types(macros: Renderer) -> None:
    spec = macros.call("on_demand_view_spec", node(), VIEWS)
    sql = macros.call("on_demand_select", spec, "requests")
    assert "cast((amount / nullif(spend, 0)) as double) as \"ratio\"" in sql
    assert 'cast("amount" as double) as "amount"' in sql and 'cast("spend" as double) as "spend"' in sql
    in_process = macros.call("on_demand_select", spec, None, None, [], True)
    assert in_process.replace(" ", "").replace("\n", "").endswith(
        'from(selectunnest($1)as"spend",unnest($2)as"amount")as__fs_request)as__fs_on_demand_inputs'
    )
    assert "cast((amount / nullif(spend, 0)) as double) as \"ratio\"" in in_process
