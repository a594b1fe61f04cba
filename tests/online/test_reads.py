"""Online reads: statuses, metadata, one round trip, and errors that name the bad value."""

from __future__ import annotations

import datetime as dt
import re
import threading
from pathlib import Path
from typing import Callable

import pytest
import redis

from serving.embedded_redis import embedded_redis, redis_url_or_embedded
from serving.errors import EntityKeyError, OnlineStoreError, UnknownFeatureError
from serving.store import FeatureStore

AS_OF = dt.datetime(2026, 2, 10, 12)


def snapshot_rows(store: FeatureStore, view: str) -> list[dict]:
    return store.offline.snapshot(store.get_feature_view(view), AS_OF).to_pylist()


def test_each_status_is_pinned_present_null_missing_outside_ttl(store: FeatureStore) -> None:
    store.materialize(as_of=AS_OF, feature_views=["user_features", "user_purchase_windows"], progress=False)
    windows = snapshot_rows(store, "user_purchase_windows")
    with_null = next(r for r in windows if r["event_timestamp"] is not None and r["stddev_amount_30d"] is None)
    fresh = next(r for r in windows if r["event_timestamp"] is not None and r["stddev_amount_30d"] is not None)
    stale = next(r for r in snapshot_rows(store, "user_features") if r["event_timestamp"] is None)
    rows = [{"user_id": fresh["user_id"]}, {"user_id": with_null["user_id"]}, {"user_id": 10**9}]
    response = store.get_online_features(["user_purchase_windows:stddev_amount_30d"], rows)
    assert response.statuses["stddev_amount_30d"] == ["present", "null", "missing"]
    assert response.to_dict()["stddev_amount_30d"] == [fresh["stddev_amount_30d"], None, None]
    assert response.event_timestamps["stddev_amount_30d"] == [fresh["event_timestamp"], with_null["event_timestamp"], None]
    ttl = store.get_online_features(["user_features:total_purchases"], [{"user_id": stale["user_id"]}])
    assert ttl.statuses["total_purchases"] == ["outside_ttl"]
    assert ttl.to_dict() == {"user_id": [stale["user_id"]], "total_purchases": [None]}


def test_response_has_entity_columns_then_features_and_metadata_columns(store: FeatureStore) -> None:
    store.materialize(as_of=AS_OF, feature_views=["user_category_windows", "user_features"], progress=False)
    pair = next(r for r in snapshot_rows(store, "user_category_windows") if r["event_timestamp"] is not None)
    rows = [{"user_id": pair["user_id"], "category": pair["category"]}]
    response = store.get_online_features(
        ["user_category_windows:category_spend_30d", "user_features:total_purchases"], rows, full_feature_names=True
    )
    assert list(response.to_dict()) == ["user_id", "category", "user_category_windows__category_spend_30d", "user_features__total_purchases"]
    assert response.to_dict()["user_category_windows__category_spend_30d"] == [pair["category_spend_30d"]]
    with_metadata = response.to_dict(include_metadata=True)
    assert with_metadata["user_category_windows__category_spend_30d__status"] == ["present"]
    assert with_metadata["user_category_windows__category_spend_30d__event_timestamp"] == [pair["event_timestamp"]]
    assert response.to_df().shape == (1, 4)


def test_a_read_of_many_entities_and_views_is_one_transaction(built_project: Path, embedded_url: str) -> None:
    store = FeatureStore(built_project, redis_url=embedded_url, redis_prefix="onetrip")
    store.materialize(as_of=AS_OF, feature_views=["user_features", "user_purchase_windows"], progress=False)
    features = ["user_features:total_purchases", "user_purchase_windows:spend_7d"]
    rows = [{"user_id": user} for user in range(100)]
    store.get_online_features(features, rows)  # learns the versions
    store.materialize(as_of=AS_OF + dt.timedelta(days=1), feature_views=["user_features"], progress=False)
    counter = redis.Redis.from_url(embedded_url)

    # A version this client has not seen: the transaction names it, the client reads its
    # metadata and reads again.
    assert calls_during(counter, lambda: store.get_online_features(features, rows)) == {"multi": 2, "hmget": 2, "mget": 2, "exec": 2, "get": 1}
    # Then one transaction: the pointers (one HMGET) and all 200 rows (one MGET).
    assert calls_during(counter, lambda: store.get_online_features(features, rows)) == {"multi": 1, "hmget": 1, "mget": 1, "exec": 1}


def calls_during(counter: redis.Redis, action: Callable[[], object]) -> dict[str, int]:
    before = command_calls(counter)
    action()
    after = command_calls(counter)
    return {name: calls - before.get(name, 0) for name, calls in after.items() if calls != before.get(name, 0) and name != "info"}


def command_calls(client: redis.Redis) -> dict[str, int]:
    return {name.removeprefix("cmdstat_"): stats["calls"] for name, stats in client.info("commandstats").items()}


def test_embedded_server_serves_a_whole_round_trip(built_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    with redis_url_or_embedded() as url:
        assert url.startswith("redis://127.0.0.1:")
        store = FeatureStore(built_project, redis_url=url)
        summary = store.materialize(as_of=AS_OF, feature_views=["product_popularity"], progress=False)
        product = next(r for r in snapshot_rows(store, "product_popularity") if r["event_timestamp"] is not None)
        got = store.get_online_features(["product_popularity:product_revenue_7d"], [{"product_id": product["product_id"]}])
        assert got.to_dict()["product_revenue_7d"] == [product["product_revenue_7d"]]
        assert summary.entities == len(snapshot_rows(store, "product_popularity"))
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(url, socket_connect_timeout=0.5).ping()


def test_redis_url_from_the_environment_wins_over_embedded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://example.invalid:6379/3")
    with redis_url_or_embedded() as url:
        assert url == "redis://example.invalid:6379/3"


@pytest.fixture
def loaded(store: FeatureStore) -> FeatureStore:
    store.materialize(as_of=AS_OF, feature_views=["user_features", "user_category_windows"], progress=False)
    return store


def test_unknown_view_names_it_and_the_valid_views(loaded: FeatureStore) -> None:
    with pytest.raises(UnknownFeatureError, match=r"'user_featurez'.*user_category_windows.*user_features"):
        loaded.get_online_features(["user_featurez:total_purchases"], [{"user_id": 1}])


def test_unknown_feature_names_it_and_the_view_features(loaded: FeatureStore) -> None:
    with pytest.raises(UnknownFeatureError, match=r"'total_purchase'.*total_purchases, avg_purchase_amount"):
        loaded.get_online_features(["user_features:total_purchase"], [{"user_id": 1}])


def test_missing_entity_key_names_it(loaded: FeatureStore) -> None:
    with pytest.raises(EntityKeyError, match=r"missing entity key\(s\) category.*user_id, category"):
        loaded.get_online_features(["user_category_windows:category_spend_30d"], [{"user_id": 1}])


def test_extra_entity_key_names_it(loaded: FeatureStore) -> None:
    with pytest.raises(EntityKeyError, match=r"unexpected key\(s\) product_id.*exactly: user_id"):
        loaded.get_online_features(["user_features:total_purchases"], [{"user_id": 1, "product_id": 2}])


@pytest.mark.parametrize("bad", ["1", 1.0, True, None])
def test_wrongly_typed_entity_key_names_the_value_and_the_type(loaded: FeatureStore, bad: object) -> None:
    what = "missing" if bad is None else f"a {type(bad).__name__}"
    with pytest.raises(EntityKeyError, match=rf"user_id={bad!r} is {what}; user_id needs an integer \(int, numpy integer or pandas Int64"):
        loaded.get_online_features(["user_features:total_purchases"], [{"user_id": bad}])


def test_string_key_of_composite_view_must_be_a_string(loaded: FeatureStore) -> None:
    with pytest.raises(EntityKeyError, match=r"category=7 is a int; category needs a string \(str\)"):
        loaded.get_online_features(["user_category_windows:category_spend_30d"], [{"user_id": 1, "category": 7}])


def test_unknown_view_to_materialize_lists_the_online_views(store: FeatureStore) -> None:
    with pytest.raises(UnknownFeatureError, match=r"'nope'.*online feature views: product_popularity"):
        store.materialize(as_of=AS_OF, feature_views=["nope"])


def test_view_never_materialized_says_so(store: FeatureStore) -> None:
    with pytest.raises(OnlineStoreError, match=r"'user_spend_trend' has no online snapshot.*materialize"):
        store.get_online_features(["user_spend_trend:spend_30d_minmax"], [{"user_id": 1}])


def test_redis_down_names_the_url_without_the_password(built_project: Path) -> None:
    with embedded_redis() as url:
        closed = url.replace("redis://", "redis://:s3cret@")
    store = FeatureStore(built_project, redis_url=closed)
    masked = closed.replace("s3cret", "***")
    with pytest.raises(OnlineStoreError, match=re.escape(f"cannot reach Redis at {masked}")) as raised:
        store.get_online_features(["user_features:total_purchases"], [{"user_id": 1}])
    assert "s3cret" not in str(raised.value)
    with pytest.raises(OnlineStoreError, match=re.escape(f"cannot reach Redis at {masked}")):
        store.materialize(as_of=AS_OF, feature_views=["user_features"], progress=False)


def test_a_read_past_the_scripts_mget_slice_returns_every_row_in_order(loaded: FeatureStore) -> None:
    rows = [{"user_id": user} for user in range(-4000, 4001)]  # the script MGETs 4000 keys at a time
    feature = ["user_features:total_purchases"]
    few = loaded.get_online_features(feature, rows[3990:4010]).to_dict()
    many = loaded.get_online_features(feature, rows).to_dict()
    assert many["user_id"] == list(range(-4000, 4001))
    assert many["total_purchases"][3990:4010] == few["total_purchases"]
    assert any(value is not None for value in few["total_purchases"][11:])


def test_integer_key_outside_64_bits_names_the_key(loaded: FeatureStore) -> None:
    with pytest.raises(EntityKeyError, match=r"entity key user_id holds a value outside the 64-bit integer range"):
        loaded.get_online_features(["user_features:total_purchases"], [{"user_id": 1}, {"user_id": 2**63}])


def test_threads_sharing_one_store_each_get_their_own_answers(loaded: FeatureStore) -> None:
    feature = ["user_features:total_purchases"]
    expected = {user: loaded.get_online_features(feature, [{"user_id": user}]).to_dict() for user in range(1, 41)}
    wrong: list[tuple[int, dict]] = []

    def read(offset: int) -> None:
        for step in range(200):
            user = 1 + (offset + step) % 40
            got = loaded.get_online_features(feature, [{"user_id": user}]).to_dict()
            if got != expected[user]:
                wrong.append((user, got))

    threads = [threading.Thread(target=read, args=(offset,)) for offset in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not wrong
    assert any(answer["total_purchases"] != [None] for answer in expected.values())
