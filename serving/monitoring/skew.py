"""Training/serving skew: the serving log against the point-in-time join, per feature.

The comparison is SQL (macros/monitoring/serving_skew_sql.sql, the same SQL as the
dbt model `serving_skew`), rendered by dbt and run on the target's engine. This module
only counts its rows per feature and picks a few examples.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import pyarrow as pa

from serving.errors import OfflineStoreError
from serving.offline import OfflineStore, to_utc_naive
from serving.registry import FeatureView
from serving.rendering import Renderer

CAUSES = ("changed_after_export", "stale_snapshot", "outside_ttl", "missing_entity")
EXAMPLES = 3
SINCE_PLACEHOLDER = "__FS_SINCE_PLACEHOLDER__"
_TEST = "no_serving_skew"


@dataclass(frozen=True)
class Thresholds:
    """Mismatch rates allowed: per feature reference, else `default` (from the
    `feature_store.no_serving_skew` test in the project's YAML, else 0)."""

    default: float = 0.0
    per_feature: dict[str, float] = field(default_factory=dict)

    def of(self, reference: str) -> float:
        return self.per_feature.get(reference, self.default)

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any]) -> Thresholds:
        """The arguments of the project's no_serving_skew test (the first one, if several)."""
        for node in manifest.get("nodes", {}).values():
            metadata = node.get("test_metadata") or {}
            if node.get("resource_type") == "test" and metadata.get("name") == _TEST:
                kwargs = metadata.get("kwargs") or {}
                per_feature = {str(k): float(v) for k, v in (kwargs.get("thresholds") or {}).items()}
                return cls(float(kwargs.get("threshold", 0.0) or 0.0), per_feature)
        return cls()


@dataclass(frozen=True)
class FeatureSkew:
    feature: str  # view:feature
    compared: int
    mismatches: int
    max_abs_difference: float | None
    causes: dict[str, int]
    examples: list[dict[str, Any]]
    threshold: float

    @property
    def rate(self) -> float:
        return self.mismatches / self.compared if self.compared else 0.0

    @property
    def above_threshold(self) -> bool:
        return self.rate > self.threshold

    def to_dict(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "compared": self.compared,
            "mismatches": self.mismatches,
            "rate": round(self.rate, 6),
            "max_abs_difference": self.max_abs_difference,
            "causes": self.causes,
            "threshold": self.threshold,
            "above_threshold": self.above_threshold,
            "examples": self.examples,
        }


@dataclass(frozen=True)
class SkewReport:
    since: dt.datetime | None
    features: list[FeatureSkew]
    # Every compared row (serving_skew_sql's columns): the evidence behind the counts.
    rows: pa.Table | None = field(default=None, repr=False, compare=False)

    @property
    def above_threshold(self) -> bool:
        return any(feature.above_threshold for feature in self.features)

    def feature(self, reference: str) -> FeatureSkew:
        for feature in self.features:
            if feature.feature == reference:
                return feature
        raise KeyError(reference)

    def to_dict(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat() if self.since else None,
            "above_threshold": self.above_threshold,
            "features": [feature.to_dict() for feature in self.features],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_text(self) -> str:
        if not self.features:
            return "no logged reads to compare" + (f" since {self.since.isoformat()}" if self.since else "")
        lines = []
        for f in self.features:
            verdict = "ABOVE THRESHOLD" if f.above_threshold else "ok"
            difference = "-" if f.max_abs_difference is None else f"{f.max_abs_difference:g}"
            lines.append(
                f"{f.feature}: {f.compared:,} compared, {f.mismatches:,} mismatches ({f.rate:.1%}), "
                f"max |difference| {difference}, threshold {f.threshold:.1%}: {verdict}"
            )
            causes = ", ".join(f"{cause} {count:,}" for cause, count in f.causes.items() if count)
            if causes:
                lines.append(f"    causes: {causes}")
            for example in f.examples:
                lines.append(
                    f"    e.g. {example['entity_key']} at {example['request_at']}: served {_show(example['served'])} "
                    f"({example['status']}, snapshot as of {example['snapshot_as_of']}), "
                    f"at as_of {_show(example['at_as_of'])}, at request {_show(example['at_request'])}: {example['cause']}"
                )
        return "\n".join(lines)


def _show(value: Any) -> str:
    return "NULL" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


class SkewChecker:
    def __init__(self, offline: OfflineStore, renderer: Renderer) -> None:
        self.offline = offline
        self.renderer = renderer

    def report(self, views: Sequence[FeatureView], thresholds: Thresholds, since: dt.datetime | str | None = None) -> SkewReport:
        moment = to_utc_naive(since) if since is not None else None
        relation = self.renderer.call("serving_log_relation")
        tables = []
        with self.offline.engine.session() as session:
            for view in views:
                key_types = {key: view.entity_types.get(key) for key in view.entity}
                sql = self.renderer.call("serving_skew_sql", relation, view.spec, key_types, SINCE_PLACEHOLDER if moment else None)
                if moment is not None:
                    sql = sql.replace(SINCE_PLACEHOLDER, moment.isoformat(sep=" ", timespec="microseconds"))
                try:
                    tables.append(session.query(sql))
                except OfflineStoreError as error:
                    if "feature_store_serving_log" in str(error):
                        raise OfflineStoreError(
                            f"no serving log in the warehouse yet ({relation}); log reads with serving_log_rate > 0 "
                            "(or FEATURE_STORE_SERVING_LOG_RATE), then run `featurestore logs flush`"
                        ) from error
                    raise
        rows = pa.concat_tables(tables, promote_options="permissive") if tables else None
        return SkewReport(moment, _summarize(tables, thresholds), rows)


def _summarize(tables: list[pa.Table], thresholds: Thresholds) -> list[FeatureSkew]:
    rows: dict[str, list[dict[str, Any]]] = {}
    for table in tables:
        for row in table.to_pylist():
            rows.setdefault(row["feature_ref"], []).append(row)
    features = []
    for reference in sorted(rows):
        found = rows[reference]
        mismatched = [row for row in found if row["is_mismatch"]]
        causes = {cause: 0 for cause in CAUSES}
        for row in mismatched:
            causes[row["cause"]] += 1
        differences = [row["abs_difference"] for row in mismatched if row["abs_difference"] is not None and not math.isnan(row["abs_difference"])]
        mismatched.sort(key=lambda row: (row["request_at"], row["row_index"]))
        features.append(
            FeatureSkew(
                feature=reference,
                compared=len(found),
                mismatches=len(mismatched),
                max_abs_difference=max(differences) if differences else None,
                causes=causes,
                examples=[_example(row) for row in _spread_examples(mismatched)],
                threshold=thresholds.of(reference),
            )
        )
    return features


def _spread_examples(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A few mismatches, one of each cause first."""
    chosen: list[dict[str, Any]] = []
    for cause in CAUSES:
        chosen += [row for row in rows if row["cause"] == cause][:1]
    chosen += [row for row in rows if row not in chosen]
    return chosen[:EXAMPLES]


def _example(row: dict[str, Any]) -> dict[str, Any]:
    def value(side: str) -> Any:
        number, text = row[f"{side}_number"], row[f"{side}_text"]
        return number if number is not None else text

    return {
        "request_id": row["request_id"],
        "request_at": row["request_at"].isoformat(),
        "row_index": row["row_index"],
        "entity_key": row["entity_key"],
        "status": row["status"],
        "served": row["value_number"] if row["value_number"] is not None else row["value_text"],
        "snapshot_as_of": row["snapshot_as_of"].isoformat(),
        "at_as_of": value("export"),
        "at_request": value("request"),
        "cause": row["cause"],
    }
