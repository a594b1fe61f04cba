"""Serving log -> warehouse -> skew, on a repository made by `featurestore init` whose data
is written relative to now, so every cause of skew happens for real (real Redis, DuckDB, dbt).

Timeline (T = when the fixture starts; the view's TTL is one day; export at A = T - 1 h):
  user 1  one row at T - 3 h                         -> consistent
  user 2  one row at T - 3 h, total_purchases changed in the warehouse after the export
                                                     -> changed_after_export (that feature only)
  user 3  rows at T - 3 h and T - 30 min             -> stale_snapshot
  user 4  one row at T - 24.5 h (in the TTL at A, not at the request)
                                                     -> outside_ttl
  user 5  one row at T - 3 days (outside the TTL at A and at the request)
                                                     -> consistent: both say nothing
  user 999 no row                                    -> missing_entity
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, Iterator

import duckdb
import pandas as pd
import pytest
import redis

from http_server import request, served
from project_copies import dbt
from serving.errors import InputError, OfflineStoreError
from serving.monitoring.serving_log import RATE_ENV, ServingLogFlusher, decode
from serving.scaffold import init_repository
from serving.store import FeatureStore

REDIS_URL = "redis://127.0.0.1:6379/14"
USERS = [1, 2, 3, 4, 5, 999]
FEATURES = ["user_features:total_purchases", "user_features:avg_purchase_amount", "user_features:days_since_last_purchase"]
EXPECTED = {
    "user_features:total_purchases": {2: "changed_after_export", 3: "stale_snapshot", 4: "outside_ttl", 999: "missing_entity"},
    "user_features:avg_purchase_amount": {3: "stale_snapshot", 4: "outside_ttl", 999: "missing_entity"},
    "user_features:days_since_last_purchase": {3: "stale_snapshot", 4: "outside_ttl", 999: "missing_entity"},
}
MONITORING_YML = """version: 2
sources:
- name: feature_store
  schema: "{{ target.schema }}"
  tables:
  - name: serving_log
    identifier: feature_store_serving_log
models:
- name: serving_skew
  data_tests:
  - feature_store.no_serving_skew:
      arguments:
        threshold: 0.4
        thresholds:
          user_features:total_purchases: 0.7
"""


def _rows(now: dt.datetime, changed: bool) -> pd.DataFrame:
    hours = dt.timedelta(hours=1)
    rows = [
        (1, now - 3 * hours, 10, 20.0, 1),
        (2, now - 3 * hours, 30 if changed else 11, 21.0, 2),
        (3, now - 3 * hours, 12, 22.0, 3),
        (3, now - 0.5 * hours, 13, 23.5, 0),
        (4, now - 24.5 * hours, 14, 24.0, 4),
        (5, now - 72 * hours, 15, 25.0, 5),
    ]
    return pd.DataFrame(rows, columns=["user_id", "event_timestamp", "total_purchases", "avg_purchase_amount", "days_since_last_purchase"])


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = init_repository(tmp_path_factory.mktemp("skew") / "repo").directory
    # A view over the Parquet file: rewriting the file is a late correction in the warehouse.
    model = directory / "models" / "user_features.sql"
    model.write_text("{{ config(materialized='view') }}\n" + model.read_text())
    (directory / "models" / "monitoring.yml").write_text(MONITORING_YML)
    (directory / "models" / "serving_skew.sql").write_text(
        "-- depends_on: {{ ref('user_features') }}\n{{ feature_store.serving_skew(source('feature_store', 'serving_log')) }}\n"
    )
    dbt(directory, "deps")
    return directory


@pytest.fixture(scope="module")
def prefix() -> Iterator[str]:
    name = f"fstest-{uuid.uuid4().hex[:12]}"
    yield name
    client = redis.Redis.from_url(REDIS_URL)
    for key in list(client.scan_iter(match=f"{name}:*", count=5000)):
        client.unlink(key)
    client.close()


@pytest.fixture(scope="module")
def served_and_flushed(repository: Path, prefix: str) -> dict[str, Any]:
    """Build, export at T - 1 h, read every user (logged), correct user 2, flush."""
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)
    data = repository / "data" / "user_features.parquet"
    _rows(now, changed=False).to_parquet(data, index=False)
    # The view reads the file by an absolute path, so a process anywhere sees the rewrite.
    dbt(repository, "build", "--exclude", "serving_skew+", "--vars", json.dumps({"data_path": str(data.parent)}))
    store = FeatureStore(repository, redis_url=REDIS_URL, redis_prefix=prefix, serving_log_rate=1.0)
    store.materialize(as_of=now - dt.timedelta(hours=1))
    response = store.get_online_features(FEATURES, [{"user_id": user} for user in USERS])
    # A late correction of user 2's snapshot, after the export.
    _rows(now, changed=True).to_parquet(data, index=False)
    flushed = store.flush_serving_log()
    return {"store": store, "response": response, "flushed": flushed, "now": now}


def _causes(report: Any, reference: str) -> dict[int, str]:
    rows = report.rows.to_pylist()
    return {json.loads(row["entity_key"])["user_id"]: row["cause"] for row in rows if row["feature_ref"] == reference and row["is_mismatch"]}


def test_flush_writes_one_row_per_entity_and_feature_and_empties_the_stream(served_and_flushed: dict[str, Any], repository: Path) -> None:
    flushed = served_and_flushed["flushed"]
    assert (flushed.requests, flushed.rows, flushed.remaining) == (1, len(USERS) * len(FEATURES), 0)
    response = served_and_flushed["response"]
    with duckdb.connect(str(repository / "target" / "warehouse.duckdb"), read_only=True) as connection:
        logged = connection.sql(
            "select entity_key, feature, status, value_number, event_at, snapshot_as_of, source from feature_store_serving_log order by feature, row_index"
        ).fetchall()
    assert len(logged) == len(USERS) * len(FEATURES)
    as_of = served_and_flushed["now"] - dt.timedelta(hours=1)
    for entity_key, feature, status, value, event_at, snapshot_as_of, source in logged:
        row = USERS.index(json.loads(entity_key)["user_id"])
        assert status == response.statuses[feature][row]
        assert value == response.columns[feature][row]
        assert event_at == response.event_timestamps[feature][row]
        assert (snapshot_as_of, source) == (as_of, "python")


def test_each_cause_is_named_for_exactly_the_affected_rows(served_and_flushed: dict[str, Any]) -> None:
    report = served_and_flushed["store"].serving_skew()
    assert [feature.feature for feature in report.features] == sorted(FEATURES)
    for reference, expected in EXPECTED.items():
        assert _causes(report, reference) == expected, reference
        feature = report.feature(reference)
        assert (feature.compared, feature.mismatches) == (len(USERS), len(expected))
        assert sum(feature.causes.values()) == len(expected)


def test_the_largest_difference_is_against_the_value_that_differs(served_and_flushed: dict[str, Any]) -> None:
    report = served_and_flushed["store"].serving_skew()
    # user 2: served 11, the warehouse now says 30 at as_of; user 3: served 12, then 13.
    assert report.feature("user_features:total_purchases").max_abs_difference == 19
    assert report.feature("user_features:avg_purchase_amount").max_abs_difference == 1.5


def test_an_entity_outside_its_ttl_at_export_and_at_request_is_not_a_mismatch(served_and_flushed: dict[str, Any]) -> None:
    report = served_and_flushed["store"].serving_skew()
    rows = [row for row in report.rows.to_pylist() if json.loads(row["entity_key"])["user_id"] == 5]
    assert {row["status"] for row in rows} == {"outside_ttl"}
    assert not any(row["is_mismatch"] for row in rows)


def test_since_and_view_narrow_the_report(served_and_flushed: dict[str, Any]) -> None:
    store = served_and_flushed["store"]
    assert store.serving_skew(since=served_and_flushed["now"] + dt.timedelta(days=1)).features == []
    assert len(store.serving_skew(feature_views="user_features").features) == 3
    with pytest.raises(Exception, match="no online feature view named 'nope'"):
        store.serving_skew(feature_views=["nope"])


def _featurestore(repository: Path, prefix: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "serving", "--project-dir", str(repository), "--redis-url", REDIS_URL, *args],
        capture_output=True,
        text=True,
        env={**os.environ, "FEATURE_STORE_REDIS_PREFIX": prefix},
    )


def test_cli_json_report_and_exit_code(served_and_flushed: dict[str, Any], repository: Path, prefix: str) -> None:
    failing = _featurestore(repository, prefix, "skew", "--format", "json")
    assert failing.returncode == 4, failing.stderr
    report = json.loads(failing.stdout)
    by_feature = {feature["feature"]: feature for feature in report["features"]}
    assert set(by_feature) == set(FEATURES)
    for reference, expected in EXPECTED.items():
        assert (by_feature[reference]["compared"], by_feature[reference]["mismatches"]) == (len(USERS), len(expected))
        assert {cause for cause, count in by_feature[reference]["causes"].items() if count} == set(expected.values())
    # The YAML's per-feature rate (0.7) stays; --threshold replaces the default (0.4).
    assert by_feature["user_features:total_purchases"]["threshold"] == 0.7


def test_text_report_and_a_threshold_that_passes(served_and_flushed: dict[str, Any]) -> None:
    report = served_and_flushed["store"].serving_skew(feature_views=["user_features"], threshold=0.9)
    assert not report.above_threshold
    text = report.to_text()
    assert "user_features:total_purchases: 6 compared, 4 mismatches (66.7%), max |difference| 19, threshold 70.0%: ok" in text
    assert "causes: changed_after_export 1, stale_snapshot 1, outside_ttl 1, missing_entity 1" in text
    assert 'e.g. {"user_id":2} at ' in text and "served 11 (present" in text and "at as_of 30, at request 30: changed_after_export" in text


def test_cli_refuses_a_bad_since_in_one_line(repository: Path, prefix: str) -> None:
    result = _featurestore(repository, prefix, "skew", "--since", "yesterday")
    assert result.returncode == 2
    assert "--since" in result.stderr and "Traceback" not in result.stderr


def test_a_flush_that_crashed_after_its_commit_writes_nothing_twice(served_and_flushed: dict[str, Any], repository: Path, prefix: str) -> None:
    store = served_and_flushed["store"]
    store.get_online_features(FEATURES[:1], [{"user_id": 1}])
    store._serving_log.drain()

    class CrashAfterCommit(ServingLogFlusher):
        def forget(self, ids: list[Any]) -> None:
            raise RuntimeError("killed between the commit and XDEL")

    flusher = CrashAfterCommit(store.redis, store._keys, store.offline.engine, store.renderer, store.registry)
    with pytest.raises(RuntimeError):
        flusher.flush()
    assert store.redis.xlen(store._keys.serving_log) == 1  # still in the stream...
    again = store.flush_serving_log()  # ...so the next flush meets it again
    assert (again.requests, again.remaining) == (1, 0)
    with duckdb.connect(str(repository / "target" / "warehouse.duckdb"), read_only=True) as connection:
        counts = connection.sql("select count(*), count(distinct request_id) from feature_store_serving_log").fetchall()[0]
    assert counts == (len(USERS) * len(FEATURES) + 1, 2)


def test_http_reads_are_logged_as_http(served_and_flushed: dict[str, Any], repository: Path, prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    store = served_and_flushed["store"]
    client = redis.Redis.from_url(REDIS_URL)
    before = client.xlen(store._keys.serving_log)
    monkeypatch.setenv(RATE_ENV, "1")
    with served(repository, REDIS_URL, prefix) as base:
        status, _, _ = request(base, "POST", "/get-online-features", {"features": FEATURES[:1], "entities": {"user_id": [1, 3]}})
        assert status == 200
    # Stopped: a server sends what it still buffers on its way out.
    entries = client.xrange(store._keys.serving_log, "-", "+")
    assert len(entries) == before + 1
    rows = decode(entries[-1:], lambda view: ["user_id"], dt.datetime(2026, 3, 1)).to_pylist()
    assert [(row["source"], row["entity_key"], row["feature_ref"], row["value_number"]) for row in rows] == [
        ("http", '{"user_id":1}', "user_features:total_purchases", 10.0),
        ("http", '{"user_id":3}', "user_features:total_purchases", 12.0),
    ]
    client.close()


def test_the_sample_rate_is_checked_and_off_by_default(repository: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(RATE_ENV, raising=False)
    assert FeatureStore(repository, redis_url=REDIS_URL).serving_log_rate == 0.0
    monkeypatch.setenv(RATE_ENV, "0.25")
    assert FeatureStore(repository, redis_url=REDIS_URL).serving_log_rate == 0.25
    with pytest.raises(InputError, match="serving_log_rate=2 is not a sample rate: use a number from 0 \\(off\\) to 1"):
        FeatureStore(repository, redis_url=REDIS_URL, serving_log_rate=2)
    monkeypatch.setenv(RATE_ENV, "often")
    with pytest.raises(InputError, match=f"{RATE_ENV}='often'"):
        FeatureStore(repository, redis_url=REDIS_URL)


def test_the_dbt_model_holds_the_same_rows_and_the_test_applies_per_feature_thresholds(served_and_flushed: dict[str, Any], repository: Path) -> None:
    result = dbt(repository, "build", "--select", "serving_skew+", "--vars", json.dumps({"data_path": str(repository / "data")}), check=False)
    # total_purchases: 4/6 <= 0.7 passes; the other two: 3/6 > 0.4 fail.
    assert result.returncode != 0
    assert "Got 2 results" in result.stdout, result.stdout[-3000:]
    with duckdb.connect(str(repository / "target" / "warehouse.duckdb"), read_only=True) as connection:
        built = connection.sql("select feature_ref, entity_key, cause from serving_skew where is_mismatch").fetchall()
    report = served_and_flushed["store"].serving_skew()
    expected = [(row["feature_ref"], row["entity_key"], row["cause"]) for row in report.rows.to_pylist() if row["is_mismatch"]]
    assert sorted(built) == sorted(expected)


def test_skew_without_a_log_table_says_what_to_do(served_and_flushed: dict[str, Any], repository: Path) -> None:
    # Last in the module: drops the table the other tests read.
    with duckdb.connect(str(repository / "target" / "warehouse.duckdb")) as connection:
        connection.execute("drop table feature_store_serving_log")
    with pytest.raises(OfflineStoreError, match="no serving log in the warehouse yet .*featurestore logs flush"):
        served_and_flushed["store"].serving_skew()
