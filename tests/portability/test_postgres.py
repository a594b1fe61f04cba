"""The portable macros on a second real engine: PostgreSQL gives the same answers as DuckDB.

The models must run on other warehouses through their dbt adapters, so the `default__`
SQL (plus `postgres__normalize_timestamp`) is rendered for Postgres and run on the
machine's server; the `duckdb__` SQL runs on the same rows in a DuckDB file. Skipped
only when no PostgreSQL answers on 127.0.0.1:5432.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from pathlib import Path

import duckdb
import numpy as np
import pytest

from serving.dbt_target import read_manifest_json
from serving.rendering import Renderer

psycopg = pytest.importorskip("psycopg")

POSTGRES_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=test connect_timeout=3"
START = dt.datetime(2026, 1, 1)


@pytest.fixture(scope="module")
def renderers(parsed_project: Path, postgres_parsed_project: Path) -> dict[str, Renderer]:
    """dbt's rendering for each adapter, from a manifest parsed for its target."""
    return {
        "duckdb": Renderer(parsed_project, read_manifest_json(parsed_project)[1], cache=False),
        "postgres": Renderer(postgres_parsed_project, read_manifest_json(postgres_parsed_project)[1], "postgres", cache=False),
    }


@pytest.fixture(scope="module")
def postgres():
    try:
        connection = psycopg.connect(POSTGRES_DSN, autocommit=True)
    except psycopg.OperationalError as error:
        pytest.skip(f"no PostgreSQL on 127.0.0.1:5432: {error}")
    schema = f"fs_portability_{uuid.uuid4().hex[:8]}"
    connection.execute(f"create schema {schema}")
    connection.execute(f"set search_path to {schema}")
    connection.execute("set TimeZone = 'UTC'")
    yield connection
    connection.execute(f"drop schema {schema} cascade")
    connection.close()


def _random_tables(seed: int) -> dict[str, tuple[list[str], list[tuple]]]:
    rng = np.random.default_rng(seed)
    n_events, n_spine = 1500, 400

    def moment(seconds: int) -> dt.datetime:
        return START + dt.timedelta(seconds=int(seconds))

    # Coarse times (whole hours) make equal timestamps and exact bounds common.
    events = [
        (
            int(rng.integers(0, 40)),
            ["a", "b"][int(rng.integers(0, 2))],
            moment(rng.integers(0, 24 * 30) * 3600),
            moment(rng.integers(0, 3) * 60) if rng.random() < 0.9 else None,
            None if rng.random() < 0.05 else float(np.round(rng.normal(50, 20), 2)),
            ["x", "y", "z"][int(rng.integers(0, 3))],
        )
        for _ in range(n_events)
    ]
    spine = [
        (i, int(rng.integers(0, 45)), ["a", "b"][int(rng.integers(0, 2))], moment(rng.integers(0, 24 * 35) * 3600))
        for i in range(n_spine)
    ]
    return {
        "events": (["user_id", "kind", "event_timestamp", "created_timestamp", "amount", "category"], events),
        "spine": (["row_id", "user_id", "kind", "prediction_time"], spine),
    }


# Type names both engines accept.
TYPES = {"user_id": "bigint", "row_id": "bigint", "kind": "text", "category": "text", "amount": "double precision"}


def _ddl(columns: list[str]) -> str:
    return ", ".join(f"{column} {TYPES.get(column, 'timestamp')}" for column in columns)


def _load_postgres(connection, tables) -> None:
    for name, (columns, rows) in tables.items():
        connection.execute(f"drop table if exists {name}")
        connection.execute(f"create table {name} ({_ddl(columns)})")
        with connection.cursor().copy(f"copy {name} ({', '.join(columns)}) from stdin") as copy:
            for row in rows:
                copy.write_row(row)


def _load_duckdb(path: Path, tables) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect(str(path))
    connection.execute("set TimeZone = 'UTC'")
    for name, (columns, rows) in tables.items():
        connection.execute(f"create table {name} ({_ddl(columns)})")
        connection.executemany(f"insert into {name} values ({', '.join('?' for _ in columns)})", rows)
    return connection


def _same(left: list[tuple], right: list[tuple]) -> bool:
    if len(left) != len(right):
        return False
    for row_left, row_right in zip(left, right):
        for a, b in zip(row_left, row_right):
            if isinstance(a, float) or isinstance(b, float):
                if a is None or b is None:
                    if a is not b:
                        return False
                elif not math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9):
                    return False
            elif a != b:
                return False
    return True


VIEW = {
    "name": "events_view",
    "relation": "events",
    "entity": ["user_id", "kind"],
    "timestamp_column": "event_timestamp",
    "created_timestamp_column": "created_timestamp",
    "ttl": {"text": "3 days", "seconds": 3 * 86400},
    "features": [{"name": "amount"}, {"name": "category"}],
}
AGGREGATIONS = [
    {"name": "n_1d", "function": "count", "window": "1 day"},
    {"name": "spend_7d", "function": "sum", "column": "amount", "window": "7 days"},
    {"name": "avg_7d", "function": "avg", "column": "amount", "window": "7 days"},
    {"name": "sd_7d", "function": "stddev", "column": "amount", "window": "7 days"},
    {"name": "max_12h", "function": "max", "column": "amount", "window": "12 hours"},
    {"name": "categories_3d", "function": "count_distinct", "column": "category", "window": "3 days"},
]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_point_in_time_join_is_the_same_on_postgres_and_duckdb(postgres, renderers, tmp_path, seed):
    tables = _random_tables(seed)
    _load_postgres(postgres, tables)
    local = _load_duckdb(tmp_path / "warehouse.duckdb", tables)
    arguments = ("spine", "prediction_time", [VIEW], True, True, ["row_id", "user_id", "kind", "prediction_time"])

    on_postgres = postgres.execute(renderers["postgres"].call("point_in_time_join_sql", *arguments)).fetchall()
    on_duckdb = local.sql(renderers["duckdb"].call("point_in_time_join_sql", *arguments)).fetchall()

    assert [row[0] for row in on_postgres] == list(range(len(tables["spine"][1])))
    assert _same(on_postgres, on_duckdb)
    assert any(row[4] is not None for row in on_duckdb) and any(row[4] is None for row in on_duckdb)


@pytest.mark.parametrize("at", ["events", "change_points", "spine"])
def test_window_aggregates_are_the_same_on_postgres_and_duckdb(postgres, renderers, tmp_path, at):
    tables = _random_tables(11)
    _load_postgres(postgres, tables)
    local = _load_duckdb(tmp_path / "warehouse.duckdb", tables)
    arguments = ("events", ["user_id", "kind"], "event_timestamp", AGGREGATIONS, at, "spine", "prediction_time",
                 ["row_id", "user_id", "kind", "prediction_time"])

    on_postgres = postgres.execute(renderers["postgres"].call("window_aggregates", *arguments)).fetchall()
    on_duckdb = local.sql(renderers["duckdb"].call("window_aggregates", *arguments)).fetchall()

    assert len(on_duckdb) > 100
    assert _same(on_postgres, on_duckdb)
