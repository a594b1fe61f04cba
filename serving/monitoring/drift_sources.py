"""The two samples a drift report compares, each named by a short source text:

    dataset:NAME              a saved training set (serving.datasets)
    log                       the whole serving log
    log:SINCE..UNTIL          the serving log's reads in [SINCE, UNTIL) (ISO 8601; either may be empty)

A sample is {feature reference: values}, nulls included. In the serving log a value counts
as null unless its status is `present` (the table's layout: /work/helper-notes and
models/monitoring/monitoring.yml on the serving-log branch: one row per request x entity x
feature, `feature_ref`, `status`, `value_number`, `value_text`, `request_at` naive UTC).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from serving.datasets import SavedDatasets
from serving.errors import DatasetError, InputError, MissingRelationError
from serving.monitoring.drift import DEFAULT_BINS, DriftReport, drift_report
from serving.offline import OfflineStore, to_utc_naive
from serving.rendering import Renderer

SERVING_LOG_TABLE = "feature_store_serving_log"
SOURCE_FORMS = "dataset:NAME, log, or log:SINCE..UNTIL (ISO 8601 times, either may be empty)"


@dataclass
class Sample:
    label: str
    values: dict[str, Sequence[Any]]


class DriftSources:
    def __init__(self, offline: OfflineStore, renderer: Renderer, datasets: SavedDatasets) -> None:
        self.offline = offline
        self.renderer = renderer
        self.datasets = datasets

    def sample(self, source: str | pd.DataFrame | Mapping[str, Sequence[Any]], label: str | None = None) -> Sample:
        """A source text (see the module), or a frame / mapping whose columns are feature references."""
        if isinstance(source, pd.DataFrame):
            return Sample(label or f"a frame of {len(source)} rows", {str(c): source[c].to_numpy() for c in source.columns})
        if isinstance(source, Mapping):
            return Sample(label or "given values", {str(k): v for k, v in source.items()})
        if not isinstance(source, str):
            raise InputError(f"a drift source is {SOURCE_FORMS}, or a DataFrame; got a {type(source).__name__}")
        kind, _, rest = source.partition(":")
        if kind == "dataset" and rest:
            return self.dataset(rest)
        if kind == "log":
            since, until = _time_range(rest, source)
            return self.serving_log(since, until)
        raise InputError(f"drift source {source!r} is not one of: {SOURCE_FORMS}")

    def dataset(self, name: str) -> Sample:
        saved = self.datasets.get(name)
        table = saved.to_arrow()
        lineage = saved.lineage
        values = {}
        for reference in lineage["features"]:
            view, _, feature = reference.partition(":")
            column = f"{view}__{feature}" if lineage["full_feature_names"] else feature
            values[reference] = _values(table[column])
        return Sample(f"dataset {name} ({table.num_rows} rows, saved {saved.created_at.isoformat(timespec='seconds')}Z)", values)

    def serving_log(self, since: dt.datetime | None, until: dt.datetime | None) -> Sample:
        relation = self.renderer.relation(None, self.renderer.target.credentials.schema, SERVING_LOG_TABLE)
        where = [f"request_at >= {self._literal(since)}"] if since else []
        where += [f"request_at < {self._literal(until)}"] if until else []
        sql = (
            f"select feature_ref, status, value_number, value_text, request_at from {relation}"
            + (f" where {' and '.join(where)}" if where else "")
        )
        try:
            with self.offline.engine.session() as session:
                log = session.query(sql)
        except MissingRelationError:
            raise DatasetError(
                "the serving log has no table in the warehouse yet: log reads with serving_log_rate=... "
                "and run `featurestore logs flush`"
            ) from None
        span = f"{since.isoformat() if since else 'start'} to {until.isoformat() if until else 'now'}"
        if log.num_rows == 0:
            raise DatasetError(f"the serving log holds no reads from {span}")
        present = pc.equal(log["status"], "present")
        values: dict[str, Sequence[Any]] = {}
        for reference in pc.unique(log["feature_ref"]).to_pylist():
            rows = log.filter(pc.equal(log["feature_ref"], reference))
            served = pc.equal(rows["status"], "present")
            numbers = pc.if_else(served, rows["value_number"], pa.scalar(None, pa.float64()))
            if pc.all(pc.is_null(rows["value_text"])).as_py():
                values[reference] = _values(numbers)
            else:
                texts = pc.if_else(served, rows["value_text"], pa.scalar(None, pa.string()))
                values[reference] = pc.coalesce(texts, pc.cast(numbers, pa.string())).to_pylist()
        first, last = pc.min(log["request_at"]).as_py(), pc.max(log["request_at"]).as_py()
        reads = pc.sum(present).as_py() or 0
        return Sample(f"serving log from {span} ({log.num_rows} values, {reads} present, requests {first} to {last})", values)

    def _literal(self, moment: dt.datetime) -> str:
        return self.renderer.call("timestamp_literal", moment.isoformat(sep=" ", timespec="microseconds"))


def _values(column: pa.ChunkedArray | pa.Array) -> Sequence[Any]:
    """Numbers as float64 with NaN for null (fast to summarize); anything else as Python values."""
    kind = column.type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind) or pa.types.is_decimal(kind):
        return pc.fill_null(pc.cast(column, pa.float64()), float("nan")).to_numpy(zero_copy_only=False)
    return column.to_pylist()


def _time_range(text: str, source: str) -> tuple[dt.datetime | None, dt.datetime | None]:
    if not text:
        return None, None
    since_text, sep, until_text = text.partition("..")
    if not sep:
        raise InputError(f"drift source {source!r}: write the log's time range as log:SINCE..UNTIL")
    try:
        since = to_utc_naive(dt.datetime.fromisoformat(since_text)) if since_text else None
        until = to_utc_naive(dt.datetime.fromisoformat(until_text)) if until_text else None
    except ValueError:
        raise InputError(f"drift source {source!r}: SINCE and UNTIL are ISO 8601 times, e.g. log:2026-02-01..2026-02-08T12:00:00Z") from None
    if since and until and since >= until:
        raise InputError(f"drift source {source!r}: SINCE must be before UNTIL")
    return since, until



def compare(
    sources: DriftSources,
    reference: Any,
    current: Any,
    features: Sequence[str] | None = None,
    bins: int = DEFAULT_BINS,
) -> DriftReport:
    """The drift report of two sources, over the features both hold (or `features` of them)."""
    if isinstance(bins, bool) or not isinstance(bins, int) or not 2 <= bins <= 100:
        raise InputError(f"bins={bins!r}: give a whole number from 2 to 100")
    before, after = sources.sample(reference), sources.sample(current)
    shared = [name for name in before.values if name in after.values]
    if features:
        unknown = [name for name in features if name not in shared]
        if unknown:
            raise InputError(
                f"feature(s) {', '.join(unknown)} are not in both samples; features in both: {', '.join(shared) or '(none)'}"
            )
        shared = list(dict.fromkeys(features))
    if not shared:
        raise InputError(
            f"the two samples share no feature: {before.label} has {', '.join(before.values) or 'none'}; "
            f"{after.label} has {', '.join(after.values) or 'none'}"
        )
    return drift_report(
        {name: before.values[name] for name in shared}, {name: after.values[name] for name in shared}, before.label, after.label, bins
    )
