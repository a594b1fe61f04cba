"""Offline retrieval: point-in-time joins against the DuckDB warehouse, read-only.

The SQL is the project's `point_in_time_join_sql` macro, rendered by serving.macros;
nothing here restates a time rule.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Sequence

import duckdb
import pandas as pd
import pyarrow as pa

from serving.errors import EntityKeyError, OfflineStoreError
from serving.macros import MacroSet, quote
from serving.registry import FeatureView, Registry

ENTITY_TABLE = "__fs_entity_df"
# Integers and booleans stay integers and booleans when a value is missing (pd.NA).
_NULLABLE_DTYPES = {
    pa.int8(): pd.Int8Dtype(),
    pa.int16(): pd.Int16Dtype(),
    pa.int32(): pd.Int32Dtype(),
    pa.int64(): pd.Int64Dtype(),
    pa.bool_(): pd.BooleanDtype(),
}


def warehouse_path(project_dir: Path) -> Path:
    """Where profiles.yml puts the DuckDB file: $FEATURE_STORE_DUCKDB, else target/warehouse.duckdb."""
    configured = os.environ.get("FEATURE_STORE_DUCKDB")
    return Path(configured).resolve() if configured else project_dir / "target" / "warehouse.duckdb"


def to_utc_naive(moment: dt.datetime | str | pd.Timestamp) -> dt.datetime:
    """An instant as naive UTC, the form every time rule compares (naive input means UTC)."""
    stamp = pd.Timestamp(moment)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp.to_pydatetime()


class OfflineStore:
    def __init__(self, path: Path, macros: MacroSet) -> None:
        self.path = path
        self.macros = macros

    def connect(self) -> duckdb.DuckDBPyConnection:
        if not self.path.exists():
            raise OfflineStoreError(f"no warehouse at {self.path}; run `dbt build` first")
        try:
            connection = duckdb.connect(str(self.path), read_only=True)
        except duckdb.Error as error:
            raise OfflineStoreError(f"cannot open the warehouse {self.path} read-only: {error}") from error
        connection.execute("set TimeZone = 'UTC'")
        return connection

    def _run(self, connection: duckdb.DuckDBPyConnection, sql: str) -> pa.Table:
        try:
            return connection.sql(sql).to_arrow_table()
        except duckdb.CatalogException as error:
            raise OfflineStoreError(f"{error}; has `dbt build` built every feature view?") from error

    def historical(
        self,
        entity_df: pd.DataFrame,
        views: Sequence[tuple[FeatureView, list[str]]],
        timestamp_column: str,
        full_feature_names: bool,
    ) -> pd.DataFrame:
        Registry.key_types(view for view, _ in views)
        missing = sorted({key for view, _ in views for key in view.entity} - set(entity_df.columns))
        if missing:
            raise EntityKeyError(
                f"entity_df lacks entity key column(s) {', '.join(missing)}; its columns: {', '.join(map(str, entity_df.columns))}"
            )
        needed = list(dict.fromkeys([*(key for view, _ in views for key in view.entity), timestamp_column]))
        spine = pa.Table.from_pandas(entity_df[needed], preserve_index=False)
        sql = self.macros.call(
            "point_in_time_join_sql",
            ENTITY_TABLE,
            timestamp_column,
            [view.spec_for(features) for view, features in views],
            full_feature_names,
            False,
            [timestamp_column],
        )
        with self.connect() as connection:
            connection.register(ENTITY_TABLE, spine)
            joined = self._run(connection, sql)
        # The spine keeps its own columns, dtypes and index; only features are added.
        features = joined.drop_columns([timestamp_column]).to_pandas(types_mapper=_NULLABLE_DTYPES.get)
        if len(features) != len(entity_df):
            raise OfflineStoreError(f"point-in-time join returned {len(features)} rows for {len(entity_df)} entity rows")
        result = entity_df.copy()
        for column in features.columns:
            result[column] = features[column].array
        return result

    def snapshot(self, view: FeatureView, as_of: dt.datetime, feature_names: list[str] | None = None) -> pa.Table:
        """Every entity of `view` seen by `as_of`, joined at `as_of`: what Redis should hold.

        Columns: the entity keys, the features, and `event_timestamp` (NULL when the
        entity's latest row is older than the TTL)."""
        as_of_literal = f"timestamp '{to_utc_naive(as_of).isoformat(sep=' ')}'"
        keys = ", ".join(quote(key) for key in view.entity)
        event_time = self.macros.call("normalize_timestamp", quote(view.timestamp_column))
        spine = (
            f"(select distinct {keys}, {as_of_literal} as __fs_as_of from {view.relation}"
            f" where {event_time} <= {as_of_literal})"
        )
        sql = self.macros.call(
            "point_in_time_join_sql",
            spine,
            "__fs_as_of",
            [view.spec_for(feature_names or view.feature_names)],
            False,
            True,
            list(view.entity),
        )
        with self.connect() as connection:
            table = self._run(connection, sql)
        return table.rename_columns([*table.column_names[:-1], "event_timestamp"])
