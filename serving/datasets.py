"""Saved training sets: `get_historical_features(..., save_as=NAME)` stored with its lineage,
and verified later by computing it again.

Where they live: in the offline store, the target's own warehouse, as Feast keeps its saved
datasets. A training set is data about the feature views, read by the same people and
tools (SQL, dbt sources, notebooks) and backed up with them; files under target/ would be
lost to `dbt clean`, belong to one checkout, and be invisible to a teammate on the same
warehouse. The schema is `feature_store_datasets` ($FEATURE_STORE_DATASETS_SCHEMA):

- each saved set is one table, `<name>__v<saved at>`, holding the result's rows and their
  position (`__fs_row`, since a warehouse table has no order);
- the table `saved_datasets` gets one row per save: name, created_at, table and the lineage
  as JSON. Both are written in one transaction; on Spark, which has none, the catalog row
  comes last and is the commit, so a failed save leaves at most an unlisted table, never a
  listed set without its rows. Saving a name again replaces the set (the older table is
  dropped; its lineage row stays as history).

The lineage: the manifest hash; per feature view read (those requested and those the
requested on-demand views read) its dbt model version, the checksum of its compiled SQL
(when the manifest holds it), a checksum of its definition (the model's SQL, config and
columns, and everything upstream of it: models, sources and macros), its row count and its
latest event time; per on-demand view requested its definition checksum, the checksum of
its rendered SQL (the expressions, which the definition's columns leave out), its sources
and request fields; the rendered retrieval SQL's checksum (with on-demand views, their
expressions are inside it); the feature references; the entity frame's hash and row count
(request fields are entity_df columns, so they are in it); the result's hash; the creation
time. Format 2 added the on-demand views; a format 1 lineage reads as having none.

A set is verified by computing it again through get_historical_features' own path
(OfflineStore.retrieve), never a second copy of it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any, Sequence, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from serving.engines import as_arrow
from serving.errors import DatasetError, InputError, MissingRelationError, MissingRequestFieldError, UnknownFeatureError
from serving.offline import _NULLABLE_DTYPES, OfflineStore, Retrieval
from serving.registry import FeatureView, OnDemandView, Registry
from serving.rendering import Renderer

SCHEMA_ENV = "FEATURE_STORE_DATASETS_SCHEMA"
DEFAULT_SCHEMA = "feature_store_datasets"
CATALOG_TABLE = "saved_datasets"
ROW_COLUMN = "__fs_row"
LINEAGE_FORMAT = 2
NAME_RULE = re.compile(r"[a-z][a-z0-9_]{0,39}")

# `featurestore dataset verify` exit codes (0: equal; 1-3 as for every command).
DATA_CHANGED_EXIT = 4
DEFINITIONS_CHANGED_EXIT = 5


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not NAME_RULE.fullmatch(name) or "__" in name:
        raise DatasetError(
            f"dataset name {name!r} is not valid; use 1-40 lowercase letters, digits and single underscores, "
            "starting with a letter (e.g. churn_training_2026_01)"
        )
    return name


@dataclass(frozen=True)
class SavedDataset:
    """One saved training set: its lineage record, and its rows through to_df()."""

    name: str
    created_at: dt.datetime
    table: str
    lineage: dict[str, Any] = field(repr=False)
    _store: SavedDatasets = field(repr=False, compare=False)

    @property
    def features(self) -> list[str]:
        return list(self.lineage["features"])

    @property
    def rows(self) -> int:
        return int(self.lineage["result"]["rows"])

    def to_arrow(self) -> pa.Table:
        return self._store.read_rows(self)

    def to_df(self) -> pd.DataFrame:
        """The rows in the order get_historical_features returned them (integers and booleans
        as pandas' nullable types, whatever the entity frame used)."""
        return self.to_arrow().to_pandas(types_mapper=_NULLABLE_DTYPES.get)


@dataclass(frozen=True)
class FeatureDifference:
    """One output column whose recomputed values differ from the saved ones."""

    column: str
    rows: int
    max_abs_difference: float | None


@dataclass(frozen=True)
class ViewChange:
    """A feature view's definition and data, when the set was saved and now."""

    name: str
    definition_changed: bool
    saved_rows: int | None
    rows_now: int | None
    saved_latest_event_time: str | None
    latest_event_time_now: str | None

    @property
    def data_changed(self) -> bool:
        return (self.saved_rows, self.saved_latest_event_time) != (self.rows_now, self.latest_event_time_now)


@dataclass(frozen=True)
class OnDemandChange:
    """An on-demand view's definition, when the set was saved and now. It has no data of
    its own: its source feature views' data is in Verification.views."""

    name: str
    definition_changed: bool


@dataclass
class Verification:
    """The result of computing a saved set again: `status` is `equal`, `data_changed` or
    `definitions_changed`; `reasons` say why in words, one per line."""

    name: str
    status: str
    rows: int
    reasons: list[str]
    differences: list[FeatureDifference]
    views: list[ViewChange]
    on_demand_views: list[OnDemandChange] = field(default_factory=list)

    @property
    def equal(self) -> bool:
        return self.status == "equal"

    @property
    def exit_code(self) -> int:
        return {"equal": 0, "data_changed": DATA_CHANGED_EXIT, "definitions_changed": DEFINITIONS_CHANGED_EXIT}[self.status]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "rows": self.rows,
            "reasons": self.reasons,
            "differences": [vars(d) for d in self.differences],
            "views": [{**vars(v), "data_changed": v.data_changed} for v in self.views],
            "on_demand_views": [vars(v) for v in self.on_demand_views],
        }

    def __str__(self) -> str:
        headline = {
            "equal": f"dataset {self.name}: equal ({self.rows} rows recomputed, every value the same)",
            "data_changed": f"dataset {self.name}: DIFFERS, data changed (the definitions are the same)",
            "definitions_changed": f"dataset {self.name}: DIFFERS, definitions changed",
        }[self.status]
        lines = [headline, *(f"  {reason}" for reason in self.reasons)]
        for difference in self.differences:
            largest = "" if difference.max_abs_difference is None else f", largest difference {difference.max_abs_difference:g}"
            lines.append(f"  {difference.column}: {difference.rows} of {self.rows} rows differ{largest}")
        return "\n".join(lines)


class SavedDatasets:
    """Saves, lists, reads and verifies training sets in the offline store."""

    def __init__(
        self, offline: OfflineStore, registry: Registry, renderer: Renderer, manifest: dict[str, Any], manifest_hash: str
    ) -> None:
        self.offline = offline
        self.registry = registry
        self.renderer = renderer
        self.manifest = manifest
        self.manifest_hash = manifest_hash
        self.schema = os.environ.get(SCHEMA_ENV) or DEFAULT_SCHEMA

    # -- saving -------------------------------------------------------------------------

    def save(
        self, name: str, entity_df: pd.DataFrame, references: Sequence[str], full_feature_names: bool, retrieval: Retrieval
    ) -> SavedDataset:
        check_name(name)
        result = retrieval.result
        if ROW_COLUMN in result.columns:
            raise InputError(f"entity_df has a column named {ROW_COLUMN}, which a saved dataset keeps its row order in; rename it")
        created = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        table_name = f"{name}__v{created:%Y%m%d%H%M%S%f}"
        rows = _arrow(result, "the training set")
        entity = _arrow(entity_df, "entity_df")
        lineage = {
            "format": LINEAGE_FORMAT,
            "name": name,
            "created_at": created.isoformat(),
            "manifest_hash": self.manifest_hash,
            "engine": self.offline.engine.name,
            "feature_references": list(references),
            "features": [f"{view.name}:{feature}" for view, features in retrieval.requested for feature in features],
            "full_feature_names": bool(full_feature_names),
            "timestamp_column": retrieval.timestamp_column,
            "entity": {"columns": list(map(str, entity_df.columns)), "rows": len(entity_df), "hash": table_hash(entity)},
            "result": {"columns": list(map(str, result.columns)), "rows": len(result), "hash": table_hash(rows)},
            "retrieval_sql_checksum": _sha256(retrieval.sql),
            "feature_views": [self._view_lineage(view) for view, _ in retrieval.sources],
            "on_demand_feature_views": [self._on_demand_lineage(view) for view in retrieval.on_demand_views],
            "table": table_name,
        }
        stored = rows.append_column(ROW_COLUMN, pa.array(np.arange(len(result), dtype=np.int64)))
        previous = [saved.table for saved in self._catalog() if saved.name == name]
        catalog_row = pa.table(
            {
                "name": pa.array([name], pa.string()),
                "created_at": pa.array([created], pa.timestamp("us")),
                "table_name": pa.array([table_name], pa.string()),
                "lineage": pa.array([json.dumps(lineage, sort_keys=True)], pa.string()),
            }
        )
        catalog = self.renderer.relation(None, self.schema, CATALOG_TABLE)
        with self.offline.engine.write_session() as session:
            session.execute(self.renderer.call("create_schema_sql", self.schema))
            rows_relation = session.upload(stored, "__fs_dataset_rows")
            session.execute(f"create table {self.renderer.relation(None, self.schema, table_name)} as select * from {rows_relation}")
            # The catalog row last: on an engine without transactions (Spark) it is the commit.
            row_relation = session.upload(catalog_row, "__fs_dataset_catalog_row")
            session.execute(f"create table if not exists {catalog} as select * from {row_relation} where 1 = 0")
            session.execute(f"insert into {catalog} select * from {row_relation}")
            for table in previous:
                session.execute(f"drop table if exists {self.renderer.relation(None, self.schema, table)}")
        return SavedDataset(name, created, table_name, lineage, self)

    def _view_lineage(self, view: FeatureView) -> dict[str, Any]:
        node = self._node(view)
        compiled = (node or {}).get("compiled_code")
        summary = self._data_summary(view)
        return {
            "name": view.name,
            "version": (node or {}).get("version"),
            "relation": view.relation,
            "compiled_sql_checksum": _sha256(compiled) if compiled else None,
            "definition_checksum": definition_checksum(self.manifest, node["unique_id"]) if node else None,
            **summary,
        }

    def _on_demand_lineage(self, view: OnDemandView) -> dict[str, Any]:
        """No rows of its own: its definition and what it reads. definition_checksum covers
        the model's config (sources, request fields) and upstream but leaves column meta,
        where the expressions are, out; the rendered SQL's checksum covers those."""
        node = self.manifest.get("nodes", {}).get(view.unique_id or "")
        return {
            "name": view.name,
            "definition_checksum": definition_checksum(self.manifest, node["unique_id"]) if node else None,
            "sql_checksum": _sha256(view.sql),
            "sources": view.source_references,
            "request_fields": {request_field.name: request_field.data_type for request_field in view.request_fields},
        }

    def _node(self, view: FeatureView) -> dict[str, Any] | None:
        """The manifest node the view reads: the one whose relation is the view's (with dbt
        model versions, several nodes share a name, and each version has its own relation)."""
        by_id = self.manifest.get("nodes", {}).get(view.spec.get("unique_id") or "")
        if by_id is not None:
            return by_id
        for node in self.manifest.get("nodes", {}).values():
            if node.get("resource_type") != "model" or node.get("name") != view.name:
                continue
            database = (node.get("config") or {}).get("database")
            if self.renderer.relation(database, node["schema"], node.get("alias") or node["name"]) == view.relation:
                return node
        return None

    def _data_summary(self, view: FeatureView) -> dict[str, Any]:
        sql = self.renderer.call("view_data_summary_sql", view.spec)
        with self.offline.engine.session() as session:
            row = session.query(sql).to_pylist()[0]
        latest = row["latest_event_time"]
        return {"row_count": int(row["row_count"]), "latest_event_time": latest.isoformat() if latest is not None else None}

    # -- reading ------------------------------------------------------------------------

    def _catalog(self) -> list[SavedDataset]:
        """Every save, oldest first (a name saved twice appears twice)."""
        relation = self.renderer.relation(None, self.schema, CATALOG_TABLE)
        try:
            with self.offline.engine.session() as session:
                rows = session.query(f"select name, created_at, table_name, lineage from {relation}").to_pylist()
        except MissingRelationError:
            return []
        saved = [
            SavedDataset(r["name"], _naive_utc(r["created_at"]), r["table_name"], json.loads(r["lineage"]), self) for r in rows
        ]
        return sorted(saved, key=lambda s: s.created_at)

    def latest(self) -> list[SavedDataset]:
        """The current save of every name, by name."""
        latest = {saved.name: saved for saved in self._catalog()}
        return [latest[name] for name in sorted(latest)]

    def get(self, name: str) -> SavedDataset:
        saved = {dataset.name: dataset for dataset in self.latest()}
        if name not in saved:
            valid = ", ".join(saved) or "(none yet: get_historical_features(..., save_as=NAME) or `featurestore historical --save-as NAME` saves one)"
            raise DatasetError(f"no saved dataset named {name!r} in schema {self.schema}; saved datasets: {valid}")
        return saved[name]

    def read_rows(self, saved: SavedDataset) -> pa.Table:
        relation = self.renderer.relation(None, self.schema, saved.table)
        try:
            with self.offline.engine.session() as session:
                table = session.query(f"select * from {relation} order by {ROW_COLUMN}")
        except MissingRelationError:
            raise DatasetError(f"dataset {saved.name!r}: its table {relation} is gone from the warehouse") from None
        return table.drop_columns([ROW_COLUMN])

    # -- verifying ----------------------------------------------------------------------

    def verify(self, name: str) -> Verification:
        saved = self.get(name)
        lineage = saved.lineage
        stored = saved.to_arrow()
        if table_hash(stored) != lineage["result"]["hash"]:
            raise DatasetError(f"dataset {name!r}: the rows in its table {saved.table} were changed after it was saved")
        entity_columns = lineage["entity"]["columns"]
        entity_df = stored.select(entity_columns).to_pandas(types_mapper=_NULLABLE_DTYPES.get)
        reasons: list[str] = []
        try:
            retrieval = self.offline.retrieve(
                self.registry, entity_df, lineage["features"], lineage["timestamp_column"], lineage["full_feature_names"]
            )
        except (UnknownFeatureError, MissingRequestFieldError) as error:
            what = "a feature is gone" if isinstance(error, UnknownFeatureError) else "an on-demand view needs a new request field"
            reasons.append(f"{what}: {error}")
            return Verification(name, "definitions_changed", len(stored), reasons, [], [])
        changes, on_demand_changes = self._changes(retrieval, lineage)
        retrieval_changed = _sha256(retrieval.sql) != lineage["retrieval_sql_checksum"]
        differences = compare_columns(stored, _arrow(_as_saved(retrieval.result, lineage), "the recomputed set"), entity_columns)
        definitions_changed = [change.name for change in [*changes, *on_demand_changes] if change.definition_changed]
        if definitions_changed:
            reasons.append(
                f"definition changed since the save: {', '.join(definitions_changed)} (its SQL, config, columns, expressions or upstream)"
            )
        if retrieval_changed:
            reasons.append(
                "the point-in-time join SQL rendered for this set changed (a view's TTL, keys or timestamp columns, "
                "an on-demand expression, or the feature_store macros)"
            )
        for change in changes:
            if change.data_changed:
                reasons.append(
                    f"{change.name} data: {change.saved_rows} rows up to {change.saved_latest_event_time} when saved, "
                    f"now {change.rows_now} rows up to {change.latest_event_time_now}"
                )
        if not differences:
            status = "equal"
            if definitions_changed or retrieval_changed or any(c.data_changed for c in changes):
                reasons.insert(0, "the changes below do not alter this set's rows:")
        elif definitions_changed or retrieval_changed:
            status = "definitions_changed"
        else:
            status = "data_changed"
            if not any(change.data_changed for change in changes):
                reasons.append("row counts and latest event times are as saved: rows were corrected in place")
        return Verification(name, status, len(stored), reasons, differences, changes, on_demand_changes)

    def _changes(self, retrieval: Retrieval, lineage: dict[str, Any]) -> tuple[list[ViewChange], list[OnDemandChange]]:
        """Each view the set reads now against its lineage entry: feature views (those
        requested and the on-demand views' sources), then the on-demand views requested."""
        sources = _paired([view for view, _ in retrieval.sources], lineage["feature_views"])
        # A format 1 lineage has no on_demand_feature_views; its features name none either.
        on_demand = _paired(retrieval.on_demand_views, lineage.get("on_demand_feature_views", []))
        return (
            [self._view_change(view, saved) for view, saved in sources],
            [self._on_demand_change(view, saved) for view, saved in on_demand],
        )

    def _on_demand_change(self, view: OnDemandView, saved: dict[str, Any] | None) -> OnDemandChange:
        now = self._on_demand_lineage(view)
        saved = saved or {}
        return OnDemandChange(view.name, any(now[key] != saved.get(key) for key in ("definition_checksum", "sql_checksum")))

    def _view_change(self, view: FeatureView, saved: dict[str, Any] | None) -> ViewChange:
        now = self._view_lineage(view)
        saved = saved or {}
        definition_changed = now["definition_checksum"] != saved.get("definition_checksum") or (
            now["compiled_sql_checksum"] is not None
            and saved.get("compiled_sql_checksum") is not None
            and now["compiled_sql_checksum"] != saved["compiled_sql_checksum"]
        )
        return ViewChange(
            view.name,
            definition_changed,
            saved.get("row_count"),
            now["row_count"],
            saved.get("latest_event_time"),
            now["latest_event_time"],
        )


def _as_saved(recomputed: pd.DataFrame, lineage: dict[str, Any]) -> pd.DataFrame:
    """The recomputed set under the saved set's column names. verify asks for the resolved
    references, which pin versions (product_popularity.v2:x); with full_feature_names those
    name their columns after the version (product_popularity_v2__x) where the saved set,
    asked as product_popularity:x, has product_popularity__x. Same features, same order."""
    saved = lineage["result"]["columns"]
    if list(recomputed.columns) == saved or len(recomputed.columns) != len(saved):
        return recomputed
    return recomputed.set_axis(saved, axis=1)


def _naive_utc(moment: dt.datetime) -> dt.datetime:
    # Spark hands a naive timestamp column back zoned (UTC); the others as written.
    return moment.astimezone(dt.timezone.utc).replace(tzinfo=None) if moment.tzinfo else moment


_View = TypeVar("_View", FeatureView, OnDemandView)


def _paired(views: Sequence[_View], saved_entries: Sequence[dict[str, Any]]) -> list[tuple[_View, dict[str, Any] | None]]:
    """Each view with its lineage entry of the same name (None: it was not read then)."""
    saved = {entry["name"]: entry for entry in saved_entries}
    return [(view, saved.get(view.name)) for view in views]


def _arrow(frame: pd.DataFrame, what: str) -> pa.Table:
    try:
        return as_arrow(frame)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as error:
        raise InputError(f"{what} cannot be stored in the warehouse: {error}; use numbers, strings, booleans or timestamps") from None


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# -- definitions ----------------------------------------------------------------------------

_MODEL_FIELDS = ("raw_code", "language", "config", "version")
_SOURCE_FIELDS = ("schema", "identifier", "config", "meta", "external")


def definition_checksum(manifest: dict[str, Any], unique_id: str) -> str:
    """A hash of what decides a model's rows: its SQL, config and column types, and the same
    for every model, source and macro upstream of it. dbt's own per-file checksum misses
    upstream changes, and the manifest's hash changes with every run."""
    parts: dict[str, Any] = {}
    pending = [unique_id]
    while pending:
        current = pending.pop()
        if current in parts:
            continue
        item = (
            manifest.get("nodes", {}).get(current)
            or manifest.get("sources", {}).get(current)
            or manifest.get("macros", {}).get(current)
        )
        parts[current] = _definition(item)
        depends_on = (item or {}).get("depends_on") or {}
        pending.extend(depends_on.get("nodes") or [])
        pending.extend(depends_on.get("macros") or [])
    return _sha256(json.dumps(parts, sort_keys=True, default=str))


def _definition(item: dict[str, Any] | None) -> Any:
    if item is None:
        return None
    if item.get("resource_type") == "macro":
        return item.get("macro_sql")
    fields = _SOURCE_FIELDS if item.get("resource_type") == "source" else _MODEL_FIELDS
    chosen = {name: item.get(name) for name in fields}
    # Column descriptions are documentation; the declared types decide the rows.
    chosen["columns"] = {name: (column or {}).get("data_type") for name, column in (item.get("columns") or {}).items()}
    return chosen


# -- values ---------------------------------------------------------------------------------


def canonical(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """A column in one form per kind of value, so that a frame and its round trip through a
    warehouse compare equal: timestamps as naive UTC microseconds, integers as int64, floats
    as float64, text as string, dictionaries decoded."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    kind = array.type
    if pa.types.is_dictionary(kind):
        return canonical(array.dictionary_decode())
    if pa.types.is_timestamp(kind):
        if kind.tz is not None:
            array = array.cast(pa.timestamp(kind.unit, "UTC"))
        return array.cast(pa.timestamp("us")) if kind.unit != "us" or kind.tz else array
    if pa.types.is_integer(kind):
        return array.cast(pa.int64())
    if pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return array.cast(pa.float64())
    if pa.types.is_large_string(kind):
        return array.cast(pa.string())
    return array


def _column_bytes(array: pa.Array) -> bytes:
    nulls = pc.is_null(array).to_numpy(zero_copy_only=False)
    if pa.types.is_timestamp(array.type) or pa.types.is_integer(array.type) or pa.types.is_date(array.type):
        values = array.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
    elif pa.types.is_floating(array.type):
        values = array.fill_null(0.0).to_numpy(zero_copy_only=False)
        values = np.where(np.isnan(values), np.nan, values + 0.0)  # one NaN, and -0.0 == 0.0
    else:
        values = np.frombuffer(json.dumps(array.to_pylist(), default=str).encode(), dtype=np.uint8)
    return nulls.tobytes() + np.ascontiguousarray(values).tobytes()


def table_hash(table: pa.Table | pd.DataFrame) -> str:
    """A hash of a table's column names and values, in row order (see canonical)."""
    table = as_arrow(table)
    digest = hashlib.sha256()
    for name in table.column_names:
        array = canonical(table[name])
        digest.update(json.dumps([name, str(array.type)]).encode())
        digest.update(_column_bytes(array))
    return digest.hexdigest()


def compare_columns(saved: pa.Table, recomputed: pa.Table, skip: Sequence[str]) -> list[FeatureDifference]:
    """Per output column outside `skip`: how many rows differ (a value against a null counts;
    two nulls or two NaNs are equal) and the largest absolute difference of numbers."""
    differences = []
    for name in saved.column_names:
        if name in skip:
            continue
        if name not in recomputed.column_names:
            differences.append(FeatureDifference(name, saved.num_rows, None))
            continue
        before, after = canonical(saved[name]), canonical(recomputed[name])
        if before.type != after.type:
            differences.append(FeatureDifference(name, saved.num_rows, None))
            continue
        both_null = pc.and_(pc.is_null(before), pc.is_null(after))
        same = pc.fill_null(pc.equal(before, after), False)
        if pa.types.is_floating(before.type):
            same = pc.or_(same, pc.fill_null(pc.and_(pc.is_nan(before), pc.is_nan(after)), False))
        differing = pc.invert(pc.or_(same, both_null))
        count = pc.sum(differing).as_py() or 0
        if count:
            largest = None
            if pa.types.is_integer(before.type) or pa.types.is_floating(before.type):
                gap = pc.abs(pc.subtract(before.cast(pa.float64()), after.cast(pa.float64())))
                largest = pc.max(pc.filter(gap, differing)).as_py()
            differences.append(FeatureDifference(name, count, largest))
    return differences
