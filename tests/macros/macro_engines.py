"""One interface over the engines a macro test runs on: DuckDB with the DuckDB macros,
DuckDB with the portable ones, PostgreSQL with the postgres dispatch (a real server
on 127.0.0.1:5432, a schema of the run's own, dropped afterwards), and Spark with the
spark dispatch (the run's one local SparkSession, tests/spark_session.py; tables are
temporary views, dropped afterwards)."""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Sequence

import duckdb
import pyarrow as pa
import pytest

from macro_harness import EPOCH, MICROS, load as load_duckdb, micros, query as query_duckdb
from serving.rendering import Renderer

POSTGRES_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=test connect_timeout=3"
_POSTGRES_TYPES = {
    "bigint": "bigint", "double": "double precision", "varchar": "text", "boolean": "boolean",
    "timestamp": "timestamp", "timestamptz": "timestamptz",
}


@dataclass
class Engine:
    name: str
    macros: Renderer
    # load(name, {column: type}, rows) creates the table and returns its quoted name.
    load: Callable[[str, dict[str, str], Sequence[dict[str, Any]]], str]
    query: Callable[[str], list[dict[str, Any]]]
    # create(name, sql) keeps a query's result under `name` (a table, or on Spark a view).
    create: Callable[[str, str], None]
    quote: Callable[[str], str] = lambda identifier: '"' + identifier.replace('"', '""') + '"'
    # The type of a literal instant with an offset: timestamptz '2026-01-01 00:00:00+05:00'.
    instant_type: str = "timestamptz"

    def relation(self, name: str) -> str:
        return self.quote(name)


def duckdb_engine(adapter: str, connection: duckdb.DuckDBPyConnection, macros: Renderer) -> Engine:
    def create(name: str, sql: str) -> None:
        connection.execute(f"create or replace table {_quote(name)} as {sql}")

    return Engine(
        adapter,
        macros,
        lambda name, columns, rows: load_duckdb(connection, name, columns, rows),
        lambda sql: query_duckdb(connection, sql),
        create,
    )


def postgres_engine(macros: Renderer) -> Iterator[Engine]:
    """Yields an Engine on a fresh schema, or raises psycopg.OperationalError when no
    server answers."""
    import psycopg

    connection = psycopg.connect(POSTGRES_DSN, autocommit=True)
    schema = f"fs_macros_{uuid.uuid4().hex[:8]}"
    connection.execute(f"create schema {schema}")
    connection.execute(f"set search_path to {schema}")
    connection.execute("set TimeZone = 'UTC'")

    def load(name: str, columns: dict[str, str], rows: Sequence[dict[str, Any]]) -> str:
        connection.execute(f"drop table if exists {_quote(name)}")
        definitions = ", ".join(_quote(column) + " " + _POSTGRES_TYPES[kind] for column, kind in columns.items())
        connection.execute(f"create table {_quote(name)} ({definitions})")

        def value(kind: str, raw: Any) -> Any:
            # A naive value is read in the session's time zone, UTC.
            return EPOCH + raw * MICROS if kind.startswith("timestamp") and raw is not None else raw

        with connection.cursor().copy(f"copy {_quote(name)} ({', '.join(map(_quote, columns))}) from stdin") as copy:
            for row in rows:
                copy.write_row([value(kind, row.get(column)) for column, kind in columns.items()])
        return _quote(name)

    def query(sql: str) -> list[dict[str, Any]]:
        cursor = connection.execute(sql)
        names = [column.name for column in cursor.description]
        return [dict(zip(names, (_plain(v) for v in row))) for row in cursor.fetchall()]

    def create(name: str, sql: str) -> None:
        connection.execute(f"drop table if exists {_quote(name)}")
        connection.execute(f"create table {_quote(name)} as {sql}")

    try:
        yield Engine("postgres", macros, load, query, create)
    finally:
        connection.execute(f"drop schema {schema} cascade")
        connection.close()


# Spark has no nanosecond timestamps; `timestamp` is naive UTC (TIMESTAMP_NTZ, as Spark
# reads naive Parquet timestamps), `timestamptz` an instant (TIMESTAMP).
_SPARK_ARROW = {
    "bigint": pa.int64(), "double": pa.float64(), "varchar": pa.string(), "boolean": pa.bool_(),
    "timestamp": pa.timestamp("us"), "timestamptz": pa.timestamp("us", tz="UTC"),
}


def spark_engine(spark: Any, macros: Renderer) -> Iterator[Engine]:
    """Yields an Engine whose tables are temporary views of the run's SparkSession, each
    created from an Arrow table holding the rows in order (so the scan keeps their order,
    as a spine's must); the views are dropped afterwards."""
    views: set[str] = set()

    def load(name: str, columns: dict[str, str], rows: Sequence[dict[str, Any]]) -> str:
        unsupported = sorted({kind for kind in columns.values() if kind not in _SPARK_ARROW})
        if unsupported:
            raise ValueError(f"Spark has no column type {', '.join(unsupported)}")

        def value(kind: str, raw: Any) -> Any:
            return EPOCH + raw * MICROS if kind.startswith("timestamp") and raw is not None else raw

        table = pa.table({
            column: pa.array([value(kind, row.get(column)) for row in rows], type=_SPARK_ARROW[kind]) for column, kind in columns.items()
        })
        frame = spark.createDataFrame(table)
        # From Arrow, Spark reads a naive timestamp as TIMESTAMP (an instant, in the session's
        # time zone, UTC) unless spark.sql.timestampType says otherwise: made naive again.
        naive = [column for column, kind in columns.items() if kind == "timestamp"]
        frame = frame.withColumns({column: frame[column].cast("timestamp_ntz") for column in naive})
        frame.createOrReplaceTempView(name)
        views.add(name)
        return _backtick(name)

    def query(sql: str) -> list[dict[str, Any]]:
        table = spark.sql(sql).toArrow()
        names = table.column_names
        return [dict(zip(names, (_plain(v) for v in row))) for row in zip(*(column.to_pylist() for column in table.columns))]

    def create(name: str, sql: str) -> None:
        # Cached, so the view is computed once, as a table would be.
        spark.sql(sql).cache().createOrReplaceTempView(name)
        views.add(name)

    try:
        yield Engine("spark", macros, load, query, create, _backtick, "timestamp_ltz")
    finally:
        for view in views:
            spark.catalog.dropTempView(view)


def _backtick(identifier: str) -> str:
    return "`" + identifier.replace("`", "``") + "`"


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _plain(value: Any) -> Any:
    """Timestamps as epoch microseconds, numerics as floats, as the DuckDB side gives them."""
    import decimal

    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, datetime.datetime):
        # Spark's zoned timestamps come back in UTC, its naive ones naive: both UTC.
        return micros(value)
    return value


def on_engines(
    seeds: Iterable[int] | None = None, *, postgres: bool | Iterable[int] = True, spark: bool | Iterable[int] = True
) -> pytest.MarkDecorator:
    """Parametrizes the `engine` fixture (tests/macros/conftest.py), and `seed` when `seeds`
    are given: DuckDB with its own and with the portable macros on every seed, and
    PostgreSQL and Spark unless False, on every seed when True, else on the seeds given
    (a subset sized for CI: Spark runs each query in a few hundred milliseconds at best)."""
    others = {"postgres": postgres, "spark": spark}
    if seeds is None:
        return pytest.mark.parametrize("engine", ["duckdb", "default", *(name for name, on in others.items() if on)], indirect=True)
    seeds = list(seeds)
    cases = [(name, seed) for name in ("duckdb", "default") for seed in seeds]
    for name, on in others.items():
        cases += [(name, seed) for seed in (seeds if on is True else [] if on is False else on)]
    return pytest.mark.parametrize(("engine", "seed"), cases, indirect=["engine"])
