"""Saved training sets: get_historical_features(..., save_as=NAME) in the real DuckDB
warehouse, its lineage checked against the raw Parquet files, and `dataset verify` telling
equal, changed data and changed definitions apart (Python and the command line)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Callable

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


def with_saved_set(source: Path, destination: Path, name: str, entities: Callable[[Path], pd.DataFrame], features: list[str]) -> Path:
    """A copy of the built project `source` holding one more saved set, `name`."""
    project = copy_built(source, destination)
    FeatureStore(project).get_historical_features(entities(project), features, save_as=name)
    return project


@pytest.fixture(scope="module")
def saved_project(built_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the built project holding one saved set, `churn` (read-only for tests: copy it to change it)."""
    return with_saved_set(built_project, tmp_path_factory.mktemp("datasets") / "project", "churn", spine, FEATURES)


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


# -- on-demand features -------------------------------------------------------------------

ON_DEMAND = "purchase_request_features"
ON_DEMAND_FEATURES = [f"{ON_DEMAND}:*", "user_features:total_purchases"]
EXPRESSION = "expression: amount / nullif(avg_amount_30d, 0)"


def scored_spine(project: Path) -> pd.DataFrame:
    """The spine plus the request field `amount`: zeros, NULLs and ordinary amounts."""
    frame = spine(project)
    frame["amount"] = [None if i % 10 == 3 else float((i * 37) % 250) for i in range(len(frame))]
    return frame


@pytest.fixture(scope="module")
def scored_project(saved_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The saved project plus `scoring`, a set with on-demand features (read-only for tests)."""
    return with_saved_set(saved_project, tmp_path_factory.mktemp("scored") / "project", "scoring", scored_spine, ON_DEMAND_FEATURES)


def test_a_set_with_on_demand_features_reads_back_with_the_computed_values(scored_project):
    store = FeatureStore(scored_project)
    entities = scored_spine(scored_project)
    saved = store.get_saved_dataset("scoring").to_df()
    averages = store.get_historical_features(entities, ["user_purchase_windows:avg_amount_30d", "user_purchase_windows:max_amount_30d"])

    assert list(saved.columns) == ["user_id", "event_timestamp", "label", "amount", "amount_vs_avg_30d", "exceeds_max_30d", "total_purchases"]
    pd.testing.assert_frame_equal(saved, store.get_historical_features(entities, ON_DEMAND_FEATURES), check_dtype=False)
    # The expressions of on_demand.yml, computed here from the source features.
    expected_ratio = [
        None if pd.isna(amount) or pd.isna(average) or average == 0 else amount / average
        for amount, average in zip(entities["amount"], averages["avg_amount_30d"])
    ]
    expected_exceeds = [
        None if pd.isna(amount) else bool(amount > (0 if pd.isna(largest) else largest))
        for amount, largest in zip(entities["amount"], averages["max_amount_30d"])
    ]
    assert [None if pd.isna(value) else pytest.approx(value) for value in saved["amount_vs_avg_30d"]] == expected_ratio
    assert [None if pd.isna(value) else bool(value) for value in saved["exceeds_max_30d"]] == expected_exceeds
    assert sum(value is not None for value in expected_ratio) > 10 and None in expected_ratio


def test_the_lineage_records_the_on_demand_view_and_the_views_it_reads(scored_project):
    store = FeatureStore(scored_project)
    lineage = store.get_saved_dataset("scoring").lineage
    relation = store.get_feature_view("user_purchase_windows").relation
    with warehouse(scored_project) as connection:
        windows_rows = connection.execute(f"select count(*) from {relation}").fetchone()[0]

    assert lineage["format"] == 2
    assert lineage["features"] == [f"{ON_DEMAND}:amount_vs_avg_30d", f"{ON_DEMAND}:exceeds_max_30d", "user_features:total_purchases"]
    assert lineage["entity"]["columns"] == ["user_id", "event_timestamp", "label", "amount"]
    assert lineage["entity"]["hash"] == table_hash(scored_spine(scored_project))
    [on_demand] = lineage["on_demand_feature_views"]
    assert on_demand["name"] == ON_DEMAND
    assert on_demand["sources"] == ["user_purchase_windows:avg_amount_30d", "user_purchase_windows:max_amount_30d"]
    assert on_demand["request_fields"] == {"amount": "double"}
    assert re.fullmatch(r"[0-9a-f]{64}", on_demand["definition_checksum"])
    assert on_demand["sql_checksum"] == hashlib.sha256(store.registry.on_demand_views[ON_DEMAND].sql.encode()).hexdigest()
    views = {view["name"]: view for view in lineage["feature_views"]}
    assert list(views) == ["user_purchase_windows", "user_features"]
    assert views["user_purchase_windows"]["row_count"] == windows_rows
    assert re.fullmatch(r"[0-9a-f]{64}", views["user_purchase_windows"]["compiled_sql_checksum"])
    # The retrieval SQL is the on-demand query, not the plain join of the same sources.
    plain = store.get_saved_dataset("churn").lineage["retrieval_sql_checksum"]
    assert re.fullmatch(r"[0-9a-f]{64}", lineage["retrieval_sql_checksum"]) and lineage["retrieval_sql_checksum"] != plain


def test_an_unchanged_set_with_on_demand_features_verifies_equal(scored_project):
    verification = FeatureStore(scored_project).verify_saved_dataset("scoring")

    assert verification.status == "equal", str(verification)
    assert verification.differences == [] and verification.reasons == []
    assert [(v.name, v.definition_changed) for v in verification.on_demand_views] == [(ON_DEMAND, False)]
    assert [(v.name, v.definition_changed, v.data_changed) for v in verification.views] == [
        ("user_purchase_windows", False, False),
        ("user_features", False, False),
    ]


def test_an_edited_on_demand_expression_is_definitions_changed(scored_project, tmp_path):
    scored = copy_built(scored_project, tmp_path / "project")
    doubled = FeatureStore(scored).get_saved_dataset("scoring").to_df()["amount_vs_avg_30d"].dropna()
    on_demand_yml = scored / "models" / "features" / "on_demand.yml"
    text = on_demand_yml.read_text()
    assert EXPRESSION in text
    on_demand_yml.write_text(text.replace(EXPRESSION, "expression: 2 * amount / nullif(avg_amount_30d, 0)"))

    verification = FeatureStore(scored).verify_saved_dataset("scoring")  # a new store parses the project again

    assert verification.status == "definitions_changed"
    assert verification.exit_code == DEFINITIONS_CHANGED_EXIT
    assert [(v.name, v.definition_changed) for v in verification.on_demand_views] == [(ON_DEMAND, True)]
    assert not any(v.definition_changed or v.data_changed for v in verification.views)
    [difference] = verification.differences
    assert (difference.column, difference.rows) == ("amount_vs_avg_30d", int((doubled != 0).sum()))
    assert difference.max_abs_difference == pytest.approx(doubled.abs().max())
    assert f"definition changed since the save: {ON_DEMAND}" in str(verification)
    assert "point-in-time join SQL rendered for this set changed" in str(verification)


def test_a_source_value_changed_under_an_on_demand_feature_is_data_changed(scored_project, tmp_path):
    scored = copy_built(scored_project, tmp_path / "project")
    store = FeatureStore(scored)
    saved = store.get_saved_dataset("scoring").to_df()
    user = int(saved.loc[saved["amount_vs_avg_30d"].fillna(0) != 0, "user_id"].iloc[0])
    with warehouse(scored) as connection:
        connection.execute(
            f"update {store.get_feature_view('user_purchase_windows').relation} set avg_amount_30d = avg_amount_30d * 4 where user_id = {user}"
        )
    affected = saved.loc[(saved["user_id"] == user) & (saved["amount_vs_avg_30d"].fillna(0) != 0), "amount_vs_avg_30d"]

    verification = store.verify_saved_dataset("scoring")

    assert verification.status == "data_changed"
    assert verification.exit_code == DATA_CHANGED_EXIT
    [difference] = verification.differences
    assert (difference.column, difference.rows) == ("amount_vs_avg_30d", len(affected))
    assert difference.max_abs_difference == pytest.approx((affected * 0.75).abs().max())
    assert not any(v.definition_changed for v in [*verification.views, *verification.on_demand_views])
    assert "rows were corrected in place" in str(verification)


def test_a_request_field_added_to_the_on_demand_view_is_definitions_changed(scored_project, tmp_path):
    scored = copy_built(scored_project, tmp_path / "project")
    on_demand_yml = scored / "models" / "features" / "on_demand.yml"
    text = on_demand_yml.read_text()
    on_demand_yml.write_text(text.replace("- {name: amount, data_type: double}", "- {name: amount, data_type: double}\n        - {name: currency, data_type: varchar}"))

    verification = FeatureStore(scored).verify_saved_dataset("scoring")

    assert verification.status == "definitions_changed"
    assert verification.reasons == [
        "an on-demand view needs a new request field: entity_df lacks request field(s) currency; "
        f"on-demand view '{ON_DEMAND}' needs amount (double), currency (varchar)"
    ]


def test_a_set_saved_before_on_demand_lineage_still_verifies(project):
    """Format 1 lineages (no on_demand_feature_views) read and verify as before."""
    store = FeatureStore(project)
    lineage = dict(store.get_saved_dataset("churn").lineage)
    del lineage["on_demand_feature_views"]
    lineage["format"] = 1
    with warehouse(project) as connection:
        connection.execute(
            "update feature_store_datasets.saved_datasets set lineage = ? where name = 'churn'", [json.dumps(lineage, sort_keys=True)]
        )

    verification = FeatureStore(project).verify_saved_dataset("churn")

    assert FeatureStore(project).get_saved_dataset("churn").lineage["format"] == 1
    assert verification.status == "equal" and verification.reasons == [] and verification.on_demand_views == []


def test_the_command_line_saves_and_verifies_on_demand_features(scored_project, tmp_path):
    scored = copy_built(scored_project, tmp_path / "project")
    entities = tmp_path / "entities.parquet"
    scored_spine(scored).head(12).to_parquet(entities)

    saved = featurestore(scored, "historical", "--entities", str(entities), "--features", ",".join(ON_DEMAND_FEATURES), "--save-as", "cli_scoring")
    verified = featurestore(scored, "dataset", "verify", "cli_scoring", "--json")

    assert saved.returncode == 0, saved.stderr
    assert saved.stdout == "saved 12 rows x 7 columns as dataset cli_scoring\n"
    assert verified.returncode == 0, verified.stderr
    answer = json.loads(verified.stdout)
    assert answer["status"] == "equal"
    assert answer["on_demand_views"] == [{"name": ON_DEMAND, "definition_changed": False}]
    rows = FeatureStore(scored).get_saved_dataset("cli_scoring").to_df()
    expected = FeatureStore(scored).get_historical_features(scored_spine(scored).head(12), ON_DEMAND_FEATURES)
    pd.testing.assert_frame_equal(rows, expected, check_dtype=False)


def test_a_set_with_full_names_of_an_unversioned_reference_to_a_versioned_view_verifies_equal(saved_project, tmp_path):
    """verify pins the version saved (product_popularity.v2); the columns keep the names the
    set was saved with (product_popularity__..., not product_popularity_v2__...)."""
    project = copy_built(saved_project, tmp_path / "project")
    store = FeatureStore(project)
    entities = pd.DataFrame({"product_id": list(range(1, 21)), "event_timestamp": pd.Timestamp("2026-02-15", tz="UTC")})
    returned = store.get_historical_features(
        entities, ["product_popularity:product_purchases_30d"], full_feature_names=True, save_as="products"
    )
    assert list(returned.columns) == ["product_id", "event_timestamp", "product_popularity__product_purchases_30d"]
    assert returned["product_popularity__product_purchases_30d"].notna().any()

    verification = store.verify_saved_dataset("products")

    assert verification.status == "equal", verification.reasons
    assert store.get_saved_dataset("products").lineage["features"] == ["product_popularity.v2:product_purchases_30d"]
