"""Which Redis servers hold the online store, and raw connections to each.

A URL names one node (`redis://`, `rediss://`, `unix://`, password and db in the URL)
or a Redis Cluster (`redis+cluster://host:port[,host:port...]`, optionally with
`user:password@` before the hosts). Everything above this module sees `Nodes`: the
servers to talk to, which one holds the control keys, and which one holds each row.
One node is a cluster of one, so the exporter and the reader have a single code path.
"""

from __future__ import annotations

import os
import re
import threading
from collections import defaultdict
from typing import Any, Sequence
from urllib.parse import unquote

import redis
from redis.cluster import ClusterNode, RedisCluster

from serving.errors import OnlineStoreError
from serving.online.keys import HASH_SLOTS, slot, slots

DEFAULT_URL = "redis://localhost:6379/0"
DEFAULT_PREFIX = "fs"
CLUSTER_SCHEMES = ("redis+cluster://", "rediss+cluster://")
CONNECT_TIMEOUT = 2.0
COMMAND_TIMEOUT = 30.0
# Any server error that means "ask the cluster where things are now" rather than a bug.
TOPOLOGY_ERRORS = (redis.ConnectionError, redis.TimeoutError, redis.exceptions.ClusterDownError)
_MOVED = ("MOVED", "ASK", "CLUSTERDOWN", "TRYAGAIN", "non local key", "READONLY", "LOADING", "MASTERDOWN")


def resolve_url(redis_url: str | None) -> str:
    return redis_url or os.environ.get("REDIS_URL") or DEFAULT_URL


def resolve_prefix(prefix: str | None) -> str:
    return prefix or os.environ.get("FEATURE_STORE_REDIS_PREFIX") or DEFAULT_PREFIX


def mask_password(url: str) -> str:
    """The URL as it may be shown in a message: any password replaced by ***."""
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)


def is_cluster_url(url: str) -> bool:
    return url.startswith(CLUSTER_SCHEMES)


def unreachable(url: str, error: Exception) -> OnlineStoreError:
    return OnlineStoreError(f"cannot reach Redis at {mask_password(url)}: {error}")


def redis_call(url: str, action: Any, *args: Any, **kwargs: Any) -> Any:
    """Runs `action`, turning connection failures into an OnlineStoreError naming the server."""
    try:
        return action(*args, **kwargs)
    except (redis.ConnectionError, redis.TimeoutError, redis.exceptions.ClusterError) as error:
        raise unreachable(url, error) from error
    except redis.exceptions.InvalidResponse as error:
        # Something answers at that address, but not in the Redis protocol (an HTTP server, say).
        raise OnlineStoreError(
            f"the server at {mask_password(url)} does not speak the Redis protocol ({error}); check the URL's host and port"
        ) from error
    except redis.ResponseError as error:
        if str(error).startswith("WRONGPASS") or "NOAUTH" in str(error):
            raise OnlineStoreError(f"Redis at {mask_password(url)} refused the credentials: {error}") from error
        if "DB index is out of range" in str(error):
            raise OnlineStoreError(
                f"Redis at {mask_password(url)} has no database {_db_index(url)} ({error}); "
                "use a db index the server has (0 to 15 unless its `databases` setting says more)"
            ) from error
        raise


def _db_index(url: str) -> str:
    """The db number a redis:// URL selects (its path, or ?db=), for messages."""
    match = re.search(r"[?&]db=(\d+)", url) or re.search(r"://[^/]*/(\d+)", url)
    return match.group(1) if match else "?"


def is_topology_error(error: Exception) -> bool:
    """A reply or failure that a fresh look at the cluster (and a retry) can cure."""
    return isinstance(error, TOPOLOGY_ERRORS) or (isinstance(error, redis.ResponseError) and str(error).startswith(_MOVED)) or any(
        marker in str(error) for marker in ("non local key",)
    )


def _cluster(url: str) -> RedisCluster:
    scheme, _, rest = url.partition("://")
    credentials, _, hosts = rest.rpartition("@")
    username, _, password = credentials.partition(":") if credentials else ("", "", "")
    nodes = []
    for part in hosts.strip("/").split(","):
        host, _, port = part.strip().rpartition(":")
        if not host or not port.isdigit():
            raise OnlineStoreError(
                f"bad Redis Cluster URL {mask_password(url)}: '{part}' is not host:port; "
                "use redis+cluster://host:port[,host:port...]"
            )
        nodes.append(ClusterNode(host, int(port)))
    try:
        return RedisCluster(
            startup_nodes=nodes,
            username=unquote(username) or None,
            password=unquote(password) or None,
            ssl=scheme.startswith("rediss"),
            socket_connect_timeout=CONNECT_TIMEOUT,
            socket_timeout=COMMAND_TIMEOUT,
            decode_responses=False,
        )
    except (redis.exceptions.RedisClusterException, redis.ConnectionError, redis.TimeoutError) as error:
        raise unreachable(url, error) from error


def connect(url: str) -> redis.Redis | RedisCluster:
    """A pooled client for the URL: redis.Redis for one node, RedisCluster for a cluster."""
    if is_cluster_url(url):
        return _cluster(url)
    try:
        return redis.Redis.from_url(
            url,
            socket_connect_timeout=CONNECT_TIMEOUT,
            socket_timeout=COMMAND_TIMEOUT,
            health_check_interval=30,
            decode_responses=False,
        )
    except ValueError as error:
        raise OnlineStoreError(f"bad Redis URL {mask_password(url)}: {error}") from error


class Nodes:
    """The servers of the online store, addressed by name ("host:port", or "" for one node).

    Raw connections are kept per server between calls (a list per server: pop and
    append are atomic, so threads never share one) because a pool's bookkeeping costs
    more than a one-entity read."""

    def __init__(self, url: str, client: redis.Redis | RedisCluster) -> None:
        self.url = url
        self.client = client
        self.cluster = isinstance(client, RedisCluster)
        self._idle: dict[str, list[Any]] = defaultdict(list)
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._owners: list[str] | None = None

    def control(self, tag: str) -> str:
        """The server holding the control keys, whose hash tag is `tag`."""
        return self._slot_owners()[slot(tag.encode())] if self.cluster else ""

    def of_slot(self, number: int) -> str:
        if not self.cluster:
            return ""
        node = self.client.nodes_manager.get_node_from_slot(number)
        if node is None:
            raise OnlineStoreError(f"no Redis Cluster node at {mask_password(self.url)} serves slot {number}")
        return str(node.name)

    def group(self, keys: Sequence[bytes]) -> dict[str, list[int]]:
        """Positions of `keys` (entity keys) per server holding their rows."""
        if not self.cluster:
            return {"": list(range(len(keys)))}
        owners = self._slot_owners()
        grouped: dict[str, list[int]] = {}
        for position, number in enumerate(slots(keys)):
            owner = owners[number]
            if owner in grouped:
                grouped[owner].append(position)
            else:
                grouped[owner] = [position]
        return grouped

    def _slot_owners(self) -> list[str]:
        if self._owners is None:
            self._owners = [self.of_slot(number) for number in range(HASH_SLOTS)]
        return self._owners

    def redis_for(self, name: str) -> redis.Redis:
        """A plain client of one server (for commands that name no row)."""
        if not self.cluster:
            return self.client
        node = self.client.get_node(node_name=name)
        if node is None:
            raise OnlineStoreError(f"Redis Cluster node {name} is not part of {mask_password(self.url)} any more")
        return self.client.get_redis_connection(node)

    def refresh(self) -> None:
        """Forget connections and, in a cluster, ask it again which node serves what."""
        with self._lock:
            for connections in self._idle.values():
                for connection in connections:
                    connection.disconnect()
            self._idle.clear()
            if self.cluster:
                self._owners = None
                self.client.nodes_manager.initialize()

    def connection(self, name: str) -> Any:
        if self._pid != os.getpid():
            # A forked child must not share its parent's sockets.
            self._idle.clear()
            self._pid = os.getpid()
        try:
            return self._idle[name].pop()
        except IndexError:
            return self.redis_for(name).connection_pool.get_connection()

    def release(self, name: str, connection: Any) -> None:
        self._idle[name].append(connection)
