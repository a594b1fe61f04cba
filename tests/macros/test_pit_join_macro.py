"""point_in_time_join_sql against the brute-force reference, on random data and on
hand-made edge cases: the DuckDB and the portable implementation on DuckDB, and the
postgres and spark dispatch on PostgreSQL and Spark (a subset of the random seeds)."""

from __future__ import annotations

import random
from typing import Any, Callable

import duckdb
import pytest

from macro_engines import Engine, on_engines
from macro_harness import DAY, HOUR, MINUTE, SECOND, START, mismatches, random_spine
from serving.errors import FeatureStoreError
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
    engine: Engine, name: str, keys: list[str], features: list[str], ttl: str | None = None, created: str | None = None
) -> dict[str, Any]:
    return {
        "name": name,
        "relation": engine.relation(name),
        "entity": keys,
        "timestamp_column": "ts",
        "created_timestamp_column": created,
        "ttl": engine.macros.call("parse_duration", ttl, "test", "ttl") if ttl else None,
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


def run_join(engine: Engine, views: list[dict[str, Any]], **options: Any) -> list[dict[str, Any]]:
    options.setdefault("spine_columns", ["id"])
    sql = engine.macros.call(
        "point_in_time_join_sql",
        engine.relation("spine"),
        "at",
        views,
        options.get("full_feature_names", False),
        options.get("include_timestamps", False),
        options["spine_columns"],
    )
    return engine.query(sql)


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
@on_engines(seeds=range(5), postgres=[0, 1], spark=[0])
def test_random_spines_match_the_reference_for_three_views(engine: Engine, seed: int, ttl: str | None) -> None:
    rng = random.Random(seed)
    profile = random_profile(rng, users=40, rows=2500)
    pairs = random_pairs(rng, users=40, rows=1500)
    ttl_us = 2 * HOUR if ttl else None
    # users 41..45 have no history
    spine = random_spine(rng, 3000, 45, SHOPS, spine_times(rng, [row["ts"] for row in profile if row["ts"] is not None], ttl_us))
    engine.load("profile", PROFILE_COLUMNS, profile)
    engine.load("pairs", PAIR_COLUMNS, pairs)
    engine.load("spine", SPINE_COLUMNS, spine)
    views = [
        spec(engine, "profile", ["user_id"], ["f_int", "f_float", "f_str"], ttl, "created"),
        spec(engine, "pairs", ["user_id", "shop"], ["g_value"], ttl),
        # The same rows keyed by user alone, with their own TTL: g_value twice needs full names.
        {**spec(engine, "pairs_by_user", ["user_id"], ["g_value"], "1 day"), "relation": engine.relation("pairs")},
    ]

    actual = run_join(engine, views, full_feature_names=True, include_timestamps=True)

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


@on_engines(postgres=False, spark=False)
def test_large_spine_comes_back_once_per_row_in_spine_order(engine: Engine) -> None:
    # Large enough for DuckDB to scan and join in parallel (several row groups).
    rng = random.Random(99)
    profile = random_profile(rng, users=500, rows=5000)
    spine = [
        {"id": i, "user_id": rng.randrange(1, 520), "shop": "1", "at": START + rng.randrange(4 * DAY)} for i in range(300_000)
    ]
    rng.shuffle(spine)
    engine.load("profile", PROFILE_COLUMNS, profile)
    engine.load("spine", SPINE_COLUMNS, spine)
    views = [spec(engine, "profile", ["user_id"], ["f_int", "f_float", "f_str"], "1 day", "created")]

    actual = run_join(engine, views)

    assert [row["id"] for row in actual] == [row["id"] for row in spine]
    expected = point_in_time(spine, "at", profile, ["user_id"], "ts", ["f_int", "f_float", "f_str"], "created", DAY)
    assert not mismatches(actual, [{"id": s["id"], **{k: v for k, v in e.items() if k != "__event_at"}} for s, e in zip(spine, expected)])


# --- hand-made edge cases -------------------------------------------------------------


def one_view(engine: Engine, rows: list[dict[str, Any]], spine: list[dict[str, Any]], ttl: str | None = None, **options: Any) -> list[dict[str, Any]]:
    engine.load("profile", PROFILE_COLUMNS, rows)
    engine.load("spine", SPINE_COLUMNS, spine)
    return run_join(engine, [spec(engine, "profile", ["user_id"], ["f_int", "f_float", "f_str"], ttl, "created")], **options)


def feature_row(ts: int, f_int: Any = 1, created: int | None = None, f_float: Any = None, f_str: Any = None, user_id: int = 1) -> dict[str, Any]:
    return {"user_id": user_id, "ts": ts, "created": created, "f_int": f_int, "f_float": f_float, "f_str": f_str}


def spine_rows(*times: int | None, user_id: int | None = 1) -> list[dict[str, Any]]:
    return [{"id": i, "user_id": user_id, "shop": "1", "at": at} for i, at in enumerate(times)]


@on_engines(spark=False)
def test_feature_at_exactly_the_spine_time_is_visible(engine: Engine) -> None:
    rows = [feature_row(START, f_int=1), feature_row(START + HOUR, f_int=2)]
    actual = one_view(engine, rows, spine_rows(START + HOUR, START + HOUR - 1))
    assert [row["f_int"] for row in actual] == [2, 1]


@on_engines()
def test_ttl_bound_is_inclusive_and_one_microsecond_older_is_expired(engine: Engine) -> None:
    actual = one_view(engine, [feature_row(START, f_int=7)], spine_rows(START + DAY, START + DAY + 1), ttl="1 day")
    assert [row["f_int"] for row in actual] == [7, None]


@on_engines(spark=False)
def test_expired_latest_row_does_not_fall_back_to_an_older_one(engine: Engine) -> None:
    rows = [feature_row(START, f_int=1), feature_row(START + HOUR, f_int=2)]
    actual = one_view(engine, rows, spine_rows(START + HOUR + DAY + 1), ttl="1 day")
    assert [row["f_int"] for row in actual] == [None]


@on_engines()
def test_later_created_timestamp_wins_a_tie_and_null_created_loses(engine: Engine) -> None:
    rows = [
        feature_row(START, f_int=1, created=START + MINUTE),
        feature_row(START, f_int=2, created=START + 2 * MINUTE),
        feature_row(START, f_int=0, created=None),
    ]
    assert [row["f_int"] for row in one_view(engine, rows, spine_rows(START))] == [2]


@on_engines()
def test_full_tie_goes_to_the_smallest_feature_values_with_nulls_last(engine: Engine) -> None:
    rows = [
        feature_row(START, f_int=None, f_float=0.0, f_str="a"),
        feature_row(START, f_int=5, f_float=2.0, f_str="a"),
        feature_row(START, f_int=5, f_float=1.0, f_str="b"),
        feature_row(START, f_int=5, f_float=None, f_str="a"),
    ]
    actual = one_view(engine, rows, spine_rows(START))
    assert [(row["f_int"], row["f_float"], row["f_str"]) for row in actual] == [(5, 1.0, "b")]


@on_engines(spark=False)
def test_null_feature_values_are_returned_as_null(engine: Engine) -> None:
    actual = one_view(engine, [feature_row(START, f_int=None)], spine_rows(START), include_timestamps=True)
    assert actual == [{"id": 0, "f_int": None, "f_float": None, "f_str": None, "profile__event_timestamp": START}]


@on_engines(spark=False)
def test_entity_without_history_and_spine_before_first_event_get_null(engine: Engine) -> None:
    spine = spine_rows(START - 1, START) + [{"id": 2, "user_id": 404, "shop": "1", "at": START + DAY}]
    actual = one_view(engine, [feature_row(START, f_int=3)], spine, include_timestamps=True)
    assert [(row["f_int"], row["profile__event_timestamp"]) for row in actual] == [(None, None), (3, START), (None, None)]


@on_engines(spark=False)
def test_null_spine_key_or_time_gives_null_features_and_keeps_the_row(engine: Engine) -> None:
    rows = [feature_row(START, f_int=3), {**feature_row(START, f_int=9), "user_id": None}]
    spine = spine_rows(START, None) + [{"id": 2, "user_id": None, "shop": "1", "at": START}]
    assert [(row["id"], row["f_int"]) for row in one_view(engine, rows, spine)] == [(0, 3), (1, None), (2, None)]


@on_engines(spark=False)
def test_duplicate_spine_rows_are_all_kept_in_order(engine: Engine) -> None:
    spine = [{"id": i, "user_id": 1, "shop": "1", "at": at} for i, at in [(3, START), (1, START), (3, START), (2, START - 1), (3, START)]]
    actual = one_view(engine, [feature_row(START, f_int=4)], spine)
    assert [(row["id"], row["f_int"]) for row in actual] == [(3, 4), (1, 4), (3, 4), (2, None), (3, 4)]


@on_engines(spark=False)
def test_composite_keys_never_collide(engine: Engine) -> None:
    # Concatenated, (1, '12') and (11, '2') would both read '112'.
    engine.load("pairs", PAIR_COLUMNS, [{"user_id": 1, "shop": "12", "ts": START, "g_value": 1.0}, {"user_id": 11, "shop": "2", "ts": START, "g_value": 2.0}])
    spine = [
        {"id": 0, "user_id": 1, "shop": "12", "at": START},
        {"id": 1, "user_id": 11, "shop": "2", "at": START},
        {"id": 2, "user_id": 1, "shop": "2", "at": START},
        {"id": 3, "user_id": 11, "shop": "12", "at": START},
        {"id": 4, "user_id": 1, "shop": None, "at": START},
    ]
    engine.load("spine", SPINE_COLUMNS, spine)
    actual = run_join(engine, [spec(engine, "pairs", ["user_id", "shop"], ["g_value"])])
    assert [row["g_value"] for row in actual] == [1.0, 2.0, None, None, None]


TIME_TYPES = ["timestamp", "timestamptz", "timestamp_ns", "timestamptz_ns"]
# PostgreSQL and Spark have no nanosecond timestamps; on Spark, naive against zoned.
TIME_TYPE_CASES = [
    (engine, spine_type, view_type)
    for engine in ("duckdb", "default", "postgres", "spark")
    for spine_type in TIME_TYPES
    for view_type in TIME_TYPES
    if engine in ("duckdb", "default") or ("_ns" not in spine_type + view_type and (engine == "postgres" or spine_type != view_type))
]


@pytest.mark.parametrize(("engine", "spine_type", "view_type"), TIME_TYPE_CASES, indirect=["engine"])
def test_timestamp_types_compare_as_the_same_utc_instant(engine: Engine, spine_type: str, view_type: str) -> None:
    engine.load("profile", {**PROFILE_COLUMNS, "ts": view_type}, [feature_row(START, f_int=1), feature_row(START + HOUR, f_int=2)])
    engine.load("spine", {**SPINE_COLUMNS, "at": spine_type}, spine_rows(START + HOUR - 1, START + HOUR, START + HOUR + DAY, START + HOUR + DAY + 1))
    views = [spec(engine, "profile", ["user_id"], ["f_int"], "1 day")]
    actual = run_join(engine, views, include_timestamps=True)
    assert [(row["f_int"], row["profile__event_timestamp"]) for row in actual] == [(1, START), (2, START + HOUR), (2, START + HOUR), (None, None)]


@on_engines(postgres=False, spark=False)
def test_offsets_are_converted_to_utc_and_naive_means_utc(engine: Engine, db: duckdb.DuckDBPyConnection) -> None:
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
    actual = run_join(engine, [spec(engine, "profile", ["user_id"], ["f_int"])], include_timestamps=True)
    assert [(row["f_int"], row["profile__event_timestamp"]) for row in actual] == [(None, None), (8, START + 10 * HOUR), (8, START + 10 * HOUR)]


@on_engines(postgres=False, spark=False)
def test_nanosecond_inputs_are_rounded_to_the_nearest_microsecond(engine: Engine, db: duckdb.DuckDBPyConnection) -> None:
    # Every rule compares microseconds: a row 400 ns after the spine time rounds onto it
    # (visible), one 600 ns after rounds to the next microsecond (not yet visible).
    db.execute(
        "create table profile as select * from (values"
        " (1::bigint, timestamp_ns '2026-01-01 10:00:00.000000400', 1::bigint),"
        " (2::bigint, timestamp_ns '2026-01-01 10:00:00.000000600', 2::bigint)) as t(user_id, ts, f_int)"
    )
    db.execute("create table spine as select * from (values (0, 1::bigint), (1, 2::bigint)) as t(id, user_id), (select timestamp '2026-01-01 10:00:00' as \"at\")")
    actual = run_join(engine, [spec(engine, "profile", ["user_id"], ["f_int"])], include_timestamps=True)
    assert [(row["f_int"], row["profile__event_timestamp"]) for row in actual] == [(1, START + 10 * HOUR), (None, None)]


@on_engines(spark=False)
def test_full_feature_names_prefix_the_view_and_avoid_collisions(engine: Engine) -> None:
    engine.load("profile", PROFILE_COLUMNS, [feature_row(START, f_int=1)])
    engine.load("other", PROFILE_COLUMNS, [feature_row(START, f_int=2)])
    engine.load("spine", SPINE_COLUMNS, spine_rows(START))
    views = [spec(engine, "profile", ["user_id"], ["f_int"]), {**spec(engine, "other", ["user_id"], ["f_int"])}]
    with pytest.raises(FeatureStoreError, match="f_int.*full_feature_names"):
        run_join(engine, views)
    actual = run_join(engine, views, full_feature_names=True, include_timestamps=True)
    assert actual == [
        {"id": 0, "profile__f_int": 1, "profile__event_timestamp": START, "other__f_int": 2, "other__event_timestamp": START}
    ]


@on_engines(spark=False)
def test_without_spine_columns_every_spine_column_comes_back(engine: Engine) -> None:
    actual = one_view(engine, [feature_row(START, f_int=1)], spine_rows(START), spine_columns=None)
    assert {"id": 0, "user_id": 1, "shop": "1", "at": START, "f_int": 1}.items() <= actual[0].items()


# --- what the DuckDB join cuts before its ASOF JOIN -------------------------------------
# It keeps, entity by entity, only the view rows no later than the entity's latest spine
# time and, with a TTL, no earlier than its earliest spine time less the TTL. Each case
# below sits on one edge of that cut; both implementations must agree on it.


@on_engines(spark=False)
def test_rows_later_than_an_entitys_latest_spine_time_are_never_matched_and_one_at_it_is(engine: Engine) -> None:
    rows = [feature_row(START, f_int=1), feature_row(START + HOUR, f_int=2), feature_row(START + HOUR + 1, f_int=3)]
    actual = one_view(engine, rows, spine_rows(START + HOUR, START), include_timestamps=True)
    assert [(row["f_int"], row["profile__event_timestamp"]) for row in actual] == [(2, START + HOUR), (1, START)]


@on_engines(spark=False)
def test_without_a_ttl_a_row_older_than_every_spine_time_still_matches(engine: Engine) -> None:
    actual = one_view(engine, [feature_row(START, f_int=5)], spine_rows(START + 400 * DAY, START + 500 * DAY))
    assert [row["f_int"] for row in actual] == [5, 5]


@on_engines(spark=False)
def test_each_entity_is_cut_by_its_own_spine_times(engine: Engine) -> None:
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
    assert [row["f_int"] for row in one_view(engine, rows, spine, ttl="1 day")] == [1, 3, None, None, 2, 4]


@on_engines(spark=False)
def test_a_spine_whose_every_time_is_null_keeps_its_rows_with_null_features(engine: Engine) -> None:
    actual = one_view(engine, [feature_row(START, f_int=1)], spine_rows(None, None), ttl="1 day")
    assert [(row["id"], row["f_int"]) for row in actual] == [(0, None), (1, None)]


@on_engines(spark=False)
def test_an_empty_spine_gives_no_rows(engine: Engine) -> None:
    assert one_view(engine, [feature_row(START, f_int=1)], [], ttl="1 day") == []


@on_engines(spark=False)
def test_a_spine_time_column_named_like_the_view_time_column_is_the_spine_one(engine: Engine) -> None:
    engine.load("profile", PROFILE_COLUMNS, [feature_row(START, f_int=1), feature_row(START + HOUR, f_int=2)])
    engine.load("spine", {"id": "bigint", "user_id": "bigint", "ts": "timestamp"}, [{"id": 0, "user_id": 1, "ts": START + HOUR - 1}, {"id": 1, "user_id": 1, "ts": START + HOUR}])
    sql = engine.macros.call("point_in_time_join_sql", engine.relation("spine"), "ts", [spec(engine, "profile", ["user_id"], ["f_int"], "1 day", "created")], False, True, ["id", "ts"])
    assert engine.query(sql) == [
        {"id": 0, "ts": START + HOUR - 1, "f_int": 1, "profile__event_timestamp": START},
        {"id": 1, "ts": START + HOUR, "f_int": 2, "profile__event_timestamp": START + HOUR},
    ]


@on_engines(spark=False)
def test_spine_rows_sharing_a_time_keep_their_order_across_entities_and_views(engine: Engine) -> None:
    engine.load("profile", PROFILE_COLUMNS, [feature_row(START, f_int=user, user_id=user) for user in (1, 2, 3)])
    engine.load("pairs", PAIR_COLUMNS, [{"user_id": user, "shop": "1", "ts": START, "g_value": user / 2} for user in (2, 3)])
    users = [3, 1, 2, 3, None, 2, 404, 1, 3]
    engine.load("spine", SPINE_COLUMNS, [{"id": i, "user_id": user, "shop": "1", "at": START} for i, user in enumerate(users)])
    views = [spec(engine, "profile", ["user_id"], ["f_int"], "1 hour"), spec(engine, "pairs", ["user_id", "shop"], ["g_value"], "1 hour")]
    actual = run_join(engine, views)
    known = {1, 2, 3}
    assert [(row["id"], row["f_int"], row["g_value"]) for row in actual] == [
        (i, user if user in known else None, user / 2 if user in (2, 3) else None) for i, user in enumerate(users)
    ]


@on_engines(spark=False)
def test_many_views_in_one_request_each_equal_the_reference(engine: Engine) -> None:
    # One relation under eight names and TTLs: every view's cut and match is its own.
    rng = random.Random(7)
    profile = random_profile(rng, users=20, rows=600)
    spine = random_spine(rng, 400, 24, SHOPS, spine_times(rng, [row["ts"] for row in profile if row["ts"] is not None], HOUR))
    engine.load("profile", PROFILE_COLUMNS, profile)
    engine.load("spine", SPINE_COLUMNS, spine)
    ttls = [None, "1 second", "10 minutes", "1 hour", "2 hours", "1 day", "2 days", "1 week"]
    views = [{**spec(engine, f"v{i}", ["user_id"], ["f_int", "f_str"], ttl, "created"), "relation": engine.relation("profile")} for i, ttl in enumerate(ttls)]

    actual = run_join(engine, views, full_feature_names=True, include_timestamps=True)

    seconds = {None: None, **{ttl: engine.macros.call("parse_duration", ttl, "test", "ttl")["seconds"] * SECOND for ttl in ttls if ttl}}
    expected = expected_rows(
        spine,
        [(f"v{i}", point_in_time(spine, "at", profile, ["user_id"], "ts", ["f_int", "f_str"], "created", seconds[ttl])) for i, ttl in enumerate(ttls)],
    )
    assert not mismatches(actual, expected), mismatches(actual, expected)
