"""`featurestore describe`, `status` with source freshness, and `--feature-service`, run as a
user runs them against a real Redis (one node) and the built DuckDB warehouse."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Iterator

import pandas as pd
import pytest

from online_checks import drop_prefix
from project_copies import copy_built, dbt
from serving.store import FeatureStore

AS_OF = "2026-02-10T12:00:00Z"
SERVICE = "purchase_propensity"


def featurestore(project_dir: Path, redis_url: str, prefix: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REDIS_URL": redis_url, "FEATURE_STORE_REDIS_PREFIX": prefix}
    return subprocess.run([sys.executable, "-m", "serving", "--project-dir", str(project_dir), *args], capture_output=True, text=True, env=env)


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0].removeprefix("error: ")


@pytest.fixture(scope="module")
def catalog(built_project: Path, embedded_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str, str]]:
    """A copy of the built project with product_popularity.v1 exported and `dbt source
    freshness` run (in a copy: dbt rewrites the manifest, without the compiled SQL that
    other tests read from the shared build)."""
    built_project = copy_built(built_project, tmp_path_factory.mktemp("catalog") / "project")
    prefix = f"fstest-catalog-{uuid.uuid4().hex[:12]}"
    done = featurestore(built_project, embedded_url, prefix, "materialize", "--as-of", AS_OF, "--select", "product_popularity.v1", "--select", "user_features",
                        "--select", "user_purchase_windows")
    assert done.returncode == 0, done.stderr
    # The sample data ends in early 2026: both sources are past error_after, so dbt exits 1.
    dbt(built_project, "source", "freshness", check=False)
    assert (built_project / "target" / "sources.json").exists()
    yield built_project, embedded_url, prefix
    drop_prefix(embedded_url, prefix)


def test_describe_shows_features_entity_ttl_owner_export_freshness_and_services(catalog: tuple[Path, str, str]) -> None:
    project, url, prefix = catalog
    shown = featurestore(project, url, prefix, "describe", "product_popularity.v1")

    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0] == "product_popularity.v1  (version 1 of product_popularity; versions: product_popularity.v1, product_popularity.v2)"
    assert lines[1] == "  How much each product sells and to how many users."
    assert lines[2] == "  entity: product_id (bigint)   event time: event_timestamp   ttl: none"
    assert lines[3] == "  owner: growth-ml@example.com   tags: product, windows"
    assert lines[4].startswith("  online: yes; last export: version ") and ", as of 2026-02-10T12:00:00 (" in lines[4]
    assert lines[5].startswith("  source raw.purchases: error (warn after 1 day, error after 3 days): newest row loaded 2026-")
    assert lines[6] == "  used by feature services: purchase_propensity"
    view = FeatureStore(project).get_feature_view("product_popularity.v1")
    assert lines[7] == f"  features ({len(view.features)}):"
    for line, feature in zip(lines[8:], view.features):
        assert line.split(None, 2) == [feature.name, feature.data_type, feature.description]


def test_describe_json_lists_every_view_with_its_catalog_entry(catalog: tuple[Path, str, str]) -> None:
    project, url, prefix = catalog
    shown = featurestore(project, url, prefix, "describe", "--json")

    assert shown.returncode == 0, shown.stderr
    rows = {row["name"]: row for row in json.loads(shown.stdout)}
    store = FeatureStore(project)
    assert list(rows) == [view.name for view in store.list_feature_views()] + [view.name for view in store.list_on_demand_feature_views()]
    assert {row["kind"] for row in rows.values()} == {"feature_view", "on_demand_feature_view"}
    features = rows["user_features"]
    assert (features["ttl"], features["online"], features["owner"], features["entity"]) == ("1 day", True, "growth-ml@example.com", {"user_id": "bigint"})
    assert all(feature["description"] for row in rows.values() for feature in row["features"])
    assert features["last_export"]["as_of"] == "2026-02-10T12:00:00" and features["last_export"]["entities"] > 0
    assert rows["user_spend_trend"]["last_export"] == {"version": None}
    assert [(s["source"], s["status"]) for s in features["sources"]] == [("raw.user_features", "error")]
    assert rows["product_popularity.v2"]["feature_services"] == [] and rows["product_popularity.v1"]["feature_services"] == [SERVICE]
    assert (rows["product_popularity.v2"]["version"], rows["product_popularity.v2"]["latest"]) == ("2", True)


def test_describe_shows_an_on_demand_view_with_its_sources_and_request_fields(catalog: tuple[Path, str, str]) -> None:
    project, url, prefix = catalog
    shown = featurestore(project, url, prefix, "describe", "purchase_request_features")

    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[:6] == [
        "purchase_request_features  (on demand: computed per request, never exported)",
        "  The purchase being scored, compared with the user's last 30 days.",
        "  reads: user_purchase_windows:avg_amount_30d, user_purchase_windows:max_amount_30d",
        "  request fields: amount (double)",
        "  owner: growth-ml@example.com   tags: user, request",
        "  features (2):",
    ]
    row = json.loads(featurestore(project, url, prefix, "describe", "purchase_request_features", "--json").stdout)[0]
    assert [(f["name"], f["type"]) for f in row["features"]] == [("amount_vs_avg_30d", "double"), ("exceeds_max_30d", "boolean")]
    assert row["request_fields"] == [{"name": "amount", "type": "double"}]


def test_describe_with_redis_down_still_prints_the_catalog_and_names_the_server(catalog: tuple[Path, str, str]) -> None:
    project, _, prefix = catalog
    shown = featurestore(project, "redis://127.0.0.1:1/0", prefix, "describe", "user_features")

    assert shown.returncode == 0, shown.stderr
    assert "  online: yes; last export unknown: " in shown.stdout and "127.0.0.1:1" in shown.stdout


def test_status_includes_the_freshness_of_each_source(catalog: tuple[Path, str, str]) -> None:
    project, url, prefix = catalog
    shown = featurestore(project, url, prefix, "status")

    assert shown.returncode == 0, shown.stderr
    sources = [line for line in shown.stdout.splitlines() if line.startswith("source ")]
    assert [line.split(":")[0] for line in sources] == ["source raw.purchases", "source raw.user_features"]
    assert all(": error (warn after 1 day, error after 3 days): newest row loaded 2026-" in line for line in sources)
    listed = json.loads(featurestore(project, url, prefix, "status", "--json").stdout)
    windows = next(row for row in listed if row["view"] == "user_purchase_windows")
    assert [(s["source"], s["status"], s["warn_after"]) for s in windows["sources"]] == [("raw.purchases", "error", "1 day")]
    results = {r["unique_id"]: r for r in json.loads((project / "target" / "sources.json").read_text())["results"]}
    assert windows["sources"][0]["age_seconds"] == results["source.feature_store.raw.purchases"]["max_loaded_at_time_ago_in_s"]


def test_a_source_never_checked_says_how_to_check_it(catalog: tuple[Path, str, str], tmp_path: Path) -> None:
    project, url, prefix = catalog
    sources_json = project / "target" / "sources.json"
    kept = tmp_path / "sources.json"
    sources_json.rename(kept)
    try:
        shown = featurestore(project, url, prefix, "status")
    finally:
        kept.rename(sources_json)
    assert "source raw.purchases: not checked yet (warn after 1 day, error after 3 days); run `dbt source freshness`" in shown.stdout


def test_get_and_historical_take_a_feature_service(catalog: tuple[Path, str, str], tmp_path: Path) -> None:
    project, url, prefix = catalog
    store = FeatureStore(project)
    got = featurestore(project, url, prefix, "get", "--feature-service", SERVICE, "--entity", "user_id=3", "--entity", "product_id=5")
    assert got.returncode == 0, got.stderr
    printed = json.loads(got.stdout)
    assert [name for name in printed if "__" not in name] == ["user_id", "product_id", "total_purchases", "avg_purchase_amount",
                                                               "purchase_count_7d", "spend_30d", "product_purchases_1d", "product_buyers_7d"]

    entities = tmp_path / "entities.csv"
    entities.write_text("user_id,product_id,event_timestamp\n3,5,2026-02-10T12:00:00Z\n4,6,2026-02-01T00:00:00Z\n")
    out = tmp_path / "training.csv"
    written = featurestore(project, url, prefix, "historical", "--entities", str(entities), "--feature-service", SERVICE, "--out", str(out))
    assert written.returncode == 0, written.stderr
    expected = store.get_historical_features(
        pd.DataFrame({"user_id": [3, 4], "product_id": [5, 6], "event_timestamp": pd.to_datetime(["2026-02-10T12:00:00Z", "2026-02-01T00:00:00Z"])}),
        feature_service=SERVICE,
    )
    assert list(pd.read_csv(out).columns) == list(expected.columns)
    assert pd.read_csv(out)["product_purchases_1d"].tolist() == expected["product_purchases_1d"].tolist()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("get", "--feature-service", "nope", "--entity", "user_id=1"),
         "feature service 'nope' does not exist; feature services (ML exposures with meta.feature_store): purchase_propensity"),
        (("get", "product_popularity.v3:product_buyers_7d", "--entity", "product_id=1"),
         "feature view 'product_popularity' has no version 'v3'; its versions: product_popularity.v1, product_popularity.v2"),
        (("describe", "product_popularity.v3"),
         "feature view 'product_popularity' has no version 'v3'; its versions: product_popularity.v1, product_popularity.v2"),
        (("describe", "nope"), "feature view 'nope' does not exist; feature views: product_popularity.v1, product_popularity.v2, user_category_windows"),
    ],
    ids=["unknown_service", "unknown_version", "describe_unknown_version", "describe_unknown_view"],
)
def test_unknown_services_and_versions_exit_1_with_one_line(catalog: tuple[Path, str, str], args: tuple[str, ...], message: str) -> None:
    project, url, prefix = catalog
    assert one_error_line(featurestore(project, url, prefix, *args)).startswith(message)


def test_features_and_a_feature_service_together_is_bad_usage(catalog: tuple[Path, str, str]) -> None:
    project, url, prefix = catalog
    both = featurestore(project, url, prefix, "get", "user_features:total_purchases", "--feature-service", SERVICE, "--entity", "user_id=1")
    neither = featurestore(project, url, prefix, "get", "--entity", "user_id=1")
    assert both.returncode == neither.returncode == 2
    assert "give either features or --feature-service, not both" in both.stderr
    assert "give features (view:feature ...) or --feature-service NAME" in neither.stderr
