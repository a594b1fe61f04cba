"""The feature transforms (macros/transforms/): the DuckDB and the portable implementation
on DuckDB, and the postgres and spark dispatch on PostgreSQL and Spark."""

from __future__ import annotations

import math
import random
import statistics
from typing import Any

import pytest

from macro_engines import Engine, on_engines
from macro_harness import DAY, HOUR, MINUTE, START, mismatches
from macro_reference import point_in_time
from serving.errors import FeatureStoreError
from serving.rendering import Renderer

PURCHASE_COLUMNS = {"id": "bigint", "user_id": "bigint", "ts": "timestamp", "seq": "bigint", "amount": "double"}


def random_purchases(rng: random.Random, rows: int) -> list[dict[str, Any]]:
    """Purchases with many equal timestamps per user (seq breaks those ties) and NULL amounts."""
    return [
        {
            "id": i,
            "user_id": rng.randrange(1, 20),
            "ts": START + rng.randrange(30 * 24) * HOUR,
            "seq": i,
            "amount": None if rng.random() < 0.1 else round(rng.uniform(0, 100), 2),
        }
        for i in range(rows)
    ]


def by_user_in_order(rows: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    users: dict[int, list[dict[str, Any]]] = {}
    for row in sorted(rows, key=lambda row: (row["ts"], row["seq"])):
        users.setdefault(row["user_id"], []).append(row)
    return users


def select(engine: Engine, expressions: str) -> list[dict[str, Any]]:
    return engine.query(f"select {expressions} from {engine.relation('t')} order by id")


@on_engines(seeds=range(3), postgres=[0], spark=[0])
def test_rolling_rows_and_lag_value_follow_each_users_order(engine: Engine, seed: int) -> None:
    rows = random_purchases(random.Random(seed), 3000)
    engine.load("t", PURCHASE_COLUMNS, rows)
    macros = engine.macros
    rolling = lambda function: macros.call("rolling_rows", "amount", function, "user_id", "ts, seq", 3)  # noqa: E731
    actual = select(
        engine,
        f"id, {rolling('avg')} as avg_3, {rolling('max')} as max_3, {rolling('count')} as count_3, "
        f"{macros.call('lag_value', 'amount', 'user_id', 'ts, seq')} as lag_1, "
        f"{macros.call('lag_value', 'amount', 'user_id', 'ts, seq', 2)} as lag_2",
    )

    expected = {}
    for history in by_user_in_order(rows).values():
        for position, row in enumerate(history):
            last_3 = [r["amount"] for r in history[max(0, position - 2) : position + 1] if r["amount"] is not None]
            expected[row["id"]] = {
                "id": row["id"],
                "avg_3": sum(last_3) / len(last_3) if last_3 else None,
                "max_3": max(last_3) if last_3 else None,
                "count_3": len(last_3),
                "lag_1": history[position - 1]["amount"] if position >= 1 else None,
                "lag_2": history[position - 2]["amount"] if position >= 2 else None,
            }
    expected_rows = [expected[row["id"]] for row in rows]
    assert not mismatches(actual, expected_rows, {"avg_3": 1e-9}), mismatches(actual, expected_rows, {"avg_3": 1e-9})


def test_rolling_rows_refuses_fewer_than_one_row(macros: Renderer) -> None:
    with pytest.raises(FeatureStoreError, match="rolling_rows: rows is 0"):
        macros.call("rolling_rows", "amount", "avg", "user_id", "ts", 0)


@pytest.mark.parametrize("ttl", [None, "3 days"])
@on_engines(seeds=range(3), postgres=[0], spark=[0])
def test_value_days_ago_is_the_as_of_value_n_days_earlier(engine: Engine, seed: int, ttl: str | None) -> None:
    rng = random.Random(seed)
    rows = random_purchases(rng, 2000)
    # Some rows exactly 7 days after another of the same user: the older one is visible.
    rows += [{**row, "id": 10_000 + i, "ts": row["ts"] + 7 * DAY} for i, row in enumerate(rng.sample(rows, 200))]
    engine.load("t", PURCHASE_COLUMNS, rows)

    actual = engine.query(engine.macros.call("value_days_ago", engine.relation("t"), "user_id", "ts", ["amount"], 7, ttl))

    spine = [{**row, "lookup_at": row["ts"] - 7 * DAY} for row in rows]
    ttl_us = 3 * DAY if ttl else None
    reference = point_in_time(spine, "lookup_at", rows, ["user_id"], "ts", ["amount"], None, ttl_us)
    expected = [{"user_id": s["user_id"], "ts": s["ts"], "amount_7d_ago": r["amount"]} for s, r in zip(rows, reference)]
    assert [list(row) for row in actual[:1]] == [["user_id", "ts", "amount_7d_ago"]]
    assert not mismatches(actual, expected), mismatches(actual, expected)
    assert sum(row["amount_7d_ago"] is not None for row in expected) > 300


@on_engines()
def test_safe_ratio_is_null_for_zero_and_null_denominators(engine: Engine) -> None:
    engine.load("t", {"id": "bigint", "n": "bigint", "d": "double"}, [
        {"id": 0, "n": 1, "d": 4.0}, {"id": 1, "n": 1, "d": 0.0}, {"id": 2, "n": 1, "d": None},
        {"id": 3, "n": None, "d": 2.0}, {"id": 4, "n": 0, "d": -0.0}, {"id": 5, "n": 7, "d": -2.0},
    ])
    actual = select(engine, f"{engine.macros.call('safe_ratio', 'n', 'd')} as r")
    assert [row["r"] for row in actual] == [0.25, None, None, None, None, -3.5]


@on_engines()
def test_safe_ratio_of_integers_is_not_integer_division(engine: Engine) -> None:
    assert engine.query(f"select {engine.macros.call('safe_ratio', '1', '2')} as r") == [{"r": 0.5}]


@on_engines()
def test_log_transform_is_ln_one_plus_x_and_null_at_or_below_minus_one(engine: Engine) -> None:
    values = [-2.0, -1.0, -0.5, 0.0, math.e - 1, None, 1e9]
    engine.load("t", {"id": "bigint", "x": "double"}, [{"id": i, "x": x} for i, x in enumerate(values)])
    actual = [row["y"] for row in select(engine, f"{engine.macros.call('log_transform', 'x')} as y")]
    assert actual[:2] == [None, None] and actual[5] is None
    assert actual[2] == pytest.approx(math.log(0.5), rel=1e-12)
    assert actual[3] == 0.0
    assert actual[4] == pytest.approx(1.0, rel=1e-12)
    assert actual[6] == pytest.approx(math.log1p(1e9), rel=1e-12)


@on_engines()
def test_interaction_multiplies_as_double_and_propagates_null(engine: Engine) -> None:
    engine.load("t", {"id": "bigint", "a": "bigint", "b": "double"}, [
        {"id": 0, "a": 3, "b": 0.5}, {"id": 1, "a": None, "b": 2.0}, {"id": 2, "a": 4_000_000_000, "b": 4_000_000_000.0},
    ])
    assert [row["p"] for row in select(engine, f"{engine.macros.call('interaction', 'a', 'b')} as p")] == [1.5, None, 1.6e19]


# --- cyclical encoding ------------------------------------------------------------------


def encode(engine: Engine, literal: str) -> dict[str, float]:
    literal = literal.replace("timestamptz '", engine.instant_type + " '")
    macros = engine.macros
    columns = f"{macros.call('cyclical_encoding', literal, 'hour', 'h')}, {macros.call('cyclical_encoding', literal, 'weekday', 'd')}"
    return engine.query(f"select {columns}")[0]


KNOWN_TIMES = [
    ("timestamp '2026-01-04 00:00:00'", 0.0, 0),  # a Sunday at midnight
    ("timestamp '2026-01-04 06:00:00'", 6.0, 0),
    ("timestamp '2026-01-05 18:30:00'", 18.5, 1),  # Monday
    ("timestamp '2026-01-10 12:00:59'", 12.0, 6),  # Saturday; seconds are ignored
    # 01:30 on Sunday at +05:00 is 20:30 on Saturday in UTC.
    ("timestamptz '2026-01-04 01:30:00+05:00'", 20.5, 6),
]


# On Spark, the Sunday (its day-of-week counts from 1 = Sunday) and the offset.
@pytest.mark.parametrize(
    ("engine", "literal", "hour", "weekday"),
    [(engine, *known) for engine in ("duckdb", "default", "postgres") for known in KNOWN_TIMES]
    + [("spark", *KNOWN_TIMES[0]), ("spark", *KNOWN_TIMES[-1])],
    indirect=["engine"],
)
def test_cyclical_encoding_exact_values_at_known_times(engine: Engine, literal: str, hour: float, weekday: int) -> None:
    encoded = encode(engine, literal)
    assert encoded["h_sin"] == pytest.approx(math.sin(2 * math.pi * hour / 24), abs=1e-12)
    assert encoded["h_cos"] == pytest.approx(math.cos(2 * math.pi * hour / 24), abs=1e-12)
    assert encoded["d_sin"] == pytest.approx(math.sin(2 * math.pi * weekday / 7), abs=1e-12)
    assert encoded["d_cos"] == pytest.approx(math.cos(2 * math.pi * weekday / 7), abs=1e-12)


@on_engines()
def test_cyclical_encoding_puts_2359_next_to_midnight_and_saturday_next_to_sunday(engine: Engine) -> None:
    late = encode(engine, "timestamp '2026-01-03 23:59:00'")  # Saturday
    midnight = encode(engine, "timestamp '2026-01-04 00:00:00'")  # Sunday
    noon = encode(engine, "timestamp '2026-01-04 12:00:00'")
    distance = lambda a, b, p: math.dist((a[p + "_sin"], a[p + "_cos"]), (b[p + "_sin"], b[p + "_cos"]))  # noqa: E731
    assert distance(late, midnight, "h") == pytest.approx(2 * math.sin(math.pi / 1440), rel=1e-9)
    assert distance(noon, midnight, "h") == pytest.approx(2.0)
    assert distance(late, midnight, "d") == pytest.approx(2 * math.sin(math.pi / 7), rel=1e-9)


def test_cyclical_encoding_refuses_an_unknown_period(macros: Renderer) -> None:
    with pytest.raises(FeatureStoreError, match="period is 'month'"):
        macros.call("cyclical_encoding", "ts", "month", "m")


# --- scaling on the training period -------------------------------------------------------


@on_engines(seeds=range(3), postgres=[0], spark=[0])
def test_scaling_statistics_come_only_from_the_training_period(engine: Engine, seed: int) -> None:
    rng = random.Random(seed)
    start, end = START, START + 10 * DAY
    rows = [{"id": i, "ts": start + rng.randrange(10 * DAY), "x": rng.uniform(-5, 5)} for i in range(500)]
    # The bounds: the first instant counts, the end does not; extremes outside must not leak.
    rows += [
        {"id": 1000, "ts": start, "x": 50.0},
        {"id": 1001, "ts": start - 1, "x": 1e6},
        {"id": 1002, "ts": end, "x": -1e6},
        {"id": 1003, "ts": end + 30 * DAY, "x": 1e9},
        {"id": 1004, "ts": start + MINUTE, "x": None},
    ]
    engine.load("t", {"id": "bigint", "ts": "timestamp", "x": "double"}, rows)
    args = (engine.relation("t"), "x", "ts", "2026-01-01", "2026-01-11")
    actual = select(engine, f"id, {engine.macros.call('scale_zscore', 'x', *args)} as z, {engine.macros.call('scale_minmax', 'x', *args)} as m")

    period = [row["x"] for row in rows if start <= row["ts"] < end and row["x"] is not None]
    mean, stdev, low, high = statistics.fmean(period), statistics.stdev(period), min(period), max(period)
    expected = [
        {
            "id": row["id"],
            "z": None if row["x"] is None else (row["x"] - mean) / stdev,
            "m": None if row["x"] is None else (row["x"] - low) / (high - low),
        }
        for row in sorted(rows, key=lambda row: row["id"])
    ]
    assert high == 50.0 and low > -5
    assert not mismatches(actual, expected, {"z": 1e-9, "m": 1e-9}), mismatches(actual, expected, {"z": 1e-9, "m": 1e-9})


@on_engines()
def test_scaling_is_null_when_the_training_period_has_no_spread(engine: Engine) -> None:
    engine.load("t", {"id": "bigint", "ts": "timestamp", "x": "double"}, [
        {"id": 0, "ts": START, "x": 3.0}, {"id": 1, "ts": START + HOUR, "x": 3.0}, {"id": 2, "ts": START + 40 * DAY, "x": 9.0},
    ])
    args = (engine.relation("t"), "x", "ts", "2026-01-01", "2026-01-11")
    actual = select(engine, f"{engine.macros.call('scale_zscore', 'x', *args)} as z, {engine.macros.call('scale_minmax', 'x', *args)} as m")
    assert actual == [{"z": None, "m": None}] * 3
