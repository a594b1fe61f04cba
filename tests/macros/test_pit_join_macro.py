"""point_in_time_join_sql against the brute-force reference, on random data and on
hand-made edge cases, for the DuckDB and the portable implementation."""

from __future__ import annotations

import random
from typing import Any, Callable

import duckdb
import pytest

from serving.errors import FeatureStoreError
from serving.rendering import Renderer
from macro_harness import DAY, HOUR, MINUTE, SECOND, START, load, mismatches, query, random_spine
from macro_reference import point_in_time

PROFILE_COLUMNS = {
    "user_id": "bigint",
    "ts": "timestamp",
    "created": "timestamp",
    "f_int": "bigint",
    "f_float": "double",
    "f_str": "varchar",
}
PAIR_COLUMNS = {"user_id": "bigint", "shop": "varchar", "ts": "timestamptz", "g_value": "double"}
SPINE_COLUMNS = {"id": "bigint", "user_id": "bigint", "shop": "varchar", "at": "timestamp"}
SHOPS = ["1", "2", "12", "21"]


def spec(
    macros: Renderer, name: str, keys: list[str], features: list[str], ttl: str | None = None, created: str | None = None
) -> dict[str, Any]:
    return {
        "name": name,
        "relation": f'"{name}"',
        "entity": keys,
        "timestamp_column": "ts",
        "created_timestamp_column": created,
        "ttl": macros.call("parse_duration", ttl, "test", "ttl") if ttl else None,
        "features": [{"name": feature} for feature in features],
    }


def random_profile(rng: random.Random, users: int, rows: int) -> list[dict[str, Any]]:
    """Rows on a 10-minute grid over 3 days with few distinct values, so equal
    timestamps, equal created timestamps and fully equal rows are all common."""
    result = []
    for _ in range(rows):
        ts = START + rng.randrange(3 * 24 * 6) * 10 * MINUTE
        result.append(
            {
                "user_id": rng.randrange(1, users + 1) if rng.random() > 0.01 else None,
                "ts": ts if rng.random() > 0.01 else None,
                "created": None if rng.random() < 0.2 else ts + rng.randrange(3) * MINUTE,
                "f_int": None if rng.random() < 0.2 else rng.randrange(3),
                "f_float": None if rng.random() < 0.1 else (float("nan") if rng.random() < 0.05 else rng.randrange(3) / 2),
                "f_str": None if rng.random() < 0.1 else rng.choice("ab"),
            }
        )
    return result


def random_pairs(rng: random.Random, users: int, rows: int) -> list[dict[str, Any]]:
    return [
        {
            "user_id": rng.randrange(1, users + 1),
            "shop": rng.choice(SHOPS),
            "ts": START + rng.randrange(3 * 24 * 6) * 10 * MINUTE,
            "g_value": None if rng.random() < 0.1 else round(rng.uniform(-5, 5), 3),
        }
        for _ in range(rows)
    ]


def spine_times(rng: random.Random, event_times: list[int], ttl_us: int | None) -> Callable[[], int]:
    """Spine times: exactly at event times, at the TTL bound and 1 µs past it, random
    microseconds, and before any event."""

    def pick() -> int:
        kind = rng.random()
        base = rng.choice(event_times)
        if kind < 0.3:
            return base
        if kind < 0.5 and ttl_us:
            return base + ttl_us + rng.choice([0, 1])
        if kind < 0.6:
            return START - rng.randrange(1, DAY)
        return START + rng.randrange(4 * DAY)

    return pick


def run_join(db: duckdb.DuckDBPyConnection, macros: Renderer, views: list[dict[str, Any]], **options: Any) -> list[dict[str, Any]]:
    options.setdefault("spine_columns", ["id"])
    sql = macros.call(
        "point_in_time_join_sql",
        '"spine"',
        "at",
        views,
        options.get("full_feature_names", False),
        options.get("include_timestamps", False),
        options["spine_columns"],
    )
    return query(db, sql)


def expected_rows(spine: list[dict[str, Any]], views: list[tuple[str, list[dict[str, Any]]]]) -> list[dict[str, Any]]:
    """One row per spine row from each view's reference output, named as with
    full_feature_names and include_timestamps: view__feature, then view__event_timestamp."""
    rows = []
    for i, spine_row in enumerate(spine):
        row = {"id": spine_row["id"]}
        for view, results in views:
            result = dict(results[i])
            event_at = result.pop("__event_at")
            row.update({f"{view}__{name}": value for name, value in result.items()})
            row[f"{view}__event_timestamp"] = event_at
        rows.append(row)
    return rows


@pytest.mark.parametrize("ttl", [None, "2 hours"])
@pytest.mark.parametrize("seed", range(5))
def test_random_spines_match_the_reference_for_three_views(macros: Renderer, db: duckdb.DuckDBPyConnection, seed: int, ttl: str | None) -> None:
    rng = random.Random(seed)
    profile = random_profile(rng, users=40, rows=2500)
    pairs = random_pairs(rng, users=40, rows=1500)
    ttl_us = 2 * HOUR if ttl else None
    # users 41..45 have no history
    spine = random_spine(rng, 3000, 45, SHOPS, spine_times(rng, [row["ts"] for row in profile if row["ts"] is not None], ttl_us))
    load(db, "profile", PROFILE_COLUMNS, profile)
    load(db, "pairs", PAIR_COLUMNS, pairs)
    load(db, "spine", SPINE_COLUMNS, spine)
    views = [
        spec(macros, "profile", ["user_id"], ["f_int", "f_float", "f_str"], ttl, "created"),
        spec(macros, "pairs", ["user_id", "shop"], ["g_value"], ttl),
        # The same rows keyed by user alone, with their own TTL: g_value twice needs full names.
        {**spec(macros, "pairs_by_user", ["user_id"], ["g_value"], "1 day"), "relation": '"pairs"'},
    ]

    actual = run_join(db, macros, views, full_feature_names=True, include_timestamps=True)

    expected = expected_rows(
        spine,
        [
            ("profile", point_in_time(spine, "at", profile, ["user_id"], "ts", ["f_int", "f_float", "f_str"], "created", ttl_us)),
            ("pairs", point_in_time(spine, "at", pairs, ["user_id", "shop"], "ts", ["g_value"], None, ttl_us)),
            ("pairs_by_user", point_in_time(spine, "at", pairs, ["user_id"], "ts", ["g_value"], None, DAY)),
        ],
    )
    assert list(actual[0]) == list(expected[0])
    assert not mismatches(actual, expected), mismatches(actual, expected)
    assert sum(row["profile__f_int"] is not None for row in actual) > 100, "the data should give many matches"


def test_large_spine_comes_back_once_per_row_in_spine_order(macros: Renderer, db: duckdb.DuckDBPyConnection) -> None:
    # Large enough for DuckDB to scan and join in parallel (several row groups).
    rng = random.Random(99)
    profile = random_profile(rng, users=500, rows=5000)
    spine = [
        {"id": i, "user_id": rng.randrange(1, 520), "shop": "1", "at": START + rng.randrange(4 * DAY)} for i in range(300_000)
    ]
    rng.shuffle(spine)
    load(db, "profile", PROFILE_COLUMNS, profile)
    load(db, "spine", SPINE_COLUMNS, spine)
    views = [spec(macros, "profile", ["user_id"], ["f_int", "f_float", "f_str"], "1 day", "created")]

    actual = run_join(db, macros, views)

    assert [row["id"] for row in actual] == [row["id"] for row in spine]
    expected = point_in_time(spine, "at", profile, ["user_id"], "ts", ["f_int", "f_float", "f_str"], "created", DAY)
    assert not mismatches(actual, [{"id": s["id"], **{k: v for k, v in e.items() if k != "__event_at"}} for s, e in zip(spine, expected)])


# --- hand-made edge cases -------------------------------------------------------------


def one_view(macros: Renderer, db: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]], spine: list[dict[str, Any]], ttl: str | None = None, **options: Any) -> list[dict[str, Any]]:
    load(db, "profile", PROFILE_COLUMNS, rows)
    load(db, "spine", SPINE_COLUMNS, spine)
    return run_join(db, macros, [spec(macros, "profile", ["user_id"], ["f_int", "f_float", "f_str"], ttl, "created")], **options)


def feature_row(ts: int, f_int: Any = 1, created: int | None = None, f_float: Any = None, f_str: Any = None, user_id: int = 1) -> dict[str, Any]:
    return {"user_id": user_id, "ts": ts, "created": created, "f_int": f_int, "f_float": f_float, "f_str": f_str}


def spine_rows(*times: int | None, user_id: int | None = 1) -> list[dict[str, Any]]:
    return [{"id": i, "user_id": user_id, "shop": "1", "at": at} for i, at in enumerate(times)]


def test_feature_at_exactly_the_spine_time_is_visible(macros: Renderer, db: duckdb.DuckDBPyConnection) -> None:
    rows = [feature_row(START, f_int=1), feature_row(START + HOUR, f_int=2)]
    actual = one_view(macros, db, rows, spine_rows(START + HOUR, START + HOUR - 1))
    assert [row["f_int"] for row in actual] == [2, 1]


def test_ttl_bound_is_inclusive_and_one_microsecond_older_is_expired(macros: Renderer, db: duckdb.DuckDBPyConnection) -> None:
    actual = one_view(macros, db, [feature_row(START, f_int=7)], spine_rows(START + DAY, START + DAY + 1), ttl="1 day")
    assert [row["f_int"] for row in actual] == [7, None]


def test_expired_latest_row_does_not_fall_back_to_an_older_one(macros: Renderer, db: duckdb.DuckDBPyConnection) -> None:
    rows = [feature_row(START, f_int=1), feature_row(START + HOUR, f_int=2)]
    actual = one_view(macros, db, rows, spine_rows(START + HOUR + DAY + 1), ttl="1 day")
    assert [row["f_int"] for row in actual] == [None]


def test_later_created_timestamp_wins_a_tie_and_null_created_loses(macros: Renderer, db: duckdb.DuckDBPyConnection) -> None:
    rows = [
        feature_row(START, f_int=1, created=START + MINUTE),
        feature_row(START, f_int=2, created=START + 2 * MINUTE),
        feature_row(START, f_int=0, created=None),
    ]
    assert [row["f_int"] for row in one_view(macros, db, rows, spine_rows(START))] == [2]


def test_full_tie_goes_to_the_smallest_feature_values_with_nulls_last(macros: Renderer, db: duckdb.DuckDBPyConnection) -> None:
    rows = [
        feature_row(START, f_int=None, f_float=0.0, f_str="a"),
        feature_row(START, f_int=5, f_float=2.0, f_str="a"),
        feature_row(START, f_int=5, f_float=1.0, f_str="b"),
        feature_row(START, f_int=5, f_float=None, f_str="a"),
    ]
    actual = one_view(macros, db, rows, spine_rows(START))
    assert [(row["f_int"], row["f_float"], row["f_str"]) for row in actual] == [(5, 1.0, "b")]


def test_null_feature_values_are_returned_as_null(macros: Renderer, db: duckdb.DuckDBPyConnection) -> None:
    actual = one_view(macros, db, [feature_row(START, f_int=None)], spine_rows(START), include_timestamps=True)
    assert actual == [{"id": 0, "f_int": None, "f_float": None, "f_str": None, "profile__event_timestamp": START}]


def test_entity_without_history_and_spine_before_first_event_get_null(macros: Renderer, db: duckdb.DuckDBPyConnection) -> None:
    spine = spine_rows(START - 1, START) + [{"id": 2, "user_id": 404, "shop": "1", "at": START + DAY}]
    actual = one_view(macros, db, [feature_row(START, f_int=3)], spine, include_timestamps=True)
    assert [(row["f_int"], row["profile__event_timestamp"]) for row in actual] == [(None, None), (3, START), (None, None)]


def test_null_spine_key_or_time_gives_null_features_and_keeps_the_row(macros: Renderer, db: duckdb.DuckDBPyConnection) -> None:
    rows = [feature_row(START, f_int=3), {**feature_row(START, f_int=9), "user_id": None}]
    spine = spine_rows(START, None) + [{"id": 2, "user_id": None, "shop": "1", "at": START}]
    assert [(row["id"], row["f_int"]) for row in one_view(macros, db, rows, spine)] == [(0, 3), (1, None), (2, None)]


def test_duplicate_spine_rows_are_all_kept_in_order(macros: Renderer, db: duckdb.DuckDBPyConnection) -> None:
    spine = [{"id": i, "user_id": 1, "shop": "1", "at": at} for i, at in [(3, START), (1, START), (3, START), (2, START - 1), (3, START)]]
    actual = one_view(macros, db, [feature_row(START, f_int=4)], spine)
    assert [(row["id"], row["f_int"]) for row in actual] == [(3, 4), (1, 4), (3, 4), (2, None), (3, 4)]


def test_composite_keys_never_collide(macros: Renderer, db: duckdb.DuckDBPyConnection) -> None:
    # Concatenated, (1, '12') and (11, '2') would both read '112'.
    load(db, "pairs", PAIR_COLUMNS, [{"user_id": 1, "shop": "12", "ts": START, "g_value": 1.0}, {"user_id": 11, "shop": "2", "ts": START, "g_value": 2.0}])
    spine = [
        {"id": 0, "user_id": 1, "shop": "12", "at": START},
        {"id": 1, "user_id": 11, "shop": "2", "at": START},
        {"id": 2, "user_id": 1, "shop": "2", "at": START},
        {"id": 3, "user_id": 11, "shop": "12", "at": START},
        {"id": 4, "user_id": 1, "shop": None, "at": START},
    ]
    load(db, "spine", SPINE_COLUMNS, spine)
    actual = run_join(db, macros, [spec(macros, "pairs", ["user_id", "shop"], ["g_value"])])
    assert [row["g_value"] for row in actual] == [1.0, 2.0, None, None, None]


@pytest.mark.parametrize("spine_type", ["timestamp", "timestamptz", "timestamp_ns", "timestamptz_ns"])
@pytest.mark.parametrize("view_type", ["timestamp", "timestamptz", "timestamp_ns", "timestamptz_ns"])
def test_timestamp_types_compare_as_the_same_utc_instant(macros: Renderer, db: duckdb.DuckDBPyConnection, spine_type: str, view_type: str) -> None:
    load(db, "profile", {**PROFILE_COLUMNS, "ts": view_type}, [feature_row(START, f_int=1), feature_row(START + HOUR, f_int=2)])
    load(db, "spine", {**SPINE_COLUMNS, "at": spine_type}, spine_rows(START + HOUR - 1, START + HOUR, START + HOUR + DAY, START + HOUR + DAY + 1))
    views = [spec(macros, "profile", ["user_id"], ["f_int"], "1 day")]
    actual = run_join(db, macros, views, include_timestamps=True)
    assert [(row["f_int"], row["profile__event_timestamp"]) for row in actual] == [(1, START), (2, START + HOUR), (2, START + HOUR), (None, None)]


def test_offsets_are_converted_to_utc_and_naive_means_utc(macros: Renderer, db: duckdb.DuckDBPyConnection) -> None:
    # 10:00 naive (UTC) feature; the spine asks at 14:59:59.999999+05:00 (09:59:59.999999
    # UTC, too early), 15:00+05:00 and 02:00-08:00 (both 10:00 UTC, visible).
    db.execute(
        "create table profile as select 1::bigint as user_id, timestamp '2026-01-01 10:00:00' as ts,"
        " null::timestamp as created, 8::bigint as f_int, null::double as f_float, null::varchar as f_str"
    )
    db.execute(
        "create table spine as select * from (values"
        " (0, 1, '1', timestamptz '2026-01-01 14:59:59.999999+05:00'),"
        " (1, 1, '1', timestamptz '2026-01-01 15:00:00+05:00'),"
        " (2, 1, '1', timestamptz '2026-01-01 02:00:00-08:00')) as t(id, user_id, shop, \"at\")"
    )
    actual = run_join(db, macros, [spec(macros, "profile", ["user_id"], ["f_int"])], include_timestamps=True)
    assert [(row["f_int"], row["profile__event_timestamp"]) for row in actual] == [(None, None), (8, START + 10 * HOUR), (8, START + 10 * HOUR)]


def test_nanosecond_inputs_are_rounded_to_the_nearest_microsecond(macros: Renderer, db: duckdb.DuckDBPyConnection) -> None:
    # Every rule compares microseconds: a row 400 ns after the spine time rounds onto it
    # (visible), one 600 ns after rounds to the next microsecond (not yet visible).
    db.execute(
        "create table profile as select * from (values"
        " (1::bigint, timestamp_ns '2026-01-01 10:00:00.000000400', 1::bigint),"
        " (2::bigint, timestamp_ns '2026-01-01 10:00:00.000000600', 2::bigint)) as t(user_id, ts, f_int)"
    )
    db.execute("create table spine as select * from (values (0, 1::bigint), (1, 2::bigint)) as t(id, user_id), (select timestamp '2026-01-01 10:00:00' as \"at\")")
    actual = run_join(db, macros, [spec(macros, "profile", ["user_id"], ["f_int"])], include_timestamps=True)
    assert [(row["f_int"], row["profile__event_timestamp"]) for row in actual] == [(1, START + 10 * HOUR), (None, None)]


def test_full_feature_names_prefix_the_view_and_avoid_collisions(macros: Renderer, db: duckdb.DuckDBPyConnection) -> None:
    load(db, "profile", PROFILE_COLUMNS, [feature_row(START, f_int=1)])
    load(db, "other", PROFILE_COLUMNS, [feature_row(START, f_int=2)])
    load(db, "spine", SPINE_COLUMNS, spine_rows(START))
    views = [spec(macros, "profile", ["user_id"], ["f_int"]), {**spec(macros, "other", ["user_id"], ["f_int"])}]
    with pytest.raises(FeatureStoreError, match="f_int.*full_feature_names"):
        run_join(db, macros, views)
    actual = run_join(db, macros, views, full_feature_names=True, include_timestamps=True)
    assert actual == [
        {"id": 0, "profile__f_int": 1, "profile__event_timestamp": START, "other__f_int": 2, "other__event_timestamp": START}
    ]


def test_without_spine_columns_every_spine_column_comes_back(macros: Renderer, db: duckdb.DuckDBPyConnection) -> None:
    actual = one_view(macros, db, [feature_row(START, f_int=1)], spine_rows(START), spine_columns=None)
    assert {"id": 0, "user_id": 1, "shop": "1", "at": START, "f_int": 1}.items() <= actual[0].items()


# --- what the DuckDB join cuts before its ASOF JOIN -------------------------------------
# It keeps, entity by entity, only the view rows no later than the entity's latest spine
# time and, with a TTL, no earlier than its earliest spine time less the TTL. Each case
# below sits on one edge of that cut; both implementations must agree on it.


def test_rows_later_than_an_entitys_latest_spine_time_are_never_matched_and_one_at_it_is(macros: Renderer, db: duckdb.DuckDBPyConnection) -> None:
    rows = [feature_row(START, f_int=1), feature_row(START + HOUR, f_int=2), feature_row(START + HOUR + 1, f_int=3)]
    actual = one_view(macros, db, rows, spine_rows(START + HOUR, START), include_timestamps=True)
    assert [(row["f_int"], row["profile__event_timestamp"]) for row in actual] == [(2, START + HOUR), (1, START)]


def test_without_a_ttl_a_row_older_than_every_spine_time_still_matches(macros: Renderer, db: duckdb.DuckDBPyConnection) -> None:
    actual = one_view(macros, db, [feature_row(START, f_int=5)], spine_rows(START + 400 * DAY, START + 500 * DAY))
    assert [row["f_int"] for row in actual] == [5, 5]


def test_each_entity_is_cut_by_its_own_spine_times(macros: Renderer, db: duckdb.DuckDBPyConnection) -> None:
    # User 1's earliest spine time less the TTL is exactly its first row's time (kept,
    # matched); at START + 3 days that row is the latest and expired. User 2's rows lie
    # outside user 1's bounds, and its spine times alone decide what it gets.
    rows = [
        feature_row(START, f_int=1, user_id=1),
        feature_row(START + 10 * DAY, f_int=2, user_id=1),
        feature_row(START - 30 * DAY, f_int=3, user_id=2),
        feature_row(START + 30 * DAY, f_int=4, user_id=2),
    ]
    spine = [
        {"id": 0, "user_id": 1, "shop": "1", "at": START + DAY},
        {"id": 1, "user_id": 2, "shop": "1", "at": START - 30 * DAY + HOUR},
        {"id": 2, "user_id": 1, "shop": "1", "at": START + 3 * DAY},
        {"id": 3, "user_id": 2, "shop": "1", "at": START + 40 * DAY},
        {"id": 4, "user_id": 1, "shop": "1", "at": START + 10 * DAY + HOUR},
        {"id": 5, "user_id": 2, "shop": "1", "at": START + 30 * DAY + DAY},
    ]
    assert [row["f_int"] for row in one_view(macros, db, rows, spine, ttl="1 day")] == [1, 3, None, None, 2, 4]


def test_a_spine_whose_every_time_is_null_keeps_its_rows_with_null_features(macros: Renderer, db: duckdb.DuckDBPyConnection) -> None:
    actual = one_view(macros, db, [feature_row(START, f_int=1)], spine_rows(None, None), ttl="1 day")
    assert [(row["id"], row["f_int"]) for row in actual] == [(0, None), (1, None)]


def test_an_empty_spine_gives_no_rows(macros: Renderer, db: duckdb.DuckDBPyConnection) -> None:
    assert one_view(macros, db, [feature_row(START, f_int=1)], [], ttl="1 day") == []


def test_a_spine_time_column_named_like_the_view_time_column_is_the_spine_one(macros: Renderer, db: duckdb.DuckDBPyConnection) -> None:
    load(db, "profile", PROFILE_COLUMNS, [feature_row(START, f_int=1), feature_row(START + HOUR, f_int=2)])
    load(db, "spine", {"id": "bigint", "user_id": "bigint", "ts": "timestamp"}, [{"id": 0, "user_id": 1, "ts": START + HOUR - 1}, {"id": 1, "user_id": 1, "ts": START + HOUR}])
    sql = macros.call("point_in_time_join_sql", '"spine"', "ts", [spec(macros, "profile", ["user_id"], ["f_int"], "1 day", "created")], False, True, ["id", "ts"])
    assert query(db, sql) == [
        {"id": 0, "ts": START + HOUR - 1, "f_int": 1, "profile__event_timestamp": START},
        {"id": 1, "ts": START + HOUR, "f_int": 2, "profile__event_timestamp": START + HOUR},
    ]


def test_spine_rows_sharing_a_time_keep_their_order_across_entities_and_views(macros: Renderer, db: duckdb.DuckDBPyConnection) -> None:
    load(db, "profile", PROFILE_COLUMNS, [feature_row(START, f_int=user, user_id=user) for user in (1, 2, 3)])
    load(db, "pairs", PAIR_COLUMNS, [{"user_id": user, "shop": "1", "ts": START, "g_value": user / 2} for user in (2, 3)])
    users = [3, 1, 2, 3, None, 2, 404, 1, 3]
    load(db, "spine", SPINE_COLUMNS, [{"id": i, "user_id": user, "shop": "1", "at": START} for i, user in enumerate(users)])
    views = [spec(macros, "profile", ["user_id"], ["f_int"], "1 hour"), spec(macros, "pairs", ["user_id", "shop"], ["g_value"], "1 hour")]
    actual = run_join(db, macros, views)
    known = {1, 2, 3}
    assert [(row["id"], row["f_int"], row["g_value"]) for row in actual] == [
        (i, user if user in known else None, user / 2 if user in (2, 3) else None) for i, user in enumerate(users)
    ]


def test_many_views_in_one_request_each_equal_the_reference(macros: Renderer, db: duckdb.DuckDBPyConnection) -> None:
    # One relation under eight names and TTLs: every view's cut and match is its own.
    rng = random.Random(7)
    profile = random_profile(rng, users=20, rows=600)
    spine = random_spine(rng, 400, 24, SHOPS, spine_times(rng, [row["ts"] for row in profile if row["ts"] is not None], HOUR))
    load(db, "profile", PROFILE_COLUMNS, profile)
    load(db, "spine", SPINE_COLUMNS, spine)
    ttls = [None, "1 second", "10 minutes", "1 hour", "2 hours", "1 day", "2 days", "1 week"]
    views = [{**spec(macros, f"v{i}", ["user_id"], ["f_int", "f_str"], ttl, "created"), "relation": '"profile"'} for i, ttl in enumerate(ttls)]

    actual = run_join(db, macros, views, full_feature_names=True, include_timestamps=True)

    seconds = {None: None, **{ttl: macros.call("parse_duration", ttl, "test", "ttl")["seconds"] * SECOND for ttl in ttls if ttl}}
    expected = expected_rows(
        spine,
        [(f"v{i}", point_in_time(spine, "at", profile, ["user_id"], "ts", ["f_int", "f_str"], "created", seconds[ttl])) for i, ttl in enumerate(ttls)],
    )
    assert not mismatches(actual, expected), mismatches(actual, expected)
