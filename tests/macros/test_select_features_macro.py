"""select_features: the `features=` argument of point_in_time_join, "view:feature" or "view:*"."""

from __future__ import annotations

import pytest

from serving.errors import FeatureStoreError
from serving.rendering import Renderer

SPECS = [
    {"name": "users", "features": [{"name": "a"}, {"name": "b"}, {"name": "c"}]},
    {"name": "items", "features": [{"name": "x"}, {"name": "y"}]},
]


@pytest.fixture
def selected(macros: Renderer):
    def select(references):
        return [(spec["name"], [f["name"] for f in spec["features"]]) for spec in macros.call("select_features", SPECS, references)]

    return select


def test_only_the_requested_features_remain_in_each_views_column_order(selected):
    assert selected(["users:c", "users:a", "items:y"]) == [("users", ["a", "c"]), ("items", ["y"])]


def test_a_view_not_asked_for_is_dropped_and_star_takes_every_feature(selected):
    assert selected(["items:*"]) == [("items", ["x", "y"])]


def test_a_feature_asked_twice_comes_once(selected):
    assert selected(["users:b", "users:*", "users:b"]) == [("users", ["a", "b", "c"])]


def test_an_unknown_feature_names_the_views_features(selected):
    with pytest.raises(FeatureStoreError, match="feature 'z' is not in feature view 'users'; its features: a, b, c"):
        selected(["users:z"])


@pytest.mark.parametrize("reference", ["nope:a", "users", "users:a:b"])
def test_a_malformed_reference_or_unknown_view_names_the_views(selected, reference):
    with pytest.raises(FeatureStoreError, match="views: users, items"):
        selected([reference])


def test_views_come_in_the_order_of_their_first_reference(selected):
    assert selected(["items:y", "users:c", "items:x", "users:a"]) == [("items", ["x", "y"]), ("users", ["a", "c"])]
