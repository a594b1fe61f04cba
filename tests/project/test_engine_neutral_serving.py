"""Serving from the built project: a warehouse opens wherever it is, and feature selection
follows one rule in Python and SQL."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pandas as pd
import pytest

from serving.dbt_target import read_manifest_json
from serving.registry import Registry
from serving.rendering import Renderer
from serving.store import FeatureStore

FEATURES = ["user_features:total_purchases", "user_purchase_windows:spend_30d", "user_features:avg_purchase_amount"]


def entity_rows() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": [1, 2, 3, 4, 5, 10**9],
            "event_timestamp": pd.to_datetime(["2026-01-20", "2026-01-25", "2026-02-01", "2026-02-05", "2026-01-10", "2026-02-01"], utc=True),
        }
    )


def built_rows(store: FeatureStore) -> pd.DataFrame:
    """Entity rows at the times of real snapshot rows (so features are found), plus misses."""
    with store.offline.engine.session() as session:
        found = session.query("select user_id, event_timestamp from user_features order by event_timestamp, user_id limit 20").to_pandas()
    return pd.concat([found, entity_rows()], ignore_index=True)


def test_a_copy_under_another_name_serves_the_same_features(built_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = FeatureStore(project_dir=built_project)
    rows = built_rows(original)
    expected = original.get_historical_features(rows, FEATURES)
    project = tmp_path / "project"
    shutil.copytree(built_project, project, ignore=shutil.ignore_patterns("logs", "feature_store_render"))
    # Moved, not copied: the manifest's catalog ("warehouse") no longer exists anywhere.
    served = tmp_path / "serving_host" / "prod_features_copy.duckdb"
    served.parent.mkdir()
    (project / "target" / "warehouse.duckdb").rename(served)
    monkeypatch.setenv("FEATURE_STORE_DUCKDB", str(served))

    store = FeatureStore(project_dir=project)
    actual = store.get_historical_features(rows, FEATURES)

    assert store.get_feature_view("user_features").relation == '"prod_features_copy"."main"."user_features"'
    pd.testing.assert_frame_equal(actual, expected)
    assert actual["total_purchases"].notna().sum() >= 20 and actual["total_purchases"].isna().sum() >= 1


def test_python_and_sql_select_features_by_one_rule(parsed_project: Path) -> None:
    manifest, manifest_hash = read_manifest_json(parsed_project)
    renderer = Renderer(parsed_project, manifest_hash, cache=False)
    registry = Registry.from_manifest(manifest, renderer)
    specs = [view.spec for view in registry.views.values()]
    choices = [f"{view.name}:{feature}" for view in registry.views.values() for feature in [*view.feature_names, "*"]]
    rng = random.Random(7)
    for _ in range(25):
        references = rng.sample(choices, rng.randint(1, 6)) * rng.choice([1, 2])
        in_python = [(view.name, features) for view, features in registry.resolve(references)]
        in_sql = [(spec["name"], [f["name"] for f in spec["features"]]) for spec in renderer.call("select_features", specs, references)]
        assert in_python == in_sql, references


def test_historical_columns_follow_the_selection_rule(built_project: Path) -> None:
    store = FeatureStore(project_dir=built_project)
    result = store.get_historical_features(entity_rows(), FEATURES)
    # Views by first reference; each view's features in its column order, not request order.
    assert list(result.columns) == ["user_id", "event_timestamp", "total_purchases", "avg_purchase_amount", "spend_30d"]
