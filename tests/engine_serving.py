"""Shared test support for the engine tests: what a FeatureStore serves from one engine's
build of the example project (historical features on a spine, materialized online values),
as plain columns, to compare with what the DuckDB build's FeatureStore serves.

tests/ is on sys.path (pyproject.toml), so `from engine_serving import ...` works anywhere."""

from __future__ import annotations

import datetime as dt
import math
import random
import struct
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from engine_tables import plain
from online.online_checks import drop_prefix
from serving.store import FeatureStore

REDIS_URL = "redis://127.0.0.1:6379/13"
# Inside the sample data's 40 days: some users' daily snapshot is within user_features'
# 1-day TTL there and some is not, so both statuses are compared.
AS_OF = dt.datetime(2026, 2, 8, 6, 0)
UNKNOWN_ID = 10**9
ONLINE_SAMPLE = 40
# Features computed from sums, averages or standard deviations of doubles over windows or
# the training period, and the ratios and scalings built on them. Each engine adds those
# terms in its own order (DuckDB's windowed aggregates, Postgres's frames, Spark's
# partitioned aggregation), which moves the last bit or two (seen: relative differences
# below 1e-15). These columns are compared within FLOAT_AGGREGATE_TOLERANCE, relative and
# absolute; every other column, floats included, must be identical bit for bit.
FLOAT_AGGREGATE_TOLERANCE = 1e-12
FLOAT_AGGREGATES = frozenset(
    {
        "user_purchase_windows__spend_7d",
        "user_purchase_windows__spend_30d",
        "user_purchase_windows__spend_90d",
        "user_purchase_windows__avg_amount_30d",
        "user_purchase_windows__stddev_amount_30d",
        "user_category_windows__category_spend_30d",
        "product_popularity_v1__product_revenue_7d",
        "product_popularity_v2__product_revenue_7d",
        "user_last_purchase__last_amount_zscore",
        "user_spend_trend__spend_7d_vs_90d_ratio",
        "user_spend_trend__spend_7d_7d_ago",
        "user_spend_trend__spend_30d_minmax",
    }
)
# Spark evaluates ln, sin and cos on the JVM (java.lang.StrictMath, fdlibm); DuckDB and
# PostgreSQL call the C library's libm. The two round some arguments differently in the
# last bit (seen on Spark: 13 of 613 spine rows for ln, 3 for sin), so on Spark these
# columns, and the product built on them, get FLOAT_AGGREGATE_TOLERANCE too.
JVM_MATH = frozenset(
    {
        "user_last_purchase__last_amount_log",
        "user_last_purchase__hour_of_day_sin",
        "user_last_purchase__hour_of_day_cos",
        "user_last_purchase__day_of_week_sin",
        "user_last_purchase__day_of_week_cos",
        "user_last_purchase__evening_spend_interaction",
    }
)


@dataclass(frozen=True)
class ParityInputs:
    """What every engine is asked: one spine for get_historical_features, and per online
    view the entity rows read back after materialize."""

    spine: pd.DataFrame
    features: list[str]
    online_rows: dict[str, list[dict[str, Any]]]


@dataclass(frozen=True)
class Served:
    """What one engine's FeatureStore answered, as plain columns."""

    historical: dict[str, list[Any]]
    historical_dtypes: dict[str, str]
    online: dict[str, dict[str, list[Any]]]


def parity_spine(project_dir: Path) -> pd.DataFrame:
    """The sample label spine (a few hundred rows, a few duplicates) with a product and its
    category per row, so every view's keys are present; plus unknown entities and more
    duplicate rows."""
    sample = project_dir / "data" / "sample"
    spine = pd.read_parquet(sample / "label_spine.parquet", columns=["user_id", "prediction_time"])
    spine = spine.rename(columns={"prediction_time": "event_timestamp"})
    products = pd.read_parquet(sample / "products.parquet", columns=["product_id", "category"])
    chosen = products.iloc[(spine["user_id"].to_numpy() * 7919) % len(products)].reset_index(drop=True)
    spine = pd.concat([spine.reset_index(drop=True), chosen], axis=1)
    unknown = spine.iloc[:6].copy()
    unknown.loc[unknown.index[:2], "user_id"] = UNKNOWN_ID
    unknown.loc[unknown.index[2:4], "product_id"] = UNKNOWN_ID
    unknown.loc[unknown.index[4:], "category"] = "no-such-category"
    duplicates = spine.iloc[[3, 3, 10, 200]]
    return pd.concat([spine, unknown, duplicates], ignore_index=True)


def parity_inputs(reference: FeatureStore) -> ParityInputs:
    """The questions, drawn from the DuckDB build: its spine, every feature of every view,
    and a seeded sample of each online view's entities at AS_OF plus one unknown entity."""
    views = reference.list_feature_views()
    online_rows = {}
    for view in views:
        if not view.online:
            continue
        snapshot = reference.offline.snapshot(view, AS_OF).select(list(view.entity)).to_pylist()
        rows = random.Random(view.name).sample(snapshot, min(ONLINE_SAMPLE, len(snapshot)))
        unknown = {key: ("no-such-category" if isinstance(rows[0][key], str) else UNKNOWN_ID) for key in view.entity}
        online_rows[view.name] = [*rows, unknown]
    return ParityInputs(parity_spine(reference.project_dir), [f"{view.name}:*" for view in views], online_rows)


def serve(store: FeatureStore, inputs: ParityInputs) -> Served:
    """Asks `store` everything: historical features on the spine, then materialize at AS_OF
    under a key prefix of its own (deleted afterwards) and read each online view back."""
    historical = store.get_historical_features(inputs.spine, inputs.features, full_feature_names=True)
    online = {}
    try:
        store.materialize(as_of=AS_OF, progress=False)
        for view_name, rows in inputs.online_rows.items():
            features = [f"{view_name}:{name}" for name in store.get_feature_view(view_name).feature_names]
            online[view_name] = store.get_online_features(features, rows, full_feature_names=True).to_dict(include_metadata=True)
    finally:
        drop_prefix(store.redis_url, store.redis_prefix)
    return Served(
        {column: [plain_value(v) for v in historical[column]] for column in historical.columns},
        {column: str(dtype) for column, dtype in historical.dtypes.items()},
        {view: {column: [plain_value(v) for v in values] for column, values in columns.items()} for view, columns in online.items()},
    )


def serving_store(project_dir: Path, target: str | None) -> FeatureStore:
    return FeatureStore(project_dir, redis_url=REDIS_URL, redis_prefix=f"fs-parity-{uuid.uuid4().hex[:12]}", target=target)


def plain_value(value: Any) -> Any:
    """NULL, NA and NaN as None (pandas cannot tell them apart); times as UTC epoch
    microseconds; numpy scalars as Python ones."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return plain(value)


def column_differences(expected: dict[str, list[Any]], actual: dict[str, list[Any]], tolerances: dict[str, float]) -> list[str]:
    """One line per column that differs: the same columns in the same order, every value
    equal (floats bit for bit), except columns named in `tolerances`, whose floats may
    differ by that relative (and absolute) tolerance."""
    if list(actual) != list(expected):
        return [f"columns {list(actual)}, expected {list(expected)}"]
    found = []
    for column, wanted in expected.items():
        got = actual[column]
        if len(got) != len(wanted):
            found.append(f"{column}: {len(got)} values, expected {len(wanted)}")
            continue
        tolerance = tolerances.get(column)
        wrong = [index for index, (a, b) in enumerate(zip(wanted, got)) if not _same(a, b, tolerance)]
        if wrong:
            first = wrong[0]
            found.append(f"{column}: {len(wrong)} of {len(wanted)} differ, first [{first}] {got[first]!r}, expected {wanted[first]!r}")
    return found


def _same(expected: Any, actual: Any, tolerance: float | None) -> bool:
    if isinstance(expected, float) and isinstance(actual, float):
        if tolerance is not None:
            return math.isclose(expected, actual, rel_tol=tolerance, abs_tol=tolerance)
        return struct.pack(">d", expected) == struct.pack(">d", actual)
    return type(expected) is type(actual) and expected == actual


ONLINE_VIEWS = ("user_features", "user_purchase_windows", "user_category_windows", "product_popularity.v1", "product_popularity.v2",
                "user_last_purchase", "user_spend_trend")


def assert_historical_equal(expected: Served, actual: Served, spine_rows: int, tolerances: dict[str, float]) -> None:
    """Same columns, dtypes and values; and the reference has real matches and misses."""
    assert len(expected.historical["user_id"]) == spine_rows > 300
    matched = [v for v in expected.historical["user_features__total_purchases"] if v is not None]
    assert 0 < len(matched) < spine_rows
    assert actual.historical_dtypes == expected.historical_dtypes
    differences = column_differences(expected.historical, actual.historical, tolerances)
    assert not differences, "\n".join(differences)


def assert_online_equal(expected: Served, actual: Served, view: str, tolerances: dict[str, float]) -> None:
    """Same values, statuses and event timestamps for the sampled entities of `view`; the
    sample holds found entities and one unknown one."""
    statuses = [s for column, values in expected.online[view].items() if column.endswith("__status") for s in values]
    assert "present" in statuses and "missing" in statuses
    differences = column_differences(expected.online[view], actual.online[view], tolerances)
    assert not differences, "\n".join(differences)
