"""DuckDB: the profile's database file, opened read-only for each unit of work.

A read-only connection is opened per session rather than held, because DuckDB lets one
process write a file only while no other holds it: `dbt build` must be able to run
between two calls."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import duckdb
import orjson
import pyarrow as pa

from serving.engines import DEFAULT_BATCH_ROWS, Frame, as_arrow, column_not_built, first_line, not_built, query_failed
from serving.errors import InputError, OfflineStoreError

name = "duckdb"


class DuckDBSession:
    def __init__(self, connection: duckdb.DuckDBPyConnection, where: str) -> None:
        self._connection = connection
        self._where = where

    def upload(self, frame: Frame, name: str) -> str:
        # A registered Arrow table is scanned in place: no copy into the file.
        self._connection.register(name, as_arrow(frame))
        return _quote(name)

    def query(self, sql: str) -> pa.Table:
        with _errors(self._where):
            return self._connection.sql(sql).to_arrow_table()

    def stream(self, sql: str, batch_rows: int = DEFAULT_BATCH_ROWS) -> Iterator[pa.RecordBatch]:
        with _errors(self._where):
            reader = self._connection.sql(sql).to_arrow_reader(batch_rows)
            yield from reader

    def execute(self, sql: str) -> None:
        with _errors(self._where):
            self._connection.execute(sql)


class DuckDBEngine:
    name = name

    def __init__(self, path: Path, settings: dict[str, Any]) -> None:
        self.path = path
        # Every time rule assumes a UTC session, whatever the profile says.
        self.settings = {**settings, "TimeZone": "UTC"}

    def describe(self) -> str:
        return f"DuckDB file {self.path}"

    @contextmanager
    def session(self, read_only: bool = True) -> Iterator[DuckDBSession]:
        if not self.path.exists():
            raise OfflineStoreError(f"no warehouse at {self.path}; run `dbt build` first")
        try:
            connection = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.Error as error:
            mode = "read-only" if read_only else "for writing (is `dbt build` running?)"
            raise OfflineStoreError(f"cannot open the warehouse {self.path} {mode}: {error}") from error
        try:
            for key, value in self.settings.items():
                connection.execute(f"set {key} = '{str(value)}'")
            yield DuckDBSession(connection, self.describe())
        finally:
            connection.close()

    @contextmanager
    def write_session(self) -> Iterator[DuckDBSession]:
        with self.session(read_only=False) as session:
            session.execute("begin transaction")
            try:
                yield session
            except BaseException:
                session.execute("rollback")
                raise
            session.execute("commit")


@contextmanager
def _errors(where: str) -> Iterator[None]:
    try:
        yield
    except duckdb.CatalogException as error:
        raise not_built(error, where) from error
    except duckdb.BinderException as error:
        if "Referenced column" in str(error):
            raise column_not_built(error, where) from error
        raise query_failed(error, where) from error
    except duckdb.Error as error:
        raise query_failed(error, where) from error


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def parameters(target: Any, project_dir: Path) -> dict[str, Any]:
    credentials = target.credentials
    path = Path(credentials.path)
    # dbt opens a relative path from its working directory, which is the project.
    if not path.is_absolute():
        path = project_dir / path
    return {"path": str(path.resolve()), "settings": {k: str(v) for k, v in (getattr(credentials, "settings", None) or {}).items()}}


def from_parameters(parameters: dict[str, Any]) -> DuckDBEngine:
    return DuckDBEngine(Path(parameters["path"]), parameters["settings"])


class InProcessSQL:
    """One SELECT evaluated in this process over a request's rows: how online reads compute
    on-demand features (serving.on_demand). One in-memory connection on one thread (a few
    hundred rows never pay for a second), behind a lock: a connection runs one query at a
    time. Its optimizer is off: over a few hundred rows the plan is the same scan and
    projection either way, and planning was a quarter of the time of a call.

    The rows arrive as one Python list per input. Where the view has `json_sql` (the same
    SQL reading each input from a JSON array), that text is prepared once and each call
    executes it with the lists as JSON (orjson): a prepared statement skips parsing and
    binding the expressions, which were most of a call (bench/bench_on_demand.py). Lists
    JSON cannot carry as they are (NaN and infinities, which it spells null; integers
    beyond 64 bits) go as list parameters to `sql`, parsed once and bound per call."""

    _PREPARED = "fs_on_demand"

    def __init__(self, sql: str, settings: dict[str, Any] | None = None, json_sql: str | None = None) -> None:
        self._connection = duckdb.connect(":memory:", config={"threads": 1, **(settings or {})})
        self._connection.execute("pragma disable_optimizer")
        with _parse_errors():
            (self._statement,) = self._connection.extract_statements(sql)
            self._prepared = json_sql is not None
            if self._prepared:
                self._connection.execute(f"prepare {self._PREPARED} as {json_sql}")
        self._lock = threading.Lock()

    def evaluate(self, inputs: list[list[Any]]) -> list[list[Any]]:
        """The query's result as one Python list per output column."""
        call = self._prepared_call(inputs) if self._prepared else None
        with self._lock:
            try:
                cursor = self._connection.execute(call) if call else self._connection.execute(self._statement, inputs)
                rows = cursor.fetchall()
            except duckdb.Error as error:
                raise InputError(f"on-demand features could not be computed (DuckDB, in process): {first_line(error)}") from error
            if not rows:
                return [[] for _ in cursor.description or ()]
        return [list(column) for column in zip(*rows)]

    def _prepared_call(self, inputs: list[list[Any]]) -> str | None:
        """`execute fs_on_demand('[...]', ...)`, or None when a list does not survive JSON."""
        arguments = []
        for values in inputs:
            try:
                encoded = orjson.dumps(values)
            except orjson.JSONEncodeError:
                return None
            # orjson writes NaN and infinities as null: more nulls than Nones means one was there.
            if b"null" in encoded and encoded.count(b"null") != values.count(None):
                return None
            arguments.append("'" + encoded.decode().replace("'", "''") + "'")
        return f"execute {self._PREPARED}({', '.join(arguments)})"


@contextmanager
def _parse_errors() -> Iterator[None]:
    try:
        yield
    except ValueError as error:  # unpacking: not exactly one statement
        raise InputError("on-demand SQL could not be parsed (DuckDB, in process): it is not exactly one statement") from error
    except duckdb.Error as error:
        raise InputError(f"on-demand SQL could not be parsed (DuckDB, in process): {first_line(error)}") from error
