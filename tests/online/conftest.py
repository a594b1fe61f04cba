"""Online-store fixtures: every online test runs on one node and on a real Redis Cluster.

One node: the machine's Redis (127.0.0.1:6379, db 14), else an embedded one. Cluster:
3 masters and 3 replicas started for the session on free ports. Every test gets its own
key prefix, deleted afterwards, so tests never see each other's keys."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Iterator

import pytest
import redis

from online_checks import drop_prefix
from serving.embedded_redis import EmbeddedCluster, embedded_redis
from serving.online.connection import connect
from serving.store import FeatureStore

LOCAL_URL = "redis://127.0.0.1:6379/14"


def _answers(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5)
    try:
        return bool(client.ping())
    except (redis.ConnectionError, redis.TimeoutError):
        return False
    finally:
        client.close()


@pytest.fixture(scope="session")
def embedded_url() -> Iterator[str]:
    with embedded_redis() as url:
        yield url


@pytest.fixture(scope="session")
def cluster_url() -> Iterator[str]:
    with EmbeddedCluster(masters=3, replicas_per_master=1) as cluster:
        yield cluster.url


@pytest.fixture(scope="session", params=["node", "cluster"])
def redis_url(request: pytest.FixtureRequest) -> str:
    """One node (the machine's Redis when it answers, else the embedded server), then a cluster."""
    if request.param == "cluster":
        return str(request.getfixturevalue("cluster_url"))
    if _answers(LOCAL_URL):
        return LOCAL_URL
    return str(request.getfixturevalue("embedded_url"))


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    name = f"fstest-{uuid.uuid4().hex[:12]}"
    yield name
    drop_prefix(redis_url, name)


@pytest.fixture
def store(built_project: Path, redis_url: str, prefix: str) -> FeatureStore:
    return FeatureStore(built_project, redis_url=redis_url, redis_prefix=prefix)


@pytest.fixture
def raw(redis_url: str) -> Iterator[redis.Redis]:
    """A plain client of the same store (a cluster client in a cluster), to look at keys."""
    client = connect(redis_url)
    yield client
    client.close()
