"""Offline retrieval: point-in-time joins and export snapshots, run on the target's engine.

The SQL is the project's `point_in_time_join_sql` and `snapshot_sql` macros, rendered by
dbt for the current target (serving.rendering); the engine (serving.engines) runs it.
Nothing here names an engine or restates a time rule.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from serving.engines import DEFAULT_BATCH_ROWS, Engine
from serving.entities import check_entity_frame, check_outputs, timestamp_column_of
from serving.errors import InputError, OfflineStoreError
from serving.on_demand import OnDemandPlan, historical_arguments, missing_request_fields
from serving.on_demand import plan as on_demand_plan
from serving.registry import FeatureView, OnDemandView, Registry
from serving.rendering import Renderer

ENTITY_TABLE = "__fs_entity_df"
# Rendered into the SQL in place of values that vary per call, then replaced by them.
ENTITY_PLACEHOLDER = "__fs_entity_placeholder__"
AS_OF_PLACEHOLDER = "__FS_AS_OF_PLACEHOLDER__"
_TIMESTAMP_TEXT = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{6})?")
# Integers and booleans stay integers and booleans when a value is missing (pd.NA).
_NULLABLE_DTYPES = {
    pa.int8(): pd.Int8Dtype(),
    pa.int16(): pd.Int16Dtype(),
    pa.int32(): pd.Int32Dtype(),
    pa.int64(): pd.Int64Dtype(),
    pa.bool_(): pd.BooleanDtype(),
}


def to_utc_naive(moment: dt.datetime | str | pd.Timestamp | np.datetime64) -> dt.datetime:
    """An instant as naive UTC, the form every time rule compares (naive input means UTC)."""
    if isinstance(moment, str):
        # ISO 8601 only: pandas would also read 'now', '' (NaT) or a day-first date.
        try:
            moment = dt.datetime.fromisoformat(moment)
        except ValueError:
            raise InputError(f"as_of {moment!r} is not an ISO 8601 time; e.g. 2026-02-01T12:00:00Z") from None
    if not isinstance(moment, (dt.datetime, dt.date, np.datetime64)):
        # pd.Timestamp(1767225600) would be nanoseconds after 1970.
        raise InputError(f"as_of {moment!r} is a {type(moment).__name__}; pass a datetime or an ISO 8601 string")
    stamp = pd.Timestamp(moment)
    if stamp is pd.NaT:
        raise InputError("as_of is NaT (not a time); pass a datetime or an ISO 8601 string such as 2026-02-01T12:00:00Z")
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp.to_pydatetime()


@dataclass(frozen=True)
class Retrieval:
    """One get_historical_features computed, with what a saved set's lineage needs of it:
    `sql`, the retrieval SQL (ENTITY_PLACEHOLDER for the entity relation; with on-demand
    views, their expressions inside); `requested`, the views asked for with their features,
    in request order (on-demand ones included); `sources`, the feature views read."""

    result: pd.DataFrame
    sql: str
    timestamp_column: str
    requested: list[tuple[FeatureView | OnDemandView, list[str]]]
    sources: list[tuple[FeatureView, list[str]]]

    @property
    def on_demand_views(self) -> list[OnDemandView]:
        return [view for view, _ in self.requested if isinstance(view, OnDemandView)]


class OfflineStore:
    def __init__(self, renderer: Renderer, engine: Callable[[], Engine]) -> None:
        self.renderer = renderer
        self._engine_factory = engine
        self._engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        """Opened on first use: reading the profile starts dbt, which online reads never need."""
        if self._engine is None:
            self._engine = self._engine_factory()
        return self._engine

    def retrieve(
        self,
        registry: Registry,
        entity_df: pd.DataFrame,
        references: Sequence[str],
        timestamp_column: str | None,
        full_feature_names: bool,
    ) -> Retrieval:
        """get_historical_features' one path, whichever views the references name; a saved
        set is verified by calling it again, so its SQL and rows are compared like for like.
        `timestamp_column` None: entity_df's own (timestamp_column_of), found after the
        references are checked."""
        plan = on_demand_plan(registry, references, full_feature_names)
        column = timestamp_column or timestamp_column_of(entity_df)
        if plan is None:
            views = registry.resolve(references)
            result, sql = self._historical(entity_df, views, column, full_feature_names)
            return Retrieval(result, sql, column, list(views), views)
        sources = registry.resolve(plan.reads)
        result, sql = self._historical_on_demand(entity_df, plan, sources, registry, column)
        requested = [(view, names) for view, names, _ in plan.outputs]
        return Retrieval(result, sql, column, requested, sources)

    def historical(
        self,
        entity_df: pd.DataFrame,
        views: Sequence[tuple[FeatureView, list[str]]],
        timestamp_column: str,
        full_feature_names: bool,
    ) -> pd.DataFrame:
        """entity_df with the views' features at each row's time (feature views only; retrieve
        takes any references)."""
        return self._historical(entity_df, views, timestamp_column, full_feature_names)[0]

    def _historical(
        self,
        entity_df: pd.DataFrame,
        views: Sequence[tuple[FeatureView, list[str]]],
        timestamp_column: str,
        full_feature_names: bool,
    ) -> tuple[pd.DataFrame, str]:
        """The result and the SQL that made it."""
        key_types = Registry.key_types(view for view, _ in views)
        check_entity_frame(entity_df, key_types, timestamp_column)
        outputs = Registry.output_names(views, full_feature_names)
        check_outputs([name for names in outputs for name in names], list(entity_df.columns))
        needed = list(dict.fromkeys([*key_types, timestamp_column]))
        spine = pa.Table.from_pandas(entity_df[needed], preserve_index=False)
        sql = self.historical_sql(views, timestamp_column, full_feature_names)
        return self._join(entity_df, spine, sql, timestamp_column), sql

    def _join(self, entity_df: pd.DataFrame, spine: pa.Table, sql: str, timestamp_column: str) -> pd.DataFrame:
        with self.engine.session() as session:
            relation = session.upload(spine, ENTITY_TABLE)
            joined = session.query(sql.replace(ENTITY_PLACEHOLDER, relation))
        # The spine keeps its own columns, dtypes and index; only features are added.
        features = joined.drop_columns([timestamp_column]).to_pandas(types_mapper=_NULLABLE_DTYPES.get)
        if len(features) != len(entity_df):
            raise OfflineStoreError(f"point-in-time join returned {len(features)} rows for {len(entity_df)} entity rows")
        result = entity_df.copy()
        for column in features.columns:
            result[column] = features[column].array
        return result

    def historical_sql(
        self, views: Sequence[tuple[FeatureView, list[str]]], timestamp_column: str, full_feature_names: bool
    ) -> str:
        """The point-in-time join SQL, with ENTITY_PLACEHOLDER where the entity relation goes."""
        return self.renderer.call(
            "point_in_time_join_sql",
            ENTITY_PLACEHOLDER,
            timestamp_column,
            [view.spec_for(features) for view, features in views],
            full_feature_names,
            False,
            [timestamp_column],
        )

    def _historical_on_demand(
        self,
        entity_df: pd.DataFrame,
        plan: OnDemandPlan,
        sources: Sequence[tuple[FeatureView, list[str]]],
        registry: Registry,
        timestamp_column: str,
    ) -> tuple[pd.DataFrame, str]:
        """As _historical, for a request naming on-demand views (`sources`: the feature views
        it reads): the entity_df's request field columns go up with the keys, and the
        warehouse computes the expressions inside the point-in-time query
        (point_in_time_on_demand_sql)."""
        key_types = Registry.key_types(view for view, _ in sources)
        check_entity_frame(entity_df, key_types, timestamp_column)
        missing = missing_request_fields(plan, list(entity_df.columns), "entity_df lacks")
        if missing is not None:
            raise missing
        check_outputs([name for _, _, names in plan.outputs for name in names], list(entity_df.columns))
        needed = list(dict.fromkeys([*key_types, timestamp_column, *plan.request_fields]))
        spine = pa.Table.from_pandas(entity_df[needed], preserve_index=False)
        views, on_demand, outputs = historical_arguments(plan, registry)
        sql = self.renderer.call(
            "point_in_time_on_demand_sql",
            ENTITY_PLACEHOLDER,
            timestamp_column,
            views,
            on_demand,
            outputs,
            [timestamp_column],
            list(plan.request_fields),
        )
        return self._join(entity_df, spine, sql, timestamp_column), sql

    def snapshot_sql(self, view: FeatureView, as_of: dt.datetime, feature_names: list[str] | None = None) -> str:
        """The SQL of `view`'s snapshot at `as_of`: what Redis should hold (see snapshot_sql)."""
        spec = view.spec_for(feature_names or view.feature_names)
        sql = self.renderer.call("snapshot_sql", spec, AS_OF_PLACEHOLDER)
        text = to_utc_naive(as_of).isoformat(sep=" ", timespec="microseconds")
        if not _TIMESTAMP_TEXT.fullmatch(text):
            raise OfflineStoreError(f"as_of {as_of!r} is not a time between years 1000 and 9999")
        return sql.replace(AS_OF_PLACEHOLDER, text)

    def snapshot(self, view: FeatureView, as_of: dt.datetime, feature_names: list[str] | None = None) -> pa.Table:
        """Every entity of `view` seen by `as_of`, joined at `as_of`.

        Columns: the entity keys, the features, and `event_timestamp` (NULL when the
        entity's latest row is older than the TTL)."""
        with self.engine.session() as session:
            table = session.query(self.snapshot_sql(view, as_of, feature_names))
        return table.rename_columns([*table.column_names[:-1], "event_timestamp"])

    def snapshot_batches(
        self, view: FeatureView, as_of: dt.datetime, batch_rows: int = DEFAULT_BATCH_ROWS
    ) -> Iterator[pa.RecordBatch]:
        """The snapshot as Arrow batches, holding one batch at a time (for large exports)."""
        with self.engine.session() as session:
            for batch in session.stream(self.snapshot_sql(view, as_of), batch_rows):
                yield pa.RecordBatch.from_arrays(batch.columns, names=[*batch.schema.names[:-1], "event_timestamp"])
