"""One module per warehouse behind three verbs, chosen by the dbt target's type.

    with engine.session() as session:
        name = session.upload(frame)        # an entity frame as a temporary relation
        table = session.query(sql)          # a query into one Arrow table
        for batch in session.stream(sql):   # a query as Arrow record batches, bounded memory
            ...

Connection details come from the dbt profile (serving.dbt_target), read once. Only the
engine modules import their client library (duckdb, psycopg, pyspark); every client
error becomes an OfflineStoreError naming the warehouse.
"""

from __future__ import annotations

import importlib
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Iterator, Protocol

import pandas as pd
import pyarrow as pa

from serving.errors import OfflineStoreError

Frame = pd.DataFrame | pa.Table
DEFAULT_BATCH_ROWS = 65_536
_MODULES = {"duckdb": "serving.engines.duckdb", "postgres": "serving.engines.postgres", "spark": "serving.engines.spark"}


class Session(Protocol):
    def upload(self, frame: Frame, name: str) -> str:
        """Makes `frame` queryable as the temporary relation `name` (returned as SQL)."""

    def query(self, sql: str) -> pa.Table:
        """Runs `sql`, returning the whole result."""

    def stream(self, sql: str, batch_rows: int = DEFAULT_BATCH_ROWS) -> Iterator[pa.RecordBatch]:
        """Runs `sql`, yielding its rows in batches of at most `batch_rows`."""


class Engine(Protocol):
    name: str

    def session(self) -> AbstractContextManager[Session]:
        """A connection for one unit of work; temporary relations live as long as it."""

    def describe(self) -> str:
        """Where the warehouse is, for messages (no secrets)."""


def open_engine(target: Any, project_dir: Path) -> Engine:
    """The engine for a dbt target (serving.dbt_target.Target)."""
    module_name = _MODULES.get(target.type)
    if module_name is None:
        raise OfflineStoreError(
            f"target '{target.name}' is a {target.type} target; the feature store serves from: {', '.join(_MODULES)}"
        )
    module = importlib.import_module(module_name)
    return module.from_target(target, project_dir)


def as_arrow(frame: Frame) -> pa.Table:
    return frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def not_built(error: BaseException, where: str) -> OfflineStoreError:
    """A relation the query names is missing from the warehouse."""
    return OfflineStoreError(f"{first_line(error)} in {where}; has `dbt build` built every feature view there?")


def query_failed(error: BaseException, where: str) -> OfflineStoreError:
    return OfflineStoreError(f"query failed in {where}: {first_line(error)}")
