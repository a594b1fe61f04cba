"""One interface over the engines a macro test runs on: DuckDB with the DuckDB macros,
DuckDB with the portable ones, and PostgreSQL with the postgres dispatch (a real server
on 127.0.0.1:5432, a schema of the run's own, dropped afterwards)."""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import duckdb

from macro_harness import EPOCH, MICROS, load as load_duckdb, micros, query as query_duckdb
from serving.rendering import Renderer

POSTGRES_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=test connect_timeout=3"
_POSTGRES_TYPES = {"bigint": "bigint", "double": "double precision", "varchar": "text", "boolean": "boolean", "timestamp": "timestamp"}


@dataclass
class Engine:
    name: str
    macros: Renderer
    load: Callable[[str, dict[str, str], Sequence[dict[str, Any]]], str]
    query: Callable[[str], list[dict[str, Any]]]


def duckdb_engine(adapter: str, connection: duckdb.DuckDBPyConnection, macros: Renderer) -> Engine:
    return Engine(adapter, macros, lambda name, columns, rows: load_duckdb(connection, name, columns, rows), lambda sql: query_duckdb(connection, sql))


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
            return EPOCH + raw * MICROS if kind == "timestamp" and raw is not None else raw

        with connection.cursor().copy(f"copy {_quote(name)} ({', '.join(map(_quote, columns))}) from stdin") as copy:
            for row in rows:
                copy.write_row([value(kind, row.get(column)) for column, kind in columns.items()])
        return _quote(name)

    def query(sql: str) -> list[dict[str, Any]]:
        cursor = connection.execute(sql)
        names = [column.name for column in cursor.description]
        return [dict(zip(names, (_plain(v) for v in row))) for row in cursor.fetchall()]

    try:
        yield Engine("postgres", macros, load, query)
    finally:
        connection.execute(f"drop schema {schema} cascade")
        connection.close()


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _plain(value: Any) -> Any:
    """Timestamps as epoch microseconds, numerics as floats, as the DuckDB side gives them."""
    import decimal

    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, datetime.datetime):
        return micros(value)
    return value
