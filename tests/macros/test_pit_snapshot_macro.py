"""point_in_time_snapshot_sql (what an export writes) against the brute-force point-in-time
reference evaluated for every entity at one time, for the DuckDB and the portable SQL."""

from __future__ import annotations

import random
from typing import Any

import duckdb
import pytest

from macro_harness import DAY, HOUR, MINUTE, START, load, mismatches, query
from macro_reference import point_in_time
from serving.rendering import Renderer
from test_pit_join_macro import PAIR_COLUMNS, PROFILE_COLUMNS, feature_row, random_pairs, random_profile, spec

KEYS = {"profile": ["user_id"], "pairs": ["user_id", "shop"]}
FEATURES = {"profile": ["f_int", "f_float", "f_str"], "pairs": ["g_value"]}


def micros_literal(at: int) -> str:
    return f"make_timestamp({at})"


def snapshot(db: duckdb.DuckDBPyConnection, macros: Renderer, view: dict[str, Any], at: int) -> list[dict[str, Any]]:
    keys = ", ".join(f'"{key}"' for key in view["entity"])
    return query(db, f"select * from ({macros.call('point_in_time_snapshot_sql', view, micros_literal(at))}) order by {keys}")


def expected_snapshot(rows: list[dict[str, Any]], name: str, at: int, ttl_us: int | None, created: str | None) -> list[dict[str, Any]]:
    """The reference join for a spine of every entity with a row at or before `at`."""
    keys = KEYS[name]
    entities = sorted({tuple(row[k] for k in keys) for row in rows if row["ts"] is not None and row["ts"] <= at and None not in (row[k] for k in keys)})
    spine = [{**dict(zip(keys, entity)), "at": at} for entity in entities]
    joined = point_in_time(spine, "at", rows, keys, "ts", FEATURES[name], created, ttl_us)
    return [{**dict(zip(keys, entity)), **{k: v for k, v in result.items() if k != "__event_at"}, "__fs_event_at": result["__event_at"]} for entity, result in zip(entities, joined)]


@pytest.mark.parametrize("ttl", [None, "2 hours"])
@pytest.mark.parametrize("seed", range(4))
def test_random_snapshots_equal_the_point_in_time_reference_for_every_entity(
    macros: Renderer, db: duckdb.DuckDBPyConnection, seed: int, ttl: str | None
) -> None:
    rng = random.Random(seed)
    profile = random_profile(rng, users=60, rows=2500)
    pairs = random_pairs(rng, users=60, rows=1500)
    load(db, "profile", PROFILE_COLUMNS, profile)
    load(db, "pairs", PAIR_COLUMNS, pairs)
    ttl_us = 2 * HOUR if ttl else None
    times = [row["ts"] for row in profile if row["ts"] is not None]
    # At an event time exactly, one microsecond before one, and between events.
    for at in (rng.choice(times), rng.choice(times) - 1, START + rng.randrange(3 * DAY)):
        for name, created in (("profile", "created"), ("pairs", None)):
            view = spec(macros, name, KEYS[name], FEATURES[name], ttl, created)
            actual = snapshot(db, macros, view, at)
            expected = expected_snapshot(profile if name == "profile" else pairs, name, at, ttl_us, created)
            assert not mismatches(actual, expected), mismatches(actual, expected)
            assert len(actual) > 20


def test_an_expired_entity_keeps_its_keys_with_null_features_and_time(macros: Renderer, db: duckdb.DuckDBPyConnection) -> None:
    load(db, "profile", PROFILE_COLUMNS, [feature_row(START, f_int=7, user_id=1), feature_row(START + DAY, f_int=8, user_id=2)])
    view = spec(macros, "profile", ["user_id"], ["f_int", "f_float", "f_str"], "1 day", "created")
    rows = snapshot(db, macros, view, START + DAY + 1)
    assert [(row["user_id"], row["f_int"], row["__fs_event_at"]) for row in rows] == [(1, None, None), (2, 8, START + DAY)]


def test_an_entity_whose_rows_are_all_after_as_of_is_left_out(macros: Renderer, db: duckdb.DuckDBPyConnection) -> None:
    load(db, "profile", PROFILE_COLUMNS, [feature_row(START, user_id=1), feature_row(START + MINUTE, user_id=2)])
    view = spec(macros, "profile", ["user_id"], ["f_int"])
    assert [row["user_id"] for row in snapshot(db, macros, view, START)] == [1]


def test_a_correction_written_later_wins_the_tie(macros: Renderer, db: duckdb.DuckDBPyConnection) -> None:
    rows = [feature_row(START, f_int=1, created=START), feature_row(START, f_int=2, created=START + HOUR), feature_row(START, f_int=0, created=None)]
    load(db, "profile", PROFILE_COLUMNS, rows)
    view = spec(macros, "profile", ["user_id"], ["f_int"], None, "created")
    assert [row["f_int"] for row in snapshot(db, macros, view, START + DAY)] == [2]
