"""The `featurestore` command line, run as a user runs it: `python -m serving ...` in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest


def featurestore(project_dir: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "serving", "--project-dir", str(project_dir), *args],
        capture_output=True,
        text=True,
        env=env,
    )


@pytest.fixture(scope="module")
def entities(built_project: Path, tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    spine = pd.read_parquet(built_project / "data" / "sample" / "label_spine.parquet").head(50)
    return spine.rename(columns={"prediction_time": "event_timestamp"})


def test_list_names_every_feature_view_with_keys_and_ttl(built_project):
    result = featurestore(built_project, "list", "--json")

    assert result.returncode == 0, result.stderr
    views = {view["name"]: view for view in json.loads(result.stdout)}
    assert set(views) == {
        "product_popularity.v1",
        "product_popularity.v2",
        "user_category_windows",
        "user_features",
        "user_last_purchase",
        "user_purchase_windows",
        "user_spend_trend",
    }
    assert views["user_features"]["ttl"] == "1 day"
    assert views["user_category_windows"]["entity"] == ["user_id", "category"]
    assert "total_purchases" in [feature["name"] for feature in views["user_features"]["features"]]


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_historical_writes_the_same_rows_as_the_python_api(built_project, entities, tmp_path, suffix):
    from serving import FeatureStore

    source = tmp_path / f"entities{suffix}"
    entities.to_parquet(source) if suffix == ".parquet" else entities.to_csv(source, index=False)
    out = tmp_path / f"training{suffix}"
    features = ["user_features:total_purchases", "user_purchase_windows:spend_7d"]

    result = featurestore(built_project, "historical", "--entities", str(source), "--features", ",".join(features), "--out", str(out))

    assert result.returncode == 0, result.stderr
    written = pd.read_parquet(out) if suffix == ".parquet" else pd.read_csv(out)
    expected = FeatureStore(built_project).get_historical_features(entities, features)
    assert written["user_id"].tolist() == entities["user_id"].tolist()
    assert written["spend_7d"].round(6).fillna(-1).tolist() == expected["spend_7d"].round(6).fillna(-1).tolist()
    assert written["total_purchases"].fillna(-1).tolist() == expected["total_purchases"].fillna(-1).astype(float).tolist()


def test_historical_with_an_unknown_feature_exits_1_naming_the_valid_ones(built_project, entities, tmp_path):
    source = tmp_path / "entities.parquet"
    entities.to_parquet(source)
    out = tmp_path / "training.parquet"

    result = featurestore(built_project, "historical", "--entities", str(source), "--features", "user_features:nope", "--out", str(out))

    assert result.returncode == 1
    assert "feature 'nope' is not in feature view 'user_features'" in result.stderr
    assert "total_purchases" in result.stderr
    assert not out.exists()


def test_historical_with_a_malformed_entities_file_exits_1_and_writes_nothing(built_project, tmp_path):
    source = tmp_path / "entities.parquet"
    source.write_bytes(b"this is not parquet")
    out = tmp_path / "training.parquet"

    result = featurestore(built_project, "historical", "--entities", str(source), "--features", "user_features:total_purchases", "--out", str(out))

    assert result.returncode == 1
    assert f"cannot read entities file {source}" in result.stderr
    assert not out.exists() and not list(tmp_path.glob("*.partial"))


def test_historical_without_the_entity_key_column_names_the_missing_key(built_project, entities, tmp_path):
    source = tmp_path / "entities.parquet"
    entities.drop(columns=["user_id"]).to_parquet(source)

    result = featurestore(
        built_project, "historical", "--entities", str(source), "--features", "user_features:total_purchases", "--out", str(tmp_path / "o.parquet")
    )

    assert result.returncode == 1
    assert "lacks entity key column(s) user_id" in result.stderr


def test_an_unknown_command_is_a_usage_error(built_project):
    assert featurestore(built_project, "frobnicate").returncode == 2
