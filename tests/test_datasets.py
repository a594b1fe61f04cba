"""Saved training sets: get_historical_features(..., save_as=NAME) in the real DuckDB
warehouse, its lineage checked against the raw Parquet files, and `dataset verify` telling
equal, changed data and changed definitions apart (Python and the command line)."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from project_copies import copy_built
from serving import FeatureStore
from serving.datasets import DATA_CHANGED_EXIT, DEFINITIONS_CHANGED_EXIT, table_hash
from serving.errors import DatasetError

FEATURES = ["user_features:total_purchases", "user_features:avg_purchase_amount", "user_purchase_windows:spend_7d"]


def featurestore(project_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "serving", "--project-dir", str(project_dir), *args], capture_output=True, text=True)


def spine(project: Path) -> pd.DataFrame:
    frame = pd.read_parquet(project / "data" / "sample" / "label_spine.parquet").head(60)
    return frame.rename(columns={"prediction_time": "event_timestamp"})


@pytest.fixture(scope="module")
def saved_project(built_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the built project holding one saved set, `churn` (read-only for tests: copy it to change it)."""
    project = copy_built(built_project, tmp_path_factory.mktemp("datasets") / "project")
    FeatureStore(project).get_historical_features(spine(project), FEATURES, save_as="churn")
    return project


@pytest.fixture
def project(saved_project: Path, tmp_path: Path) -> Path:
    return copy_built(saved_project, tmp_path / "project")


def warehouse(project: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(project / "target" / "warehouse.duckdb"))


def test_a_saved_set_reads_back_as_it_was_returned(saved_project, tmp_path):
    project = copy_built(saved_project, tmp_path / "project")
    store = FeatureStore(project)
    returned = store.get_historical_features(spine(project), FEATURES, save_as="again")

    saved = store.get_saved_dataset("again").to_df()

    assert list(saved.columns) == list(returned.columns)
    assert table_hash(saved) == table_hash(returned)
    pd.testing.assert_frame_equal(saved, returned, check_dtype=False)


def test_the_lineage_records_what_made_the_set(saved_project):
    store = FeatureStore(saved_project)
    lineage = store.get_saved_dataset("churn").lineage
    raw = pd.read_parquet(saved_project / "data" / "sample" / "user_features.parquet")
    entities = spine(saved_project)

    assert lineage["name"] == "churn"
    assert lineage["manifest_hash"] == store.datasets.manifest_hash
    assert lineage["feature_references"] == FEATURES
    assert lineage["entity"] == {"columns": ["user_id", "event_timestamp", "label"], "rows": 60, "hash": table_hash(entities)}
    assert lineage["result"]["rows"] == 60
    created = dt.datetime.fromisoformat(lineage["created_at"])
    assert abs((dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - created).total_seconds()) < 600
    views = {view["name"]: view for view in lineage["feature_views"]}
    assert list(views) == ["user_features", "user_purchase_windows"]
    user_features = views["user_features"]
    assert user_features["version"] is None  # the example models are not versioned
    assert user_features["row_count"] == len(raw)
    latest = raw["event_timestamp"].max()
    latest = latest.tz_convert("UTC").tz_localize(None) if latest.tzinfo else latest
    assert dt.datetime.fromisoformat(user_features["latest_event_time"]) == latest.to_pydatetime()
    assert re.fullmatch(r"[0-9a-f]{64}", user_features["definition_checksum"])
    assert re.fullmatch(r"[0-9a-f]{64}", lineage["retrieval_sql_checksum"])
    # `dbt build` wrote the manifest, so it holds the compiled SQL.
    assert re.fullmatch(r"[0-9a-f]{64}", user_features["compiled_sql_checksum"])


def test_an_unchanged_set_verifies_equal(saved_project):
    verification = FeatureStore(saved_project).verify_saved_dataset("churn")

    assert verification.status == "equal"
    assert verification.exit_code == 0
    assert verification.differences == []


def test_a_value_corrected_in_the_warehouse_is_data_changed(project):
    store = FeatureStore(project)
    saved = store.get_saved_dataset("churn").to_df()
    user = int(saved.loc[saved["total_purchases"].notna(), "user_id"].iloc[0])
    with warehouse(project) as connection:
        connection.execute(f"update {store.get_feature_view('user_features').relation} set total_purchases = total_purchases + 1000 where user_id = {user}")
    affected = int(((saved["user_id"] == user) & saved["total_purchases"].notna()).sum())

    verification = store.verify_saved_dataset("churn")

    assert verification.status == "data_changed"
    assert verification.exit_code == DATA_CHANGED_EXIT
    assert [(d.column, d.rows, d.max_abs_difference) for d in verification.differences] == [("total_purchases", affected, 1000.0)]
    assert "rows were corrected in place" in str(verification)


def test_new_rows_the_set_cannot_see_leave_it_equal_and_are_reported(project):
    store = FeatureStore(project)
    relation = store.get_feature_view("user_features").relation
    with warehouse(project) as connection:
        connection.execute(
            f"insert into {relation} select user_id, timestamp '2031-01-01 00:00:00+00', created_timestamp, 1, 1.0, 1 "
            f"from {relation} limit 1"
        )

    verification = store.verify_saved_dataset("churn")

    assert verification.status == "equal"
    change = next(view for view in verification.views if view.name == "user_features")
    assert change.rows_now == change.saved_rows + 1
    assert change.latest_event_time_now == "2031-01-01T00:00:00"
    assert "user_features data:" in str(verification)


def test_a_changed_ttl_is_definitions_changed(project):
    features_yml = project / "models" / "features" / "features.yml"
    features_yml.write_text(features_yml.read_text().replace("ttl: 1 day", "ttl: 1 hour", 1))

    verification = FeatureStore(project).verify_saved_dataset("churn")

    assert verification.status == "definitions_changed"
    assert verification.exit_code == DEFINITIONS_CHANGED_EXIT
    assert [view.name for view in verification.views if view.definition_changed] == ["user_features"]
    assert {d.column for d in verification.differences} <= {"total_purchases", "avg_purchase_amount"}
    assert verification.differences
    assert "definition changed since the save: user_features" in str(verification)


def test_a_definition_edit_that_leaves_the_rows_alone_verifies_equal_and_is_listed(project):
    model = project / "models" / "features" / "user_features.sql"
    model.write_text(model.read_text() + "\n-- a comment: the model's SQL text changed, its rows did not\n")

    verification = FeatureStore(project).verify_saved_dataset("churn")

    assert verification.status == "equal"
    assert [view.name for view in verification.views if view.definition_changed] == ["user_features"]
    assert "do not alter this set's rows" in str(verification)


def test_a_feature_gone_from_its_view_is_definitions_changed(project):
    features_yml = project / "models" / "features" / "features.yml"
    features_yml.write_text(features_yml.read_text().replace("name: total_purchases", "name: purchases_total", 1))
    services_yml = project / "models" / "services.yml"  # the feature service follows the rename
    services_yml.write_text(services_yml.read_text().replace("user_features:total_purchases", "user_features:purchases_total"))

    verification = FeatureStore(project).verify_saved_dataset("churn")

    assert verification.status == "definitions_changed"
    assert verification.reasons == [
        "a feature is gone: feature 'total_purchases' is not in feature view 'user_features'; its features: "
        "purchases_total, avg_purchase_amount, days_since_last_purchase"
    ]


def test_saving_a_name_again_replaces_the_set_and_drops_its_old_table(project):
    store = FeatureStore(project)
    first = store.get_saved_dataset("churn")

    store.get_historical_features(spine(project).head(5), FEATURES[:1], save_as="churn")

    second = store.get_saved_dataset("churn")
    assert [saved.name for saved in store.list_saved_datasets()] == ["churn"]
    assert second.rows == 5 and second.features == FEATURES[:1]
    with warehouse(project) as connection:
        tables = {row[0] for row in connection.execute(
            "select table_name from information_schema.tables where table_schema = 'feature_store_datasets'"
        ).fetchall()}
    assert tables == {"saved_datasets", second.table}
    assert first.table not in tables


def test_an_unknown_or_badly_named_dataset_is_refused_with_the_valid_ones(saved_project):
    store = FeatureStore(saved_project)
    with pytest.raises(DatasetError, match=r"no saved dataset named 'nope' .*; saved datasets: churn"):
        store.get_saved_dataset("nope")
    with pytest.raises(DatasetError, match=r"dataset name 'Bad-Name' is not valid; use 1-40 lowercase"):
        store.get_historical_features(spine(saved_project), FEATURES, save_as="Bad-Name")


def test_rows_changed_behind_the_stores_back_are_named(project):
    store = FeatureStore(project)
    table = store.get_saved_dataset("churn").table
    with warehouse(project) as connection:
        connection.execute(f'update feature_store_datasets."{table}" set label = not label where __fs_row = 0')

    with pytest.raises(DatasetError, match="were changed after it was saved"):
        store.verify_saved_dataset("churn")


def test_the_command_line_saves_lists_shows_and_verifies(project, tmp_path):
    entities = tmp_path / "entities.parquet"
    spine(project).head(10).to_parquet(entities)

    saved = featurestore(project, "historical", "--entities", str(entities), "--features", ",".join(FEATURES), "--save-as", "cli_set")
    listed = featurestore(project, "dataset", "list")
    shown = featurestore(project, "dataset", "show", "cli_set")
    verified = featurestore(project, "dataset", "verify", "cli_set", "--json")

    assert saved.returncode == 0, saved.stderr
    assert saved.stdout == "saved 10 rows x 6 columns as dataset cli_set\n"
    assert [line.split()[0] for line in listed.stdout.splitlines()] == ["churn", "cli_set"]
    assert json.loads(shown.stdout)["entity"]["rows"] == 10
    assert verified.returncode == 0, verified.stderr
    assert json.loads(verified.stdout)["status"] == "equal"


def test_the_command_line_exits_4_when_the_data_changed(project):
    # Exit 5 (definitions changed) comes from the same Verification.exit_code, checked above.
    store = FeatureStore(project)
    with warehouse(project) as connection:
        connection.execute(f"update {store.get_feature_view('user_purchase_windows').relation} set spend_7d = spend_7d + 1")

    result = featurestore(project, "dataset", "verify", "churn")

    assert result.returncode == DATA_CHANGED_EXIT, result.stderr
    assert result.stdout.startswith("dataset churn: DIFFERS, data changed")
    assert "spend_7d:" in result.stdout


def test_the_command_line_refuses_an_unknown_dataset_in_one_line(saved_project):
    result = featurestore(saved_project, "dataset", "verify", "nope")

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: no saved dataset named 'nope'")
    assert len(result.stderr.strip().splitlines()) == 1
