"""PostgreSQL (and compatible warehouses) through psycopg, one connection per unit of work."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

import psycopg
import pyarrow as pa
from psycopg import sql as pgsql

from serving.engines import DEFAULT_BATCH_ROWS, Frame, as_arrow, column_not_built, first_line, not_built, query_failed
from serving.errors import OfflineStoreError

name = "postgres"

# Result column types by type OID; any other type is inferred by Arrow from the values.
_ARROW_BY_OID = {
    16: pa.bool_(),
    20: pa.int64(),
    21: pa.int16(),
    23: pa.int32(),
    25: pa.string(),
    700: pa.float32(),
    701: pa.float64(),
    1043: pa.string(),
    1082: pa.date32(),
    1114: pa.timestamp("us"),
    1184: pa.timestamp("us", tz="UTC"),
}


def _pg_type(arrow_type: pa.DataType) -> str:
    if pa.types.is_boolean(arrow_type):
        return "boolean"
    if pa.types.is_integer(arrow_type):
        return "bigint"
    if pa.types.is_floating(arrow_type):
        return "double precision"
    if pa.types.is_timestamp(arrow_type):
        return "timestamptz" if arrow_type.tz else "timestamp"
    if pa.types.is_date(arrow_type):
        return "date"
    if pa.types.is_decimal(arrow_type):
        return "numeric"
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "text"
    raise OfflineStoreError(f"cannot upload a column of type {arrow_type} to PostgreSQL; use integers, floats, strings, booleans, dates or timestamps")


class PostgresSession:
    def __init__(self, connection: psycopg.Connection, where: str) -> None:
        self._connection = connection
        self._where = where

    def upload(self, frame: Frame, name: str) -> str:
        table = as_arrow(frame)
        relation = pgsql.Identifier(name)
        columns = pgsql.SQL(", ").join(
            pgsql.SQL("{} {}").format(pgsql.Identifier(field.name), pgsql.SQL(_pg_type(field.type))) for field in table.schema
        )
        with _errors(self._where), self._connection.cursor() as cursor:
            cursor.execute(pgsql.SQL("create temporary table {} ({}) on commit preserve rows").format(relation, columns))
            names = pgsql.SQL(", ").join(pgsql.Identifier(field.name) for field in table.schema)
            with cursor.copy(pgsql.SQL("copy {} ({}) from stdin").format(relation, names)) as copy:
                for batch in table.to_batches(DEFAULT_BATCH_ROWS):
                    for row in zip(*(column.to_pylist() for column in batch.columns)):
                        copy.write_row(row)
        return relation.as_string(self._connection)

    def query(self, sql: str) -> pa.Table:
        with _errors(self._where), self._connection.cursor() as cursor:
            cursor.execute(sql)
            return _table(cursor.description, cursor.fetchall())

    def execute(self, sql: str) -> None:
        with _errors(self._where), self._connection.cursor() as cursor:
            cursor.execute(sql)

    def commit(self) -> None:
        with _errors(self._where):
            self._connection.commit()

    def stream(self, sql: str, batch_rows: int = DEFAULT_BATCH_ROWS) -> Iterator[pa.RecordBatch]:
        # A server-side cursor: the server keeps the result, the client holds one batch.
        with _errors(self._where), self._connection.cursor(name="feature_store_stream") as cursor:
            cursor.execute(sql)
            while rows := cursor.fetchmany(batch_rows):
                yield from _table(cursor.description, rows).to_batches()


def _table(description: Sequence[Any] | None, rows: Sequence[Sequence[Any]]) -> pa.Table:
    description = description or []
    columns = list(zip(*rows)) if rows else [[] for _ in description]
    return pa.table(
        {column.name: pa.array(values, type=_ARROW_BY_OID.get(column.type_code)) for column, values in zip(description, columns)}
    )


class PostgresEngine:
    name = name

    def __init__(self, parameters: dict[str, Any]) -> None:
        self.parameters = parameters

    def describe(self) -> str:
        p = self.parameters
        return f"PostgreSQL {p['user']}@{p['host']}:{p['port']}/{p['dbname']}"

    @contextmanager
    def session(self) -> Iterator[PostgresSession]:
        try:
            connection = psycopg.connect(**self.parameters)
        except psycopg.Error as error:
            raise OfflineStoreError(f"cannot connect to {self.describe()}: {first_line(error)}") from error
        try:
            # Every time rule compares naive UTC timestamps.
            connection.execute("set timezone to 'UTC'")
            yield PostgresSession(connection, self.describe())
        finally:
            connection.close()

    @contextmanager
    def write_session(self) -> Iterator[PostgresSession]:
        # psycopg opens a transaction at the first statement; closing without a commit rolls it back.
        with self.session() as session:
            yield session
            session.commit()


@contextmanager
def _errors(where: str) -> Iterator[None]:
    try:
        yield
    except psycopg.errors.UndefinedTable as error:
        raise not_built(error, where) from error
    except psycopg.errors.UndefinedColumn as error:
        raise column_not_built(error, where) from error
    except psycopg.Error as error:
        raise query_failed(error, where) from error


def parameters(target: Any, project_dir: Path) -> dict[str, Any]:
    c = target.credentials
    parameters = {
        "host": c.host,
        "port": int(c.port),
        "user": c.user,
        "password": c.password or None,
        "dbname": c.database,
        "connect_timeout": int(getattr(c, "connect_timeout", None) or 10),
        "application_name": "feature_store",
    }
    if getattr(c, "sslmode", None):
        parameters["sslmode"] = c.sslmode
    return {key: value for key, value in parameters.items() if value is not None}


def from_parameters(parameters: dict[str, Any]) -> PostgresEngine:
    return PostgresEngine(parameters)
