"""Shared test support for the engine tests: the built tables of one engine as plain rows,
and their comparison with DuckDB's build of the same data.

tests/ is on sys.path (pyproject.toml), so `from engine_tables import ...` works anywhere."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
from pathlib import Path
from typing import Any

import duckdb

# Tables compared across engines, with the order their rows are compared in. Training
# tables keep spine order: DuckDB's in table order, the others by their __fs_row column
# (the spine position; portable SQL cannot drop it from `*`, see spine_select.sql).
SPINE_ORDERED = ("training_set", "training_windows_at_prediction")
KEY_ORDERED = {
    "user_features": ("user_id", "event_timestamp", "created_timestamp"),
    "user_purchase_windows": ("user_id", "event_timestamp"),
    "user_category_windows": ("user_id", "category", "event_timestamp"),
    "product_popularity": ("product_id", "event_timestamp"),
    "product_popularity_v2": ("product_id", "event_timestamp"),
    "user_last_purchase": ("user_id", "event_timestamp"),
    "user_spend_trend": ("user_id", "event_timestamp"),
}
HELPER_COLUMNS = ("__fs_row", "__fs_at")
# Sums, averages and standard deviations may add their terms in another order on another
# engine (partitioned aggregation in Spark), which can change the last bits of a double.
FLOAT_TOLERANCE = 1e-9
EPOCH = dt.datetime(1970, 1, 1)


def plain(value: Any) -> Any:
    """A value comparable across drivers: timestamps as UTC epoch microseconds (naive
    ones mean UTC), decimals as floats."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return (value - EPOCH) // dt.timedelta(microseconds=1)
    if isinstance(value, decimal.Decimal):
        return float(value)
    return value


def ordered_rows(name: str, columns: list[str], rows: list[tuple]) -> tuple[list[str], list[tuple]]:
    """Rows in comparison order, helper columns dropped, values made plain."""
    rows = [tuple(plain(value) for value in row) for row in rows]
    if name in KEY_ORDERED:
        positions = [columns.index(key) for key in KEY_ORDERED[name]]
        rows.sort(key=lambda row: tuple((row[p] is None, row[p]) for p in positions))
    elif "__fs_row" in columns:
        rows.sort(key=lambda row: row[columns.index("__fs_row")])
    kept = [i for i, column in enumerate(columns) if column not in HELPER_COLUMNS]
    return [columns[i] for i in kept], [tuple(row[i] for i in kept) for row in rows]


def duckdb_tables(project_dir: Path) -> dict[str, tuple[list[str], list[tuple]]]:
    """Every compared table of a project built on DuckDB, in comparison order."""
    connection = duckdb.connect(str(project_dir / "target" / "warehouse.duckdb"), read_only=True)
    try:
        connection.execute("SET TimeZone='UTC'")
        tables = {}
        for name in (*SPINE_ORDERED, *KEY_ORDERED):
            cursor = connection.execute(f'select * from "{name}"')
            tables[name] = ordered_rows(name, [c[0] for c in cursor.description], cursor.fetchall())
        return tables
    finally:
        connection.close()


def mismatches(expected: list[tuple], actual: list[tuple], columns: list[str], limit: int = 5) -> list[str]:
    """Human-readable differences, floats compared within FLOAT_TOLERANCE (relative and absolute)."""
    found = []
    if len(expected) != len(actual):
        found.append(f"{len(actual)} rows, expected {len(expected)}")
    for index, (want, got) in enumerate(zip(expected, actual)):
        for column, a, b in zip(columns, want, got):
            same = (
                math.isclose(a, b, rel_tol=FLOAT_TOLERANCE, abs_tol=FLOAT_TOLERANCE)
                if isinstance(a, float) and isinstance(b, (float, int)) and a is not None and b is not None
                else a == b
            )
            if not same:
                found.append(f"row {index} {column}: {b!r}, expected {a!r}")
                break
        if len(found) >= limit:
            break
    return found


def assert_everything_built(project_dir: Path) -> dict[str, int]:
    """Checks that the last `dbt build` finished every model, data test and unit test of
    the project's manifest successfully; returns how many of each it ran."""
    manifest = json.loads((project_dir / "target" / "manifest.json").read_text())
    expected = {
        unique_id
        for unique_id, node in {**manifest["nodes"], **manifest.get("unit_tests", {})}.items()
        if node["resource_type"] in ("model", "test", "unit_test")
    }
    results = json.loads((project_dir / "target" / "run_results.json").read_text())["results"]
    # An exposure (a feature service) has nothing to build: dbt reports it as a no-op.
    failed = [
        f"{r['unique_id']}: {r['status']} {r.get('message') or ''}"
        for r in results
        if r["status"] not in ("success", "pass") and not (r["unique_id"].startswith("exposure.") and r["status"] == "no-op")
    ]
    assert not failed, "\n".join(failed)
    ran = {result["unique_id"] for result in results}
    assert expected <= ran, f"not run: {sorted(expected - ran)}"
    counts: dict[str, int] = {}
    for unique_id in expected:
        kind = unique_id.split(".")[0]
        counts[kind] = counts.get(kind, 0) + 1
    return counts
