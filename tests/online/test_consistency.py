"""After materialize(as_of), online values equal get_historical_features at as_of, exactly."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest

from serving.store import FeatureStore
from online_checks import assert_online_equals_offline

MISSING_USER = 10**9


def warehouse_rows(store: FeatureStore, sql: str) -> list[tuple[Any, ...]]:
    with store.offline.engine.session() as session:
        return [tuple(row.values()) for row in session.query(sql).to_pylist()]


def gap_in_user_features(store: FeatureStore) -> tuple[int, dt.datetime]:
    """A user and a snapshot time with no later snapshot for over a day (its TTL)."""
    return warehouse_rows(
        store,
        """
        select user_id, timezone('UTC', event_timestamp) from (
            select user_id, event_timestamp,
                lead(event_timestamp) over (partition by user_id order by event_timestamp) as next_at
            from user_features)
        where next_at > event_timestamp + interval 1 day
        order by event_timestamp, user_id limit 1
        """,
    )[0]


def sample_users(store: FeatureStore, count: int, seed: int) -> list[dict[str, Any]]:
    users = sorted(row[0] for row in warehouse_rows(store, "select distinct user_id from user_features"))
    chosen = random.Random(seed).sample(users, count)
    return [{"user_id": user} for user in chosen] + [{"user_id": MISSING_USER}]


def sample_pairs(store: FeatureStore, count: int, seed: int) -> list[dict[str, Any]]:
    pairs = sorted(warehouse_rows(store, "select distinct user_id, category from user_category_windows"))
    chosen = random.Random(seed).sample(pairs, count)
    return [{"user_id": u, "category": c} for u, c in chosen] + [{"user_id": chosen[0][0], "category": "no-such-category"}]


USER_VIEWS = ["user_features", "user_purchase_windows", "user_last_purchase", "user_spend_trend"]


def test_online_equals_offline_at_event_time_ttl_boundary_and_in_between(store: FeatureStore) -> None:
    user, snapshot_at = gap_in_user_features(store)
    moments = {
        "exactly at an event time": snapshot_at,
        "exactly at the TTL boundary": snapshot_at + dt.timedelta(days=1),
        "a microsecond past the TTL": snapshot_at + dt.timedelta(days=1, microseconds=1),
        "between events": snapshot_at + dt.timedelta(days=9, hours=7, minutes=13),
    }
    for index, (label, as_of) in enumerate(moments.items()):
        store.materialize(as_of=as_of, feature_views=[*USER_VIEWS, "user_category_windows"], progress=False)
        rows = sample_users(store, 40, seed=index) + [{"user_id": user}]
        for view in USER_VIEWS:
            assert_online_equals_offline(store, view, rows, as_of)
        assert_online_equals_offline(store, "user_category_windows", sample_pairs(store, 40, seed=index), as_of)


def test_the_ttl_boundary_is_inclusive_online_as_offline(store: FeatureStore) -> None:
    user, snapshot_at = gap_in_user_features(store)
    feature = ["user_features:total_purchases"]
    store.materialize(as_of=snapshot_at + dt.timedelta(days=1), feature_views=["user_features"], progress=False)
    assert store.get_online_features(feature, [{"user_id": user}]).statuses["total_purchases"] == ["present"]
    store.materialize(as_of=snapshot_at + dt.timedelta(days=1, microseconds=1), feature_views=["user_features"], progress=False)
    assert store.get_online_features(feature, [{"user_id": user}]).statuses["total_purchases"] == ["outside_ttl"]


@pytest.mark.parametrize("as_of", ["2026-02-01T00:00:00+00:00", "2026-02-01T01:00:00+01:00"])
def test_as_of_with_a_time_zone_means_that_instant(store: FeatureStore, as_of: str) -> None:
    store.materialize(as_of=as_of, feature_views=["user_purchase_windows"], progress=False)
    assert_online_equals_offline(store, "user_purchase_windows", sample_users(store, 30, seed=7), dt.datetime(2026, 2, 1))


@pytest.mark.parametrize("incremental", [False, True], ids=["full", "incremental"])
def test_an_export_streamed_in_small_batches_serves_the_same_values(store: FeatureStore, incremental: bool) -> None:
    """The exporter holds one warehouse batch at a time; 37 rows per batch crosses many
    batch boundaries (index entries, incremental comparisons) on the sample data."""
    from serving.online.export import Exporter

    as_of = dt.datetime(2026, 2, 3, 4, 5, 6)
    views = [store.get_feature_view("user_purchase_windows"), store.get_feature_view("user_category_windows")]
    if incremental:
        store.materialize(as_of=as_of - dt.timedelta(days=2), feature_views=[view.name for view in views], progress=False)
    exporter = Exporter(store._online_nodes(), store._keys, store.offline, store._timing, progress=False, batch_entities=37)
    summary = exporter.materialize(views, as_of, incremental=incremental)
    whole = store.offline.snapshot(views[0], as_of).num_rows
    assert summary.view("user_purchase_windows").entities == whole > 37 * 3
    assert summary.view("user_purchase_windows").incremental is incremental
    users = sample_users(store, 60, seed=3)
    assert_online_equals_offline(store, "user_purchase_windows", users, as_of)
    pairs = [{"user_id": row["user_id"], "category": row["category"]} for row in store.offline.snapshot(views[1], as_of).to_pylist()[::7]]
    assert_online_equals_offline(store, "user_category_windows", pairs, as_of)
