"""point_in_time_snapshot_sql (what an export writes) against the brute-force point-in-time
reference evaluated for every entity at one time: the DuckDB and the portable SQL on
DuckDB, and the postgres and spark dispatch on PostgreSQL and Spark."""

from __future__ import annotations

import random
from typing import Any

import pytest

from macro_engines import Engine, on_engines
from macro_harness import DAY, EPOCH, HOUR, MICROS, MINUTE, START, mismatches
from macro_reference import point_in_time
from test_pit_join_macro import PAIR_COLUMNS, PROFILE_COLUMNS, feature_row, random_pairs, random_profile, spec

KEYS = {"profile": ["user_id"], "pairs": ["user_id", "shop"]}
FEATURES = {"profile": ["f_int", "f_float", "f_str"], "pairs": ["g_value"]}


def micros_literal(at: int) -> str:
    """The naive UTC timestamp `at` microseconds after the epoch, as the macros' own
    literal (timestamp_literal) of its text."""
    return (EPOCH + at * MICROS).strftime("%Y-%m-%d %H:%M:%S.%f")


def snapshot(engine: Engine, view: dict[str, Any], at: int) -> list[dict[str, Any]]:
    keys = ", ".join(engine.quote(key) for key in view["entity"])
    as_of = engine.macros.call("timestamp_literal", micros_literal(at))
    return engine.query(f"select * from ({engine.macros.call('point_in_time_snapshot_sql', view, as_of)}) as s order by {keys}")


def expected_snapshot(rows: list[dict[str, Any]], name: str, at: int, ttl_us: int | None, created: str | None) -> list[dict[str, Any]]:
    """The reference join for a spine of every entity with a row at or before `at`."""
    keys = KEYS[name]
    entities = sorted({tuple(row[k] for k in keys) for row in rows if row["ts"] is not None and row["ts"] <= at and None not in (row[k] for k in keys)})
    spine = [{**dict(zip(keys, entity)), "at": at} for entity in entities]
    joined = point_in_time(spine, "at", rows, keys, "ts", FEATURES[name], created, ttl_us)
    return [{**dict(zip(keys, entity)), **{k: v for k, v in result.items() if k != "__event_at"}, "__fs_event_at": result["__event_at"]} for entity, result in zip(entities, joined)]


@pytest.mark.parametrize("ttl", [None, "2 hours"])
@on_engines(seeds=range(4), postgres=[0, 1], spark=[0])
def test_random_snapshots_equal_the_point_in_time_reference_for_every_entity(engine: Engine, seed: int, ttl: str | None) -> None:
    rng = random.Random(seed)
    profile = random_profile(rng, users=60, rows=2500)
    pairs = random_pairs(rng, users=60, rows=1500)
    engine.load("profile", PROFILE_COLUMNS, profile)
    engine.load("pairs", PAIR_COLUMNS, pairs)
    ttl_us = 2 * HOUR if ttl else None
    times = [row["ts"] for row in profile if row["ts"] is not None]
    # At an event time exactly, one microsecond before one, and between events.
    for at in (rng.choice(times), rng.choice(times) - 1, START + rng.randrange(3 * DAY)):
        for name, created in (("profile", "created"), ("pairs", None)):
            view = spec(engine, name, KEYS[name], FEATURES[name], ttl, created)
            actual = snapshot(engine, view, at)
            expected = expected_snapshot(profile if name == "profile" else pairs, name, at, ttl_us, created)
            assert not mismatches(actual, expected), mismatches(actual, expected)
            assert len(actual) > 20


@on_engines(spark=False)
def test_an_expired_entity_keeps_its_keys_with_null_features_and_time(engine: Engine) -> None:
    engine.load("profile", PROFILE_COLUMNS, [feature_row(START, f_int=7, user_id=1), feature_row(START + DAY, f_int=8, user_id=2)])
    view = spec(engine, "profile", ["user_id"], ["f_int", "f_float", "f_str"], "1 day", "created")
    rows = snapshot(engine, view, START + DAY + 1)
    assert [(row["user_id"], row["f_int"], row["__fs_event_at"]) for row in rows] == [(1, None, None), (2, 8, START + DAY)]


@on_engines(spark=False)
def test_an_entity_whose_rows_are_all_after_as_of_is_left_out(engine: Engine) -> None:
    engine.load("profile", PROFILE_COLUMNS, [feature_row(START, user_id=1), feature_row(START + MINUTE, user_id=2)])
    view = spec(engine, "profile", ["user_id"], ["f_int"])
    assert [row["user_id"] for row in snapshot(engine, view, START)] == [1]


@on_engines()
def test_a_correction_written_later_wins_the_tie(engine: Engine) -> None:
    rows = [feature_row(START, f_int=1, created=START), feature_row(START, f_int=2, created=START + HOUR), feature_row(START, f_int=0, created=None)]
    engine.load("profile", PROFILE_COLUMNS, rows)
    view = spec(engine, "profile", ["user_id"], ["f_int"], None, "created")
    assert [row["f_int"] for row in snapshot(engine, view, START + DAY)] == [2]
