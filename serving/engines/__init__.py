"""One module per warehouse behind three verbs, chosen by the dbt target's type.

    with engine.session() as session:
        name = session.upload(frame)        # an entity frame as a temporary relation
        table = session.query(sql)          # a query into one Arrow table
        for batch in session.stream(sql):   # a query as Arrow record batches, bounded memory
            ...

    with engine.write_session() as session:  # the same verbs, plus execute(sql), in one
        session.execute(sql)                 # transaction committed on a clean exit
                                             # (where the engine has transactions)

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

from serving.dbt_target import cache_path, load_target, recall, remember
from serving.errors import MissingRelationError, OfflineStoreError

Frame = pd.DataFrame | pa.Table
DEFAULT_BATCH_ROWS = 65_536
_SECRET_KEYS = {"password", "token", "conf_secrets"}
_MODULES = {"duckdb": "serving.engines.duckdb", "postgres": "serving.engines.postgres", "spark": "serving.engines.spark"}


class Session(Protocol):
    def upload(self, frame: Frame, name: str) -> str:
        """Makes `frame` queryable as the temporary relation `name` (returned as SQL)."""

    def query(self, sql: str) -> pa.Table:
        """Runs `sql`, returning the whole result."""

    def stream(self, sql: str, batch_rows: int = DEFAULT_BATCH_ROWS) -> Iterator[pa.RecordBatch]:
        """Runs `sql`, yielding its rows in batches of at most `batch_rows`."""


class WriteSession(Session, Protocol):
    def execute(self, sql: str) -> None:
        """Runs a statement (DDL, insert) that returns nothing."""


class Engine(Protocol):
    name: str

    def session(self) -> AbstractContextManager[Session]:
        """A connection for one unit of work; temporary relations live as long as it."""

    def write_session(self) -> AbstractContextManager[WriteSession]:
        """A connection that may write (the serving log's table), committed when the block
        ends without an error and rolled back otherwise."""

    def describe(self) -> str:
        """Where the warehouse is, for messages (no secrets)."""


def _module(target_type: str, target_name: str) -> Any:
    module_name = _MODULES.get(target_type)
    if module_name is None:
        raise OfflineStoreError(
            f"target '{target_name}' is a {target_type} target; the feature store serves from: {', '.join(_MODULES)}"
        )
    return importlib.import_module(module_name)


def open_engine(target: Any, project_dir: Path) -> Engine:
    """The engine for a dbt target (serving.dbt_target.Target)."""
    module = _module(target.type, target.name)
    return module.from_parameters(module.parameters(target, project_dir))


def open_target_engine(project_dir: Path, target_name: str | None) -> Engine:
    """The engine of the selected target. Its connection parameters are remembered under
    target/ by the settings fingerprint unless they hold a secret, so a process that finds
    them there connects without starting dbt to read the profile."""
    path = cache_path(project_dir, "engine", target_name)
    saved = recall(path)
    if isinstance(saved, dict) and saved.get("type") in _MODULES:
        return _module(saved["type"], str(target_name)).from_parameters(saved["parameters"])
    target = load_target(project_dir, target_name)
    module = _module(target.type, target.name)
    parameters = module.parameters(target, project_dir)
    if not any(value for key, value in parameters.items() if key in _SECRET_KEYS):
        remember(path, {"type": target.type, "parameters": parameters})
    return module.from_parameters(parameters)


def as_arrow(frame: Frame) -> pa.Table:
    return frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def not_built(error: BaseException, where: str) -> OfflineStoreError:
    """A relation the query names is missing from the warehouse."""
    return MissingRelationError(f"{first_line(error)} in {where}; has `dbt build` built every feature view there?")


def column_not_built(error: BaseException, where: str) -> OfflineStoreError:
    """A column the manifest declares is missing from its relation: the YAML changed since the build."""
    return OfflineStoreError(
        f"{first_line(error)} in {where}; a column declared in the models' YAML is not in the warehouse: "
        "run `dbt build` to rebuild the changed models"
    )


def query_failed(error: BaseException, where: str) -> OfflineStoreError:
    return OfflineStoreError(f"query failed in {where}: {first_line(error)}")
