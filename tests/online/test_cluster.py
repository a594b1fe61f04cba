"""What only a Redis Cluster has: rows spread over every node, one round trip per node, failover.

The rest of the online suite runs on a cluster too (tests/online/conftest.py); these tests
start clusters of their own where they kill nodes or count commands per node."""

from __future__ import annotations

import datetime as dt
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import redis

from online_checks import assert_online_equals_offline, same_response
from serving.embedded_redis import EmbeddedCluster
from serving.errors import OnlineStoreError
from serving.store import FeatureStore

AS_OF = dt.datetime(2026, 2, 5, 12)
READ = ["user_features:total_purchases", "user_purchase_windows:spend_30d"]
USERS = [{"user_id": user} for user in range(1, 301)]


@pytest.fixture(scope="module")
def cluster() -> Iterator[EmbeddedCluster]:
    with EmbeddedCluster(masters=3, replicas_per_master=1) as started:
        yield started


@pytest.fixture
def cluster_store(built_project: Path, cluster: EmbeddedCluster) -> FeatureStore:
    store = FeatureStore(built_project, redis_url=cluster.url, redis_prefix="clustertest")
    store.materialize(as_of=AS_OF, feature_views=["user_features", "user_purchase_windows"], progress=False)
    return store


def node_client(port: int) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=port)


def calls(port: int) -> dict[str, int]:
    client = node_client(port)
    try:
        return {name.removeprefix("cmdstat_"): stats["calls"] for name, stats in client.info("commandstats").items()}
    finally:
        client.close()


def test_a_views_rows_spread_over_every_master(cluster_store: FeatureStore, cluster: EmbeddedCluster) -> None:
    counts = []
    for node in cluster.masters:
        client = node_client(node.port)
        try:
            counts.append(sum(1 for key in client.scan_iter(match="clustertest:user_features:*", count=1000)))
        finally:
            client.close()
    total = sum(counts)
    assert total > 200
    assert all(count > total / 6 for count in counts), counts


def test_a_read_of_many_entities_is_one_evalsha_per_master_and_nothing_else(cluster_store: FeatureStore, cluster: EmbeddedCluster) -> None:
    cluster_store.get_online_features(READ, USERS)  # learns the versions and loads the script
    ports = [node.port for node in cluster.masters]
    before = {port: calls(port) for port in ports}
    cluster_store.get_online_features(READ, USERS)
    after = {port: calls(port) for port in ports}
    for port in ports:
        # The counting client's own HELLO and INFO are the other commands seen; reads inside the script count as
        # get, mget (views read with the same keys: one per entity) and hget.
        sent = {name: count - before[port].get(name, 0) for name, count in after[port].items() if count != before[port].get(name, 0)}
        assert sent.pop("evalsha") == 1, sent
        assert set(sent) <= {"get", "mget", "hget", "info", "hello"}, sent


def test_online_equals_offline_on_a_cluster(cluster_store: FeatureStore) -> None:
    assert_online_equals_offline(cluster_store, "user_purchase_windows", USERS, AS_OF)
    assert_online_equals_offline(cluster_store, "user_features", USERS, AS_OF)


def test_killing_a_master_during_reads_never_gives_a_wrong_value(built_project: Path) -> None:
    with EmbeddedCluster(masters=3, replicas_per_master=1) as own:
        store = FeatureStore(built_project, redis_url=own.url, redis_prefix="failover")
        store.materialize(as_of=AS_OF, feature_views=["user_features", "user_purchase_windows"], progress=False)
        expected = store.get_online_features(READ, USERS).to_dict()
        wrong: list[dict[str, Any]] = []
        errors: list[Exception] = []
        served = {"before": 0, "after": 0}
        phase = "before"
        done = threading.Event()

        def read_forever() -> None:
            reader = FeatureStore(built_project, redis_url=own.url, redis_prefix="failover")
            while not done.is_set():
                try:
                    got = reader.get_online_features(READ, USERS).to_dict()
                except OnlineStoreError as error:
                    errors.append(error)
                    continue
                if not same_response(got, expected):
                    wrong.append(got)
                served[phase] += 1

        thread = threading.Thread(target=read_forever)
        thread.start()
        try:
            deadline = time.monotonic() + 60
            while served["before"] < 5 and time.monotonic() < deadline:
                time.sleep(0.05)
            own.kill_master()
            phase = "after"
            time.sleep(1.0)
        finally:
            done.set()
            thread.join()
        assert not wrong, wrong[:1]
        # Failover is retried inside a read; any error that still escapes names the cluster.
        assert all("Redis Cluster at redis+cluster://" in str(error) for error in errors), errors[:3]
        assert served["before"] > 0 and served["after"] > 0, served
        assert same_response(store.get_online_features(READ, USERS).to_dict(), expected)
