"""Loading rows into DuckDB, reading results back and comparing them with the reference.

Times travel as epoch microseconds both ways, so the reference never sees a datetime."""

from __future__ import annotations

import datetime
import math
import random
from typing import Any, Callable, Sequence

import duckdb
import pyarrow as pa

EPOCH = datetime.datetime(1970, 1, 1)
EPOCH_UTC = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
MICROS = datetime.timedelta(microseconds=1)
SECOND = 1_000_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
# 2026-01-01 00:00:00 UTC: the generated data lives in the days after it.
START = 1_767_225_600 * SECOND

# Column types a test table can have; timestamps are given as epoch microseconds.
_FROM_MICROS = {
    "timestamp": "make_timestamp({c})",
    "timestamptz": "cast(make_timestamp({c}) as timestamptz)",
    "timestamp_ns": "cast(make_timestamp({c}) as timestamp_ns)",
    "timestamptz_ns": "cast(cast(make_timestamp({c}) as timestamptz) as timestamptz_ns)",
}
_ARROW = {"bigint": pa.int64(), "double": pa.float64(), "varchar": pa.string(), "boolean": pa.bool_()}


def load(connection: duckdb.DuckDBPyConnection, name: str, columns: dict[str, str], rows: Sequence[dict[str, Any]]) -> str:
    """Creates table `name` with `columns` ({column: type}) holding `rows` in order.

    Timestamp-typed columns take epoch microseconds; the table keeps the rows' order."""
    arrays = {
        column: pa.array([row.get(column) for row in rows], type=pa.int64() if kind in _FROM_MICROS else _ARROW[kind])
        for column, kind in columns.items()
    }
    connection.register("__rows", pa.table(arrays) if rows else pa.table({c: a for c, a in arrays.items()}))
    select = ", ".join(
        (_FROM_MICROS[kind] if kind in _FROM_MICROS else "cast({c} as " + kind + ")").format(c=f'"{column}"') + f' as "{column}"'
        for column, kind in columns.items()
    )
    connection.execute(f'create or replace table "{name}" as select {select} from __rows')
    connection.unregister("__rows")
    return f'"{name}"'


def micros(value: Any) -> Any:
    """Timestamps from DuckDB as epoch microseconds; other values unchanged."""
    if isinstance(value, datetime.datetime):
        epoch = EPOCH if value.tzinfo is None else EPOCH_UTC
        return (value - epoch) // MICROS
    return value


def query(connection: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    """The result as dicts in the order the query returns it; timestamps as microseconds."""
    cursor = connection.execute(sql)
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, (micros(value) for value in row))) for row in cursor.fetchall()]


def same(actual: Any, expected: Any, rel: float | None = None) -> bool:
    """Equality where NULL == NULL and NaN == NaN; with `rel`, numbers within that relative
    tolerance (plus a tiny absolute one, since a stddev of equal values may come back as
    1e-15 instead of 0)."""
    if actual is None or expected is None:
        return actual is None and expected is None
    if isinstance(actual, float) and isinstance(expected, float) and math.isnan(actual) and math.isnan(expected):
        return True
    if rel is not None:
        return math.isclose(actual, expected, rel_tol=rel, abs_tol=1e-9)
    return actual == expected


def mismatches(
    actual: Sequence[dict[str, Any]], expected: Sequence[dict[str, Any]], rel: dict[str, float] | None = None, limit: int = 5
) -> list[str]:
    """The first few rows that differ (columns of `expected`; `rel` gives a relative
    tolerance per column, others must be exactly equal), for an assertion message."""
    assert len(actual) == len(expected), f"{len(actual)} rows, expected {len(expected)}"
    rel = rel or {}
    found = []
    for i, (got, want) in enumerate(zip(actual, expected)):
        bad = {c: (got.get(c), v) for c, v in want.items() if not same(got.get(c), v, rel.get(c))}
        if bad:
            found.append(f"row {i}: " + ", ".join(f"{c}: got {g!r}, expected {e!r}" for c, (g, e) in bad.items()))
    return found[:limit] + ([f"... {len(found) - limit} more"] if len(found) > limit else [])


def random_spine(
    rng: random.Random, rows: int, users: int, shops: Sequence[str], pick_time: Callable[[], int]
) -> list[dict[str, Any]]:
    """Spine rows with ids 0..rows-1 in order: users 1..users (some NULL), a shop, a time
    from `pick_time` (some NULL); about 5% repeat an earlier row's values exactly."""
    spine: list[dict[str, Any]] = []
    for i in range(rows):
        if spine and rng.random() < 0.05:
            spine.append({**rng.choice(spine), "id": i})
            continue
        at = pick_time()
        spine.append(
            {
                "id": i,
                "user_id": None if rng.random() < 0.02 else rng.randrange(1, users + 1),
                "shop": rng.choice(shops),
                "at": None if rng.random() < 0.02 else at,
            }
        )
    return spine
