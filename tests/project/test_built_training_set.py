"""The built training set against a brute-force computation from the raw Parquet files.

Uses the session's `built_project` (small sample data after `dbt build`); the warehouse
is opened read-only and closed after each test."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any, Iterator

import duckdb
import pyarrow.parquet as pq
import pytest
import yaml

from project_copies import dbt
from macro_harness import DAY, micros, mismatches
from macro_reference import point_in_time, windows_at_spine

UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86_400, "week": 604_800}
USER_FEATURES = ["total_purchases", "avg_purchase_amount", "days_since_last_purchase"]


def raw(project: Path, name: str) -> list[dict[str, Any]]:
    """A raw Parquet file's rows, timestamps as epoch microseconds, in file order."""
    return [{k: micros(v) for k, v in row.items()} for row in pq.read_table(project / "data" / "sample" / f"{name}.parquet").to_pylist()]


def latest_corrections(purchases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """stg_purchases by hand: per purchase_id, the row with the latest created timestamp."""
    latest: dict[int, dict[str, Any]] = {}
    for row in purchases:
        kept = latest.get(row["purchase_id"])
        if kept is None or row["created_timestamp"] > kept["created_timestamp"]:
            latest[row["purchase_id"]] = row
    return list(latest.values())


def window_aggregations(project: Path) -> list[dict[str, Any]]:
    aggregations = yaml.safe_load((project / "dbt_project.yml").read_text())["vars"]["user_purchase_aggregations"]
    for aggregation in aggregations:
        count, unit = re.fullmatch(r"(\d+) (\w+?)s?", aggregation["window"]).groups()
        aggregation["window_us"] = int(count) * UNIT_SECONDS[unit] * 1_000_000
    return aggregations


def table(project: Path, name: str) -> list[dict[str, Any]]:
    connection = duckdb.connect(str(project / "target" / "warehouse.duckdb"), read_only=True)
    try:
        connection.execute("SET TimeZone='UTC'")
        cursor = connection.execute(f'select * from "{name}"')
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, (micros(v) for v in row))) for row in cursor.fetchall()]
    finally:
        connection.close()


@pytest.fixture(scope="module")
def spine(built_project: Path) -> list[dict[str, Any]]:
    return raw(built_project, "label_spine")


@pytest.fixture(scope="module")
def training_set(built_project: Path) -> list[dict[str, Any]]:
    return table(built_project, "training_set")


def test_training_set_has_every_spine_row_once_in_spine_order(spine: list[dict[str, Any]], training_set: list[dict[str, Any]]) -> None:
    keys = [(row["user_id"], row["prediction_time"], row["label"]) for row in spine]
    assert len(set(keys)) < len(keys), "the sample spine should hold exact duplicates"
    assert [(row["user_id"], row["prediction_time"], row["label"]) for row in training_set] == keys


def test_user_features_follow_ttl_and_corrections(built_project: Path, spine: list[dict[str, Any]], training_set: list[dict[str, Any]]) -> None:
    snapshots = raw(built_project, "user_features")
    reference = point_in_time(spine, "prediction_time", snapshots, ["user_id"], "event_timestamp", USER_FEATURES, "created_timestamp", DAY)
    expected = [{**{name: r[name] for name in USER_FEATURES}, "user_features__event_timestamp": r["__event_at"]} for r in reference]

    assert not mismatches(training_set, expected), mismatches(training_set, expected)
    # The sample data must exercise both rules for this to mean anything.
    found = sum(r["__event_at"] is not None for r in reference)
    assert 0 < found < len(reference), "some rows should find a snapshot and some should be expired or empty"
    corrected = {(s["user_id"], s["event_timestamp"]) for s in snapshots if s["created_timestamp"] > s["event_timestamp"] + 3_600_000_000}
    assert any((s["user_id"], r["__event_at"]) in corrected for s, r in zip(spine, reference)), "a correction should be joined"


def test_purchase_windows_equal_the_windows_at_prediction_time(built_project: Path, spine: list[dict[str, Any]], training_set: list[dict[str, Any]]) -> None:
    purchases = latest_corrections(raw(built_project, "purchases"))
    aggregations = window_aggregations(built_project)
    names = [a["name"] for a in aggregations]
    values = windows_at_spine(purchases, ["user_id"], "event_timestamp", aggregations, spine, "prediction_time")
    history: dict[int, list[int]] = {}
    for purchase in purchases:
        history.setdefault(purchase["user_id"], []).append(purchase["event_timestamp"])

    expected = []
    for row, row_values in zip(spine, values):
        at = row["prediction_time"]
        # The view's row at t is the last change point at or before t: a purchase, or a
        # purchase leaving one of the windows.
        changes = [ts + shift for ts in history.get(row["user_id"], []) for shift in [0, *(a["window_us"] for a in aggregations)] if ts + shift <= at]
        if changes:
            expected.append({**dict(zip(names, row_values)), "user_purchase_windows__event_timestamp": max(changes)})
        else:
            expected.append({**{name: None for name in names}, "user_purchase_windows__event_timestamp": None})

    tolerance = {a["name"]: 1e-9 for a in aggregations if a["function"] in ("sum", "avg", "stddev")}
    assert not mismatches(training_set, expected, tolerance), mismatches(training_set, expected, tolerance)
    assert sum(e["purchase_count_30d"] not in (None, 0) for e in expected) > len(expected) // 4


def test_windows_at_prediction_agree_with_the_joined_view_wherever_the_user_has_history(
    built_project: Path, spine: list[dict[str, Any]], training_set: list[dict[str, Any]]
) -> None:
    at_prediction = table(built_project, "training_windows_at_prediction")
    names = [a["name"] for a in window_aggregations(built_project)]
    tolerance = {name: 1e-9 for name in names}
    assert [(r["user_id"], r["prediction_time"]) for r in at_prediction] == [(r["user_id"], r["prediction_time"]) for r in spine]

    with_history = [i for i, row in enumerate(training_set) if row["user_purchase_windows__event_timestamp"] is not None]
    without = [i for i in range(len(training_set)) if i not in set(with_history)]
    assert with_history and without
    joined = [{name: training_set[i][name] for name in names} for i in with_history]
    assert not mismatches([at_prediction[i] for i in with_history], joined, tolerance)
    # Before a user's first purchase the view has no row to join, but the window is empty.
    assert all(at_prediction[i]["purchase_count_30d"] == 0 and at_prediction[i]["spend_30d"] == 0 for i in without)
    assert all(training_set[i]["purchase_count_30d"] is None for i in without)


@pytest.fixture
def built_copy(built_project: Path, tmp_path: Path) -> Iterator[Path]:
    """A copy of the built project, so dbt's writes and locks never touch the shared one."""
    copy = tmp_path / "project"
    shutil.copytree(built_project, copy, ignore=shutil.ignore_patterns("logs"))
    yield copy


def test_dbt_test_passes_on_the_built_project(built_copy: Path) -> None:
    result = dbt(built_copy, "test")
    done = re.search(r"Done\. PASS=(\d+) WARN=0 ERROR=0 SKIP=0", result.stdout)
    assert done and int(done.group(1)) >= 40, result.stdout[-2000:]
