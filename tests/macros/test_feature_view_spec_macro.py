"""parse_duration and feature_view_spec: what a feature view's YAML may say, and the
error (naming the model and the field) when it says something else."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from serving.errors import FeatureStoreError
from serving.registry import python_type
from serving.rendering import Renderer


TYPES = {"user_id": "bigint", "spend": "double"}


def node(types: dict[str, str | None] | None = None, **meta: Any) -> dict[str, Any]:
    """A model node as it appears in dbt's manifest; `types` overrides declared column types."""
    feature_store = {"entity": "user_id", "timestamp_column": "event_timestamp", "created_timestamp_column": "created_timestamp", "ttl": "1 day"}
    feature_store.update(meta)
    names = ["user_id", "event_timestamp", "created_timestamp", "spend", "visits"]
    declared = {**TYPES, **(types or {})}
    return {
        "name": "user_stats",
        "relation_name": '"warehouse"."main"."user_stats"',
        "description": "Stats per user.",
        "config": {"meta": {"feature_store": {k: v for k, v in feature_store.items() if v is not None}}},
        "columns": {name: {"name": name, "data_type": declared.get(name), "description": f"the {name}"} for name in names},
    }


@pytest.mark.parametrize(
    ("text", "normalized", "seconds"),
    [("1 day", "1 day", 86_400), ("12 hours", "12 hours", 43_200), ("90 DAYS", "90 days", 7_776_000),
     ("1 minutes", "1 minute", 60), (" 2 weeks ", "2 weeks", 1_209_600), ("30 seconds", "30 seconds", 30), ("5hour", "5 hours", 18_000),
     ("36500 days", "36500 days", 3_153_600_000)],
)
def test_parse_duration_accepts_fixed_length_units(macros: Renderer, text: str, normalized: str, seconds: int) -> None:
    assert macros.call("parse_duration", text, "owner", "field") == {"text": normalized, "seconds": seconds}


@pytest.mark.parametrize("text", ["1 month", "2 years", "0 days", "abc", "-1 day", "1.5 days", "", 5, None, "36501 days", "999999999 weeks"])
def test_parse_duration_refuses_anything_else_naming_owner_and_field(macros: Renderer, text: Any) -> None:
    with pytest.raises(FeatureStoreError, match=r"^my owner: my\.field is .*expected a positive whole number and a unit"):
        macros.call("parse_duration", text, "my owner", "my.field")


def test_spec_of_a_valid_feature_view(macros: Renderer) -> None:
    spec = macros.call("feature_view_spec", node(online=True, owner="ml@example.com", tags=["user"]))
    assert spec == {
        "name": "user_stats",
        "relation": '"warehouse"."main"."user_stats"',
        "entity": ["user_id"],
        "timestamp_column": "event_timestamp",
        "created_timestamp_column": "created_timestamp",
        "ttl": {"text": "1 day", "seconds": 86_400},
        "online": True,
        "owner": "ml@example.com",
        "tags": ["user"],
        "lifecycle": None,
        "description": "Stats per user.",
        "features": [
            {"name": "spend", "data_type": "double", "description": "the spend"},
            {"name": "visits", "data_type": None, "description": "the visits"},
        ],
        "model": "user_stats",
        "version": None,
        "latest": True,
        "unique_id": None,
    }


def test_spec_defaults_without_ttl_created_timestamp_or_online(macros: Renderer) -> None:
    spec = macros.call("feature_view_spec", node(ttl=None, created_timestamp_column=None, entity=["user_id", "spend"]))
    assert (spec["ttl"], spec["created_timestamp_column"], spec["online"], spec["tags"]) == (None, None, False, [])
    assert spec["entity"] == ["user_id", "spend"]
    assert [feature["name"] for feature in spec["features"]] == ["created_timestamp", "visits"]


@pytest.mark.parametrize("ttl", ["1 month", "0 days", "abc", 5])
def test_bad_ttl_names_the_model_and_the_field(macros: Renderer, ttl: Any) -> None:
    with pytest.raises(FeatureStoreError, match=rf"^feature view 'user_stats': config\.meta\.feature_store\.ttl is {ttl};"):
        macros.call("feature_view_spec", node(ttl=ttl))


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        ({"colour": "blue"}, r"config\.meta\.feature_store\.colour is not a known field; valid fields: entity, timestamp_column"),
        ({"entity": "account_id"}, r"config\.meta\.feature_store\.entity names column 'account_id', which is not among the model's columns"),
        ({"entity": ["user_id", "shop"]}, r"config\.meta\.feature_store\.entity names column 'shop'"),
        ({"timestamp_column": "event_time"}, r"config\.meta\.feature_store\.timestamp_column names column 'event_time'"),
        ({"created_timestamp_column": "loaded_at"}, r"config\.meta\.feature_store\.created_timestamp_column names column 'loaded_at'"),
        ({"online": "yes"}, r"config\.meta\.feature_store\.online is yes; expected true or false"),
        ({"online": 1}, r"config\.meta\.feature_store\.online is 1; expected true or false"),
        ({"entity": []}, r"config\.meta\.feature_store\.entity is required"),
        ({"timestamp_column": None}, r"config\.meta\.feature_store\.timestamp_column is required"),
    ],
)
def test_bad_metadata_names_the_model_and_the_field(macros: Renderer, meta: dict[str, Any], message: str) -> None:
    with pytest.raises(FeatureStoreError, match=r"^feature view 'user_stats': " + message):
        macros.call("feature_view_spec", node(**meta))


def test_missing_feature_store_mapping_is_refused(macros: Renderer) -> None:
    bare = copy.deepcopy(node())
    bare["config"]["meta"]["feature_store"] = "user_id"
    with pytest.raises(FeatureStoreError, match=r"^feature view 'user_stats': config\.meta\.feature_store is missing or not a mapping"):
        macros.call("feature_view_spec", bare)


def test_an_entity_column_without_a_data_type_is_refused(macros: Renderer) -> None:
    with pytest.raises(FeatureStoreError, match=r"^feature view 'user_stats': entity column 'user_id' has no data_type; declare it"):
        macros.call("feature_view_spec", node(types={"user_id": None}))


def test_a_blank_entity_data_type_is_refused_too(macros: Renderer) -> None:
    with pytest.raises(FeatureStoreError, match=r"^feature view 'user_stats': entity column 'user_id' has no data_type"):
        macros.call("feature_view_spec", node(types={"user_id": "  "}, online=True))


@pytest.mark.parametrize("data_type", ["date", "double", "timestamp", "decimal(10, 2)", "hugeint", "ubigint", "boolean", "uuid"])
def test_an_online_entity_of_a_type_the_online_store_cannot_encode_is_refused(macros: Renderer, data_type: str) -> None:
    expected = (
        rf"^feature view 'user_stats': entity column 'user_id' is {re.escape(data_type)}, which the online store cannot use as a key"
        r" \(online: true\); key types: integer \(tinyint, smallint, integer, int, bigint, .*\) or string \(varchar, text, .*\)$"
    )
    with pytest.raises(FeatureStoreError, match=expected):
        macros.call("feature_view_spec", node(types={"user_id": data_type}, online=True))


def test_a_composite_online_key_names_the_column_that_cannot_be_encoded(macros: Renderer) -> None:
    with pytest.raises(FeatureStoreError, match=r"^feature view 'user_stats': entity column 'spend' is double, which the online store"):
        macros.call("feature_view_spec", node(entity=["user_id", "spend"], online=True))


@pytest.mark.parametrize("data_type", ["BIGINT", "integer", "varchar(20)", "VARCHAR", "text", "character varying(8)", "utinyint"])
def test_an_online_entity_of_an_integer_or_string_type_is_accepted(macros: Renderer, data_type: str) -> None:
    spec = macros.call("feature_view_spec", node(types={"user_id": data_type}, online=True))
    assert (spec["entity"], spec["online"]) == (["user_id"], True)


def test_an_offline_view_may_key_on_any_declared_type(macros: Renderer) -> None:
    spec = macros.call("feature_view_spec", node(types={"user_id": "date"}, online=False))
    assert (spec["entity"], spec["online"]) == (["user_id"], False)


@pytest.mark.parametrize("field", ["timestamp_column", "created_timestamp_column"])
def test_an_entity_that_is_also_a_time_column_is_refused(macros: Renderer, field: str) -> None:
    time_column = {"timestamp_column": "event_timestamp", "created_timestamp_column": "created_timestamp"}[field]
    with pytest.raises(FeatureStoreError, match=rf"^feature view 'user_stats': column '{time_column}' is both an entity and the {field}; "):
        macros.call("feature_view_spec", node(entity=["user_id", time_column], types={time_column: "bigint"}))


def test_online_true_given_as_1_is_refused(macros: Renderer) -> None:
    with pytest.raises(FeatureStoreError, match=r"^feature view 'user_stats': config\.meta\.feature_store\.online is 1; expected true or false"):
        macros.call("feature_view_spec", node(online=1))


def test_the_online_key_types_are_the_ones_the_registry_maps_to_python_types(macros: Renderer) -> None:
    families = macros.call("online_key_types")
    assert {name: python_type(name) for name in families["integer"]} == dict.fromkeys(families["integer"], int)
    assert {name: python_type(name) for name in families["string"]} == dict.fromkeys(families["string"], str)
    # And nothing else maps: a type the macro refuses online has no Python key type.
    assert [python_type(name) for name in ("hugeint", "ubigint", "date", "double")] == [None] * 4


def versioned(version: int, latest: int) -> dict[str, Any]:
    return {**node(), "unique_id": f"model.p.user_stats.v{version}", "version": version, "latest_version": latest}


def test_a_model_version_is_a_view_of_its_own_named_model_dot_v_version(macros: Renderer) -> None:
    old, new = macros.call("feature_view_spec", versioned(1, 2)), macros.call("feature_view_spec", versioned(2, 2))
    assert (old["name"], old["model"], old["version"], old["latest"]) == ("user_stats.v1", "user_stats", 1, False)
    assert (new["name"], new["model"], new["version"], new["latest"]) == ("user_stats.v2", "user_stats", 2, True)


def test_a_feature_without_a_description_is_refused_naming_view_and_columns(macros: Renderer) -> None:
    bare = node()
    bare["columns"]["visits"]["description"] = ""
    del bare["columns"]["spend"]["description"]
    with pytest.raises(FeatureStoreError, match=r"^feature view 'user_stats': feature column\(s\) spend, visits have no description; .*"
                                                r"set the var feature_store_require_descriptions: false"):
        macros.call("feature_view_spec", bare)
    # Keys and timestamps are not features: they need no description.
    keyed = node()
    keyed["columns"]["user_id"]["description"] = ""
    assert macros.call("feature_view_spec", keyed)["name"] == "user_stats"


def exposure(features: Any, depends_on: list[str], kind: str = "ml") -> dict[str, Any]:
    return {
        "name": "churn", "type": kind, "description": "Churn model.", "owner": {"name": "ML", "email": "ml@example.com"},
        "config": {"meta": {"feature_store": {"features": features}}}, "depends_on": {"nodes": depends_on},
    }


def test_a_feature_service_spec_lists_its_references_and_views(macros: Renderer) -> None:
    views = [macros.call("feature_view_spec", versioned(1, 2)), macros.call("feature_view_spec", versioned(2, 2))]
    spec = macros.call("feature_service_spec", exposure(["user_stats.v1:spend", "user_stats.v1:*"], ["model.p.user_stats.v1"]), views)
    assert spec == {"name": "churn", "description": "Churn model.", "owner": "ml@example.com",
                    "features": ["user_stats.v1:spend", "user_stats.v1:*"], "views": ["user_stats.v1"]}


@pytest.mark.parametrize(
    ("features", "depends_on", "kind", "message"),
    [
        (["user_stats.v2:spend"], ["model.p.user_stats.v1"], "ml",
         "feature service 'churn': it uses feature view 'user_stats.v2' but its depends_on does not ref() it; add ref('user_stats', v=2) to depends_on"),
        (["user_stats:spend"], ["model.p.user_stats.v2"], "ml",
         "feature service 'churn': feature reference 'user_stats:spend' names versioned feature view 'user_stats' without a version; "
         "a service pins one, e.g. user_stats.v2:spend"),
        (["user_stats.v3:spend"], [], "ml", "feature service 'churn': feature reference 'user_stats.v3:spend' names no feature view; feature views: user_stats.v1, user_stats.v2"),
        (["user_stats.v1:clicks"], ["model.p.user_stats.v1"], "ml", "feature 'clicks' is not in feature view 'user_stats.v1'; its features: spend, visits"),
        (["user_stats.v1"], [], "ml", "feature reference 'user_stats.v1' is not of the form view:feature"),
        ([], [], "ml", "meta.feature_store.features must be a non-empty list"),
        (["user_stats.v1:spend"], ["model.p.user_stats.v1"], "dashboard", "must have type: ml (it has type: dashboard)"),
    ],
    ids=["depends_on_lacks_the_version", "versioned_view_not_pinned", "unknown_version", "unknown_feature", "not_a_reference", "no_features", "not_ml"],
)
def test_a_bad_feature_service_is_refused_in_one_line(macros: Renderer, features: Any, depends_on: list[str], kind: str, message: str) -> None:
    views = [macros.call("feature_view_spec", versioned(1, 2)), macros.call("feature_view_spec", versioned(2, 2))]
    with pytest.raises(FeatureStoreError, match=re.escape(message)):
        macros.call("feature_service_spec", exposure(features, depends_on, kind), views)
