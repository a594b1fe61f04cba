"""window_aggregates at 'events', 'change_points' and 'spine' against the brute-force
reference, and the property that makes change-point tables joinable: an as-of join of
one at any time equals the window evaluated at that time. The DuckDB and the portable
implementation run on DuckDB, the postgres and spark dispatch on PostgreSQL and Spark
(a subset of the random seeds)."""

from __future__ import annotations

import random
from typing import Any, Callable

import pytest

from macro_engines import Engine, on_engines
from macro_harness import DAY, HOUR, MINUTE, START, mismatches, random_spine
from macro_reference import windows_at_points, windows_at_spine

EVENT_COLUMNS = {"user_id": "bigint", "shop": "varchar", "ts": "timestamp", "amount": "double", "category": "varchar"}
SPINE_COLUMNS = {"id": "bigint", "user_id": "bigint", "shop": "varchar", "at": "timestamp"}
WINDOW_US = {"30 minutes": 30 * MINUTE, "2 hours": 2 * HOUR, "1 day": DAY}
AGGREGATIONS = [
    {"name": "events_30m", "function": "count", "window": "30 minutes"},
    {"name": "amounts_2h", "function": "count", "column": "amount", "window": "2 hours"},
    {"name": "spend_1d", "function": "sum", "column": "amount", "window": "1 day"},
    {"name": "avg_2h", "function": "avg", "column": "amount", "window": "2 hours"},
    {"name": "min_1d", "function": "min", "column": "amount", "window": "1 day"},
    {"name": "max_30m", "function": "max", "column": "amount", "window": "30 minutes"},
    {"name": "stddev_1d", "function": "stddev", "column": "amount", "window": "1 day"},
    {"name": "categories_2h", "function": "count_distinct", "column": "category", "window": "2 hours"},
]
# Sums, averages and deviations depend on the order the engine adds in (Spark's differs
# between partitions and runs): equal to 1e-9 relative, every other column exactly.
FLOAT_TOLERANCE = {"spend_1d": 1e-9, "avg_2h": 1e-9, "stddev_1d": 1e-9}
REFERENCE_AGGREGATIONS = [{**a, "window_us": WINDOW_US[a["window"]]} for a in AGGREGATIONS]
NAMES = [a["name"] for a in AGGREGATIONS]
SHOPS = ["1", "12"]


def windows_view(engine: Engine) -> dict[str, Any]:
    return {
        "name": "windows", "relation": engine.relation("windows"), "entity": ["user_id"], "timestamp_column": "ts",
        "created_timestamp_column": None, "ttl": None, "features": [{"name": name} for name in NAMES],
    }


def random_events(rng: random.Random, users: int, rows: int) -> list[dict[str, Any]]:
    """Events on a 10-minute grid over 3 days (so an event often sits exactly on another's
    window bound), a few off the grid by microseconds, and some NULLs everywhere."""
    events = []
    for _ in range(rows):
        ts = START + rng.randrange(3 * 24 * 6) * 10 * MINUTE + (rng.randrange(-2, 3) if rng.random() < 0.1 else 0)
        events.append(
            {
                "user_id": None if rng.random() < 0.01 else rng.randrange(1, users + 1),
                "shop": rng.choice(SHOPS),
                "ts": None if rng.random() < 0.01 else ts,
                "amount": None if rng.random() < 0.1 else round(rng.uniform(0, 500), 2),
                "category": None if rng.random() < 0.1 else rng.choice("abcd"),
            }
        )
    return events


def spine_times(rng: random.Random, events: list[dict[str, Any]]) -> Callable[[], int]:
    """Times at events, exactly one window after them (the event no longer counts) and a
    microsecond before that, random ones, and long after the last event."""
    times = [event["ts"] for event in events if event["ts"] is not None]

    def pick() -> int:
        kind = rng.random()
        base = rng.choice(times)
        if kind < 0.25:
            return base
        if kind < 0.5:
            return base + rng.choice(list(WINDOW_US.values())) - rng.choice([0, 1])
        if kind < 0.6:
            return START + rng.randrange(20, 40) * DAY
        return START + rng.randrange(-DAY, 4 * DAY)

    return pick


def render(engine: Engine, keys: list[str], at: str, aggregations: list[dict[str, Any]] = AGGREGATIONS) -> str:
    spine = engine.relation("spine") if at == "spine" else None
    return engine.macros.call(
        "window_aggregates", engine.relation("events"), keys, "ts", aggregations, at, spine, "at" if spine else None, ["id"] if spine else None
    )


KEYS = {"one_key": ["user_id"], "composite_key": ["user_id", "shop"]}


def keyed_cases(seeds: range, postgres_seeds: list[int], spark_keys: str) -> pytest.MarkDecorator:
    """Every seed with one and with two keys on DuckDB; a subset on PostgreSQL; on Spark
    seed 0 with `spark_keys` only (CI-sized: each Spark query costs seconds)."""
    runs = [(engine, seed, name) for engine in ("duckdb", "default") for seed in seeds for name in KEYS]
    runs += [("postgres", seed, name) for seed in postgres_seeds for name in KEYS] + [("spark", 0, spark_keys)]
    cases = [pytest.param(engine, seed, KEYS[name], id=f"{engine}-{seed}-{name}") for engine, seed, name in runs]
    return pytest.mark.parametrize(("engine", "seed", "keys"), cases, indirect=["engine"])


def point_rows(keys: list[str], reference: list[tuple]) -> list[dict[str, Any]]:
    return [dict(zip([*keys, "ts", *NAMES], row)) for row in reference]


@keyed_cases(range(3), postgres_seeds=[0], spark_keys="one_key")
def test_events_and_change_points_match_the_reference(engine: Engine, seed: int, keys: list[str]) -> None:
    rng = random.Random(seed)
    events = random_events(rng, users=30, rows=1200)
    engine.load("events", EVENT_COLUMNS, events)

    for at, change_points in (("events", False), ("change_points", True)):
        actual = engine.query(render(engine, keys, at))
        expected = point_rows(keys, windows_at_points(events, keys, "ts", REFERENCE_AGGREGATIONS, change_points))
        assert not mismatches(actual, expected, FLOAT_TOLERANCE), (at, mismatches(actual, expected, FLOAT_TOLERANCE))


@keyed_cases(range(4), postgres_seeds=[0, 1], spark_keys="composite_key")
def test_spine_evaluation_matches_the_reference(engine: Engine, seed: int, keys: list[str]) -> None:
    rng = random.Random(100 + seed)
    events = random_events(rng, users=30, rows=1500)
    spine = random_spine(rng, 2500, 33, SHOPS, spine_times(rng, events))
    engine.load("events", EVENT_COLUMNS, events)
    engine.load("spine", SPINE_COLUMNS, spine)

    actual = engine.query(render(engine, keys, "spine"))

    reference = windows_at_spine(events, keys, "ts", REFERENCE_AGGREGATIONS, spine, "at")
    expected = [{"id": s["id"], **dict(zip(NAMES, values))} for s, values in zip(spine, reference)]
    assert not mismatches(actual, expected, FLOAT_TOLERANCE), mismatches(actual, expected, FLOAT_TOLERANCE)


@on_engines(postgres=False, spark=False)
def test_spine_evaluation_matches_the_reference_across_the_epoch(engine: Engine) -> None:
    """Times before and after 1970-01-01: the DuckDB plan cuts time into buckets by
    integer division of epoch microseconds, which truncates toward zero there."""
    rng = random.Random(300)
    generated = random_events(rng, users=20, rows=1500)
    spine = random_spine(rng, 2500, 22, SHOPS, spine_times(rng, generated))
    shift = START + DAY + 12 * HOUR

    def shifted(rows: list[dict[str, Any]], column: str) -> list[dict[str, Any]]:
        return [{**row, column: None if row[column] is None else row[column] - shift} for row in rows]

    events, spine = shifted(generated, "ts"), shifted(spine, "at")
    engine.load("events", EVENT_COLUMNS, events)
    engine.load("spine", SPINE_COLUMNS, spine)

    actual = engine.query(render(engine, ["user_id"], "spine"))

    reference = windows_at_spine(events, ["user_id"], "ts", REFERENCE_AGGREGATIONS, spine, "at")
    expected = [{"id": s["id"], **dict(zip(NAMES, values))} for s, values in zip(spine, reference)]
    assert sum(1 for s in spine if s["at"] is not None and s["at"] < 0) > 500
    assert not mismatches(actual, expected, FLOAT_TOLERANCE), mismatches(actual, expected, FLOAT_TOLERANCE)


@on_engines(seeds=range(4), postgres=[0], spark=[0])
def test_as_of_join_of_change_points_equals_spine_evaluation_once_the_entity_has_history(engine: Engine, seed: int) -> None:
    rng = random.Random(200 + seed)
    events = [event for event in random_events(rng, users=20, rows=1000) if event["user_id"] is not None and event["ts"] is not None]
    spine = [row for row in random_spine(rng, 2000, 23, SHOPS, spine_times(rng, events)) if row["user_id"] is not None and row["at"] is not None]
    first_event = {}
    for event in events:
        first_event[event["user_id"]] = min(event["ts"], first_event.get(event["user_id"], event["ts"]))
    with_history = [row for row in spine if row["user_id"] in first_event and first_event[row["user_id"]] <= row["at"]]
    engine.load("events", EVENT_COLUMNS, events)
    engine.load("spine", SPINE_COLUMNS, with_history)
    engine.create("windows", render(engine, ["user_id"], "change_points"))

    joined = engine.query(engine.macros.call("point_in_time_join_sql", engine.relation("spine"), "at", [windows_view(engine)], False, False, ["id"]))
    evaluated = engine.query(render(engine, ["user_id"], "spine"))

    assert len(with_history) > 1000
    assert not mismatches(joined, evaluated, FLOAT_TOLERANCE), mismatches(joined, evaluated, FLOAT_TOLERANCE)


@on_engines(spark=False)
def test_before_the_first_event_the_join_gives_null_but_spine_evaluation_gives_empty_window_values(engine: Engine) -> None:
    engine.load("events", EVENT_COLUMNS, [{"user_id": 1, "shop": "1", "ts": START, "amount": 5.0, "category": "a"}])
    engine.load("spine", SPINE_COLUMNS, [{"id": 0, "user_id": 1, "shop": "1", "at": START - 1}])
    engine.create("windows", render(engine, ["user_id"], "change_points"))

    joined = engine.query(engine.macros.call("point_in_time_join_sql", engine.relation("spine"), "at", [windows_view(engine)], False, False, ["id"]))
    evaluated = engine.query(render(engine, ["user_id"], "spine"))

    assert joined == [{"id": 0, **{name: None for name in NAMES}}]
    empty = {"events_30m": 0, "amounts_2h": 0, "spend_1d": 0.0, "categories_2h": 0}
    assert evaluated == [{"id": 0, **{name: empty.get(name) for name in NAMES}}]


# --- hand-made edge cases -------------------------------------------------------------


def event(ts: int, amount: float | None = 1.0, user_id: int | None = 1, shop: str = "1", category: str | None = "a") -> dict[str, Any]:
    return {"user_id": user_id, "shop": shop, "ts": ts, "amount": amount, "category": category}


def at_spine(engine: Engine, events: list[dict[str, Any]], spine: list[dict[str, Any]], keys: list[str] | None = None) -> list[dict[str, Any]]:
    engine.load("events", EVENT_COLUMNS, events)
    engine.load("spine", SPINE_COLUMNS, spine)
    return engine.query(render(engine, keys or ["user_id"], "spine"))


def spine_at(*times: int | None, user_id: int | None = 1, shop: str = "1") -> list[dict[str, Any]]:
    return [{"id": i, "user_id": user_id, "shop": shop, "at": at} for i, at in enumerate(times)]


@on_engines()
def test_event_at_t_counts_and_event_at_exactly_t_minus_window_does_not(engine: Engine) -> None:
    events = [event(START, amount=10.0), event(START + 30 * MINUTE, amount=20.0)]
    actual = at_spine(engine, events, spine_at(START + 30 * MINUTE, START + 30 * MINUTE - 1, START + 60 * MINUTE - 1))
    assert [(row["events_30m"], row["max_30m"]) for row in actual] == [(1, 20.0), (1, 10.0), (1, 20.0)]


@pytest.mark.parametrize(
    ("window", "width"), [("15 minutes", 15 * MINUTE), ("3 hours", 3 * HOUR), ("2 days", 2 * DAY), ("1 week", 7 * DAY)]
)
@on_engines(spark=False)
def test_window_bounds_in_every_unit(engine: Engine, window: str, width: int) -> None:
    aggregation = [{"name": "n", "function": "count", "window": window}]
    engine.load("events", EVENT_COLUMNS, [event(START)])
    engine.load("spine", SPINE_COLUMNS, spine_at(START - 1, START, START + width - 1, START + width))
    actual = engine.query(render(engine, ["user_id"], "spine", aggregation))
    assert [row["n"] for row in actual] == [0, 1, 1, 0]


@on_engines(spark=False)
def test_long_after_the_last_event_sums_and_counts_are_zero_never_stale(engine: Engine) -> None:
    actual = at_spine(engine, [event(START, amount=9.0), event(START + HOUR, amount=3.0)], spine_at(START + HOUR, START + 90 * DAY))
    assert actual[0] == {"id": 0, "events_30m": 1, "amounts_2h": 2, "spend_1d": 12.0, "avg_2h": 6.0, "min_1d": 3.0,
                         "max_30m": 3.0, "stddev_1d": pytest.approx(4.242640687119285, rel=1e-12), "categories_2h": 1}
    assert actual[1] == {"id": 1, "events_30m": 0, "amounts_2h": 0, "spend_1d": 0.0, "avg_2h": None, "min_1d": None,
                         "max_30m": None, "stddev_1d": None, "categories_2h": 0}


@on_engines()
def test_null_values_are_skipped_but_the_event_still_counts(engine: Engine) -> None:
    events = [event(START, amount=None, category=None), event(START, amount=4.0, category="b")]
    actual = at_spine(engine, events, spine_at(START))
    assert actual == [{"id": 0, "events_30m": 2, "amounts_2h": 1, "spend_1d": 4.0, "avg_2h": 4.0, "min_1d": 4.0,
                       "max_30m": 4.0, "stddev_1d": None, "categories_2h": 1}]


@on_engines()
def test_only_null_values_give_zero_sum_and_null_average(engine: Engine) -> None:
    actual = at_spine(engine, [event(START, amount=None, category=None)], spine_at(START))
    assert actual == [{"id": 0, "events_30m": 1, "amounts_2h": 0, "spend_1d": 0.0, "avg_2h": None, "min_1d": None,
                       "max_30m": None, "stddev_1d": None, "categories_2h": 0}]


@on_engines(spark=False)
def test_null_spine_key_or_time_gives_all_null_and_events_with_null_keys_are_ignored(engine: Engine) -> None:
    events = [event(START), event(START, user_id=None), {**event(START), "ts": None}]
    spine = spine_at(START, None) + spine_at(START, user_id=None)
    actual = at_spine(engine, events, spine)
    assert [(row["events_30m"], row["spend_1d"]) for row in actual] == [(1, 1.0), (None, None), (None, None)]


@on_engines(spark=False)
def test_composite_keys_never_collide(engine: Engine) -> None:
    engine.load("events", {**EVENT_COLUMNS, "user_id": "bigint"}, [event(START, user_id=1, shop="12"), event(START, user_id=11, shop="2"), event(START, user_id=11, shop="2")])
    engine.load("spine", SPINE_COLUMNS, spine_at(START, user_id=1, shop="12") + [{"id": 1, "user_id": 11, "shop": "2", "at": START}, {"id": 2, "user_id": 1, "shop": "2", "at": START}])
    actual = engine.query(render(engine, ["user_id", "shop"], "spine"))
    assert [row["events_30m"] for row in actual] == [1, 2, 0]


@on_engines(spark=False)
def test_duplicate_spine_rows_are_kept_in_spine_order(engine: Engine) -> None:
    spine = [{"id": i, "user_id": 1, "shop": "1", "at": at} for i, at in [(5, START), (2, START - 1), (5, START), (1, START)]]
    actual = at_spine(engine, [event(START)], spine)
    assert [(row["id"], row["events_30m"]) for row in actual] == [(5, 1), (2, 0), (5, 1), (1, 1)]


@on_engines()
def test_change_points_add_a_row_when_an_event_leaves_each_window(engine: Engine) -> None:
    engine.load("events", EVENT_COLUMNS, [event(START, amount=2.0)])
    actual = engine.query(render(engine, ["user_id"], "change_points", [
        {"name": "n_30m", "function": "count", "window": "30 minutes"},
        {"name": "spend_1d", "function": "sum", "column": "amount", "window": "1 day"},
    ]))
    assert actual == [
        {"user_id": 1, "ts": START, "n_30m": 1, "spend_1d": 2.0},
        {"user_id": 1, "ts": START + 30 * MINUTE, "n_30m": 0, "spend_1d": 2.0},
        {"user_id": 1, "ts": START + DAY, "n_30m": 0, "spend_1d": 0.0},
    ]


@pytest.mark.parametrize(
    ("engine", "kind"),
    [(engine, kind) for engine in ("duckdb", "default") for kind in ("timestamptz", "timestamp_ns", "timestamptz_ns")]
    + [("postgres", "timestamptz"), ("spark", "timestamptz")],
    indirect=["engine"],
)
def test_event_and_spine_time_types_are_read_as_utc(engine: Engine, kind: str) -> None:
    engine.load("events", {**EVENT_COLUMNS, "ts": kind}, [event(START), event(START + 30 * MINUTE)])
    engine.load("spine", {**SPINE_COLUMNS, "at": kind}, spine_at(START + 30 * MINUTE, START + 60 * MINUTE))
    actual = engine.query(render(engine, ["user_id"], "spine"))
    assert [row["events_30m"] for row in actual] == [1, 0]
    assert [row["ts"] for row in engine.query(render(engine, ["user_id"], "events"))] == [START, START + 30 * MINUTE]


@on_engines(postgres=False, spark=False)
def test_large_spine_comes_back_in_spine_order(engine: Engine) -> None:
    rng = random.Random(5)
    events = random_events(rng, users=200, rows=3000)
    spine = [{"id": i, "user_id": rng.randrange(1, 200), "shop": "1", "at": START + rng.randrange(4 * DAY)} for i in range(250_000)]
    rng.shuffle(spine)
    actual = at_spine(engine, events, spine)
    assert [row["id"] for row in actual] == [row["id"] for row in spine]
