"""Encodings, time parts, cumulative and population-relative aggregates and the numeric
transforms against brute-force references on random data, with each edge case a named
test: the DuckDB and the portable macros on DuckDB, and the postgres and spark dispatch
on PostgreSQL and Spark (a subset of the seeds and zones on Spark)."""

from __future__ import annotations

import datetime
import math
import random
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from macro_engines import Engine, on_engines
from macro_harness import DAY, HOUR, MINUTE, START, mismatches, random_spine
from macro_reference import aggregate
from serving.errors import FeatureStoreError
from serving.rendering import Renderer

PERIOD = ("2026-01-01", "2026-01-11")
PERIOD_END = START + 10 * DAY
CATEGORY_COLUMNS = {"id": "bigint", "ts": "timestamp", "c": "varchar"}


def categories_rows(rng: random.Random, rows: int) -> list[dict[str, Any]]:
    """Categories a-e in the training period; f and g only after it; some NULLs."""
    out = []
    for i in range(rows):
        ts = START + rng.randrange(20 * DAY)
        pool = "abcde" if ts < PERIOD_END else "abcdefg"
        out.append({"id": i, "ts": ts, "c": None if rng.random() < 0.05 else rng.choice(pool)})
    return out


def encode(engine: Engine, categories: list[str] | None, one_hot: list[str]) -> list[dict[str, Any]]:
    args = (engine.relation("t"), "c", "ts", *PERIOD)
    return engine.query(f"select id, {engine.macros.call('ordinal_encoding', 'c', *args, categories)} as code, "
                        f"{engine.macros.call('one_hot_encoding', 'c', *args, one_hot, 'c')} from {engine.relation('t')} order by id")


@on_engines(seeds=range(3), spark=[0])
def test_encodings_take_their_vocabulary_from_the_training_period_only(engine: Engine, seed: int) -> None:
    rows = categories_rows(random.Random(seed), 800)
    engine.load("t", CATEGORY_COLUMNS, rows)
    declared = ["e", "b", "f", "a"]
    actual = encode(engine, None, declared)

    vocabulary = sorted({row["c"] for row in rows if START <= row["ts"] < PERIOD_END and row["c"] is not None})
    expected = []
    for row in sorted(rows, key=lambda row: row["id"]):
        known = row["c"] in vocabulary
        hot = {f"c_{category}": int(row["c"] == category and known) for category in declared}
        expected.append({"id": row["id"], "code": vocabulary.index(row["c"]) + 1 if known else 0, **hot, "c__other": int(not any(hot.values()))})
    assert vocabulary == list("abcde")
    assert not mismatches(actual, expected), mismatches(actual, expected)


@on_engines()
def test_an_unseen_category_gets_the_other_bucket_and_shifts_no_column(engine: Engine) -> None:
    rows = [{"id": 0, "ts": START, "c": "b"}, {"id": 1, "ts": START + DAY, "c": "a"}, {"id": 2, "ts": PERIOD_END, "c": "new"}, {"id": 3, "ts": PERIOD_END + DAY, "c": "b"}]
    engine.load("t", CATEGORY_COLUMNS, rows)
    actual = encode(engine, None, ["a", "b", "new"])
    assert actual == [
        {"id": 0, "code": 2, "c_a": 0, "c_b": 1, "c_new": 0, "c__other": 0},
        {"id": 1, "code": 1, "c_a": 1, "c_b": 0, "c_new": 0, "c__other": 0},
        {"id": 2, "code": 0, "c_a": 0, "c_b": 0, "c_new": 0, "c__other": 1},
        {"id": 3, "code": 2, "c_a": 0, "c_b": 1, "c_new": 0, "c__other": 0},
    ]


@on_engines(spark=False)
def test_a_null_category_gets_the_other_bucket(engine: Engine) -> None:
    engine.load("t", CATEGORY_COLUMNS, [{"id": 0, "ts": START, "c": None}, {"id": 1, "ts": START, "c": "a"}])
    assert encode(engine, None, ["a"]) == [{"id": 0, "code": 0, "c_a": 0, "c__other": 1}, {"id": 1, "code": 1, "c_a": 1, "c__other": 0}]


@on_engines()
def test_ordinal_codes_follow_declared_categories_and_skip_those_not_in_training(engine: Engine) -> None:
    rows = [{"id": i, "ts": START + i * HOUR, "c": c} for i, c in enumerate(["low", "high", "mid", "o'brien"])]
    rows.append({"id": 9, "ts": PERIOD_END, "c": "extreme"})
    engine.load("t", CATEGORY_COLUMNS, rows)
    actual = encode(engine, ["low", "mid", "extreme", "high", "o'brien"], ["o'brien"])
    assert [row["code"] for row in actual] == [1, 4, 2, 5, 0]
    assert [row["c_o'brien"] for row in actual] == [0, 0, 0, 1, 0]


def test_encodings_refuse_empty_categories(macros: Renderer) -> None:
    with pytest.raises(FeatureStoreError, match="one_hot_encoding: categories is \\[\\]"):
        macros.call("one_hot_encoding", "c", "t", "c", "ts", *PERIOD, [], "c")


# --- time parts ------------------------------------------------------------------------------


def parts_reference(micros: int, zone: str) -> dict[str, int]:
    local = datetime.datetime.fromtimestamp(micros / 1e6, ZoneInfo(zone))
    weekday = (local.weekday() + 1) % 7  # Python: Monday = 0; ours: Sunday = 0
    return {"hour": local.hour, "day_of_week": weekday, "month": local.month, "is_weekend": int(weekday in (0, 6))}


def parts(engine: Engine, zone: str) -> list[dict[str, Any]]:
    return engine.query(f"select id, {engine.macros.call('time_parts', 'ts', 'p', zone)} from {engine.relation('t')} order by id")


ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"]


# On Spark, a zone with daylight saving time and one with a half-hour offset.
@pytest.mark.parametrize(
    ("engine", "zone"),
    [(engine, zone) for engine in ("duckdb", "default", "postgres") for zone in ZONES] + [("spark", "Europe/Berlin"), ("spark", "Asia/Kolkata")],
    indirect=["engine"],
)
def test_time_parts_are_the_local_wall_clock_of_each_instant(engine: Engine, zone: str) -> None:
    rng = random.Random(zone)
    rows = [{"id": i, "ts": START + rng.randrange(400 * DAY) // MINUTE * MINUTE} for i in range(1500)]
    engine.load("t", {"id": "bigint", "ts": "timestamp"}, rows)
    expected = [{"id": row["id"], **{f"p_{k}": v for k, v in parts_reference(row["ts"], zone).items()}} for row in rows]
    actual = parts(engine, zone)
    assert not mismatches(actual, expected), mismatches(actual, expected)


@on_engines()
def test_dst_transition_repeated_hour_maps_from_two_instants_and_skipped_hour_never_appears(engine: Engine) -> None:
    # Berlin: 2026-03-29 01:00 UTC jumps 02:00 -> 03:00 local; 2026-10-25 01:00 UTC falls 03:00 -> 02:00.
    spring = int(datetime.datetime(2026, 3, 29, 0, 30, tzinfo=datetime.timezone.utc).timestamp()) * 1_000_000
    autumn = int(datetime.datetime(2026, 10, 25, 0, 30, tzinfo=datetime.timezone.utc).timestamp()) * 1_000_000
    rows = [{"id": i, "ts": spring + i * 30 * MINUTE} for i in range(4)] + [{"id": 10 + i, "ts": autumn + i * 30 * MINUTE} for i in range(4)]
    engine.load("t", {"id": "bigint", "ts": "timestamp"}, rows)
    hours = [row["p_hour"] for row in parts(engine, "Europe/Berlin")]
    assert hours[:4] == [1, 3, 3, 4]  # 02:xx is skipped
    assert hours[4:] == [2, 2, 2, 3]  # 02:30 CEST, 02:00 CET and 02:30 CET: the repeated hour, from two instants


@on_engines()
def test_time_parts_read_offsets_as_instants(engine: Engine) -> None:
    # Saturday 23:30 in New York is Sunday 04:30 UTC.
    literal = f"{engine.instant_type} '2026-01-04 04:30:00+00:00'"
    row = engine.query("select " + engine.macros.call("time_parts", literal, "p", "America/New_York"))[0]
    assert row == {"p_hour": 23, "p_day_of_week": 6, "p_month": 1, "p_is_weekend": 1}


@pytest.mark.parametrize("zone", ["Europe/Berlin'; drop table t; --", "", None, "Europe Berlin"])
def test_time_parts_refuse_a_malformed_zone(macros: Renderer, zone: Any) -> None:
    with pytest.raises(FeatureStoreError, match="time zone is .*expected an IANA name"):
        macros.call("time_parts", "ts", "p", zone)


# --- cumulative aggregates -----------------------------------------------------------------------

EVENT_COLUMNS = {"user_id": "bigint", "shop": "varchar", "ts": "timestamp", "amount": "double"}
SPINE_COLUMNS = {"id": "bigint", "user_id": "bigint", "shop": "varchar", "at": "timestamp"}
CUMULATIVE = [
    {"name": "n", "function": "count"},
    {"name": "n_amount", "function": "count", "column": "amount"},
    {"name": "total", "function": "sum", "column": "amount"},
    {"name": "mean", "function": "avg", "column": "amount"},
    {"name": "low", "function": "min", "column": "amount"},
    {"name": "high", "function": "max", "column": "amount"},
]
NAMES = [a["name"] for a in CUMULATIVE]
TOLERANCE = {"total": 1e-9, "mean": 1e-9}


def random_events(rng: random.Random, rows: int) -> list[dict[str, Any]]:
    """Hourly grid over 5 days, so several events of one user often share a time."""
    return [
        {
            "user_id": None if rng.random() < 0.01 else rng.randrange(1, 25),
            "shop": rng.choice(["1", "2"]),
            "ts": None if rng.random() < 0.01 else START + rng.randrange(5 * 24) * HOUR,
            "amount": None if rng.random() < 0.1 else round(rng.uniform(-50, 500), 2),
        }
        for _ in range(rows)
    ]


def lifetime(events: list[dict[str, Any]], keys: list[str], key: tuple, at: int) -> list[Any]:
    history = [e for e in events if e["ts"] is not None and None not in (e[k] for k in keys) and tuple(e[k] for k in keys) == key and e["ts"] <= at]
    return [aggregate(a["function"], [1 if a.get("column") is None else e[a["column"]] for e in history]) for a in CUMULATIVE]


@pytest.mark.parametrize("keys", [["user_id"], ["user_id", "shop"]], ids=["one_key", "composite_key"])
@on_engines(seeds=range(2), spark=[0])
def test_cumulative_aggregates_at_events_cover_everything_up_to_and_including_each_time(
    engine: Engine, seed: int, keys: list[str]
) -> None:
    events = random_events(random.Random(seed), 700)
    engine.load("events", EVENT_COLUMNS, events)
    actual = engine.query(engine.macros.call("cumulative_aggregates", engine.relation("events"), keys, "ts", CUMULATIVE))

    points = sorted({(*(e[k] for k in keys), e["ts"]) for e in events if e["ts"] is not None and None not in (e[k] for k in keys)})
    expected = [dict(zip([*keys, "ts", *NAMES], (*point, *lifetime(events, keys, point[:-1], point[-1])))) for point in points]
    assert not mismatches(actual, expected, TOLERANCE), mismatches(actual, expected, TOLERANCE)


@on_engines(seeds=range(2), spark=[0])
def test_cumulative_aggregates_at_a_spine_match_the_reference(engine: Engine, seed: int) -> None:
    rng = random.Random(50 + seed)
    events = random_events(rng, 600)
    spine = random_spine(rng, 900, 27, ["1", "2"], lambda: START + rng.randrange(-DAY, 7 * DAY) // HOUR * HOUR - rng.choice([0, 0, 1]))
    engine.load("events", EVENT_COLUMNS, events)
    engine.load("spine", SPINE_COLUMNS, spine)
    actual = engine.query(engine.macros.call("cumulative_aggregates", engine.relation("events"), "user_id", "ts", CUMULATIVE, "spine", engine.relation("spine"), "at", ["id"]))

    expected = []
    for row in spine:
        if row["user_id"] is None or row["at"] is None:
            values = [None] * len(NAMES)
        else:
            values = lifetime(events, ["user_id"], (row["user_id"],), row["at"])
        expected.append({"id": row["id"], **dict(zip(NAMES, values))})
    assert not mismatches(actual, expected, TOLERANCE), mismatches(actual, expected, TOLERANCE)


@on_engines()
def test_cumulative_aggregates_with_an_empty_history_give_zero_counts_and_null_averages(engine: Engine) -> None:
    engine.load("events", EVENT_COLUMNS, [{"user_id": 1, "shop": "1", "ts": START, "amount": 4.0}])
    engine.load("spine", SPINE_COLUMNS, [{"id": 0, "user_id": 1, "shop": "1", "at": START - 1}, {"id": 1, "user_id": 2, "shop": "1", "at": START},
                                      {"id": 2, "user_id": 1, "shop": "1", "at": START}])
    actual = engine.query(engine.macros.call("cumulative_aggregates", engine.relation("events"), "user_id", "ts", CUMULATIVE, "spine", engine.relation("spine"), "at", ["id"]))
    empty = {"n": 0, "n_amount": 0, "total": 0.0, "mean": None, "low": None, "high": None}
    assert actual == [{"id": 0, **empty}, {"id": 1, **empty}, {"id": 2, "n": 1, "n_amount": 1, "total": 4.0, "mean": 4.0, "low": 4.0, "high": 4.0}]


def test_cumulative_aggregates_refuse_a_windowed_function(macros: Renderer) -> None:
    with pytest.raises(FeatureStoreError, match="function is 'stddev'"):
        macros.call("cumulative_aggregates", "e", "user_id", "ts", [{"name": "s", "function": "stddev", "column": "amount"}])


# --- population-relative ------------------------------------------------------------------------

RELATIVE_COLUMNS = {"user_id": "bigint", "ts": "timestamp", "x": "double"}


def population_reference(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (user, time): the smallest value at that time (NULL last); the population is
    every user's latest such value at or before the time, NULLs left out."""
    chosen: dict[tuple, Any] = {}
    for row in rows:
        if row["user_id"] is None or row["ts"] is None:
            continue
        key = (row["user_id"], row["ts"])
        if key not in chosen or (row["x"] is not None and (chosen[key] is None or row["x"] < chosen[key])):
            chosen[key] = row["x"]
    out = []
    for (user, ts), value in sorted(chosen.items()):
        latest = {}
        for (other, other_ts), other_value in sorted(chosen.items(), key=lambda item: item[0][1]):
            if other_ts <= ts:
                latest[other] = other_value
        present = [v for v in latest.values() if v is not None]
        mean = math.fsum(present) / len(present) if present else None
        out.append({
            "user_id": user, "ts": ts, "x": value, "x_population_avg": mean, "x_population_size": len(present),
            "x_minus_population": None if value is None or mean is None else value - mean,
            "x_vs_population": None if value is None or not mean else value / mean,
        })
    return out


RELATIVE_TOLERANCE = {"x_population_avg": 1e-9, "x_minus_population": 1e-6, "x_vs_population": 1e-9}


@on_engines(seeds=range(3), spark=[0])
def test_population_relative_uses_the_population_as_of_each_time(engine: Engine, seed: int) -> None:
    rng = random.Random(seed)
    rows = [
        {"user_id": None if rng.random() < 0.01 else rng.randrange(1, 30), "ts": START + rng.randrange(200) * HOUR,
         "x": None if rng.random() < 0.1 else round(rng.uniform(1, 100), 2)}
        for _ in range(600)
    ]
    engine.load("t", RELATIVE_COLUMNS, rows)
    actual = engine.query(engine.macros.call("population_relative", engine.relation("t"), "user_id", "ts", "x"))
    expected = population_reference(rows)
    assert not mismatches(actual, expected, RELATIVE_TOLERANCE), mismatches(actual, expected, RELATIVE_TOLERANCE)


@on_engines(spark=False)
def test_population_of_one_is_the_entity_itself(engine: Engine) -> None:
    engine.load("t", RELATIVE_COLUMNS, [{"user_id": 7, "ts": START, "x": 4.0}, {"user_id": 7, "ts": START + HOUR, "x": 10.0}])
    actual = engine.query(engine.macros.call("population_relative", engine.relation("t"), "user_id", "ts", "x", "spend"))
    assert actual == [
        {"user_id": 7, "ts": START, "spend": 4.0, "spend_population_avg": 4.0, "spend_population_size": 1, "spend_minus_population": 0.0, "spend_vs_population": 1.0},
        {"user_id": 7, "ts": START + HOUR, "spend": 10.0, "spend_population_avg": 10.0, "spend_population_size": 1, "spend_minus_population": 0.0, "spend_vs_population": 1.0},
    ]


@on_engines()
def test_population_never_sees_later_rows(engine: Engine) -> None:
    rows = [{"user_id": 1, "ts": START, "x": 10.0}, {"user_id": 2, "ts": START + HOUR, "x": 30.0}, {"user_id": 3, "ts": START + 2 * HOUR, "x": 1000.0},
            {"user_id": 2, "ts": START + 3 * HOUR, "x": None}]
    engine.load("t", RELATIVE_COLUMNS, rows)
    actual = engine.query(engine.macros.call("population_relative", engine.relation("t"), "user_id", "ts", "x"))
    assert [(row["user_id"], row["x_population_avg"], row["x_population_size"]) for row in actual] == [
        (1, 10.0, 1), (2, 20.0, 2), (2, 505.0, 2), (3, 1040.0 / 3, 3)]


# --- numeric transforms ---------------------------------------------------------------------------


@on_engines()
def test_sqrt_clip_and_bucketize_match_python_on_random_values(engine: Engine) -> None:
    rng = random.Random(3)
    values = [None if rng.random() < 0.05 else rng.choice([rng.uniform(-100, 100), float(rng.randrange(-3, 4) * 10)]) for _ in range(2000)]
    engine.load("t", {"id": "bigint", "x": "double"}, [{"id": i, "x": x} for i, x in enumerate(values)])
    boundaries = [-10, 0, 10.5, 20]
    actual = engine.query(f"select id, {engine.macros.call('sqrt_transform', 'x')} as s, {engine.macros.call('clip', 'x', -10, 20)} as c, "
                       f"{engine.macros.call('clip', 'x', None, 0)} as c_upper, {engine.macros.call('bucketize', 'x', boundaries)} as b from {engine.relation('t')} order by id")
    expected = [
        {"id": i, "s": None if x is None or x < 0 else math.sqrt(x), "c": None if x is None else min(max(x, -10), 20),
         "c_upper": None if x is None else min(x, 0), "b": None if x is None else sum(x >= bound for bound in boundaries)}
        for i, x in enumerate(values)
    ]
    assert not mismatches(actual, expected, {"s": 1e-12}), mismatches(actual, expected, {"s": 1e-12})


@on_engines()
def test_bucketize_puts_a_value_on_a_boundary_in_the_bucket_above(engine: Engine) -> None:
    row = engine.query(f"select {engine.macros.call('bucketize', '0', [0, 1])} as a, {engine.macros.call('bucketize', '-1e-300', [0, 1])} as b, {engine.macros.call('bucketize', '1', [0, 1])} as c")[0]
    assert row == {"a": 1, "b": 0, "c": 2}


@pytest.mark.parametrize(("macro", "args", "message"), [
    ("bucketize", ("x", [1, 1]), "not strictly increasing"),
    ("bucketize", ("x", []), "expected a non-empty list"),
    ("clip", ("x", None, None), "at least one bound"),
    ("clip", ("x", 5, 1), "lower 5 is above upper 1"),
])
def test_numeric_transforms_refuse_bad_arguments(macros: Renderer, macro: str, args: tuple, message: str) -> None:
    with pytest.raises(FeatureStoreError, match=message):
        macros.call(macro, *args)
