"""The Redis side shared by the exporter and the reader: connection and key space.

Key space, for prefix P and view V (one version = one complete snapshot of a view):

    P:current               hash  V -> "<version>", the version readers use
    P:version_counter       int   source of version numbers
    P:V:versions            set   every version written, finished or not (for cleanup)
    P:V:<version>:meta      str   msgpack: row layout, entity keys, as_of, created
    P:V:<version>:index     list  msgpack arrays of entity key bytes, one per written batch
    P:V:<version>:<key>     str   row blob of the entity whose key bytes are <key>

One string per entity lets a reader fetch any number of rows with one MGET. Entity
key bytes start with a type tag byte (0x01, 0x02), so they never read as "meta" or
"index". The exporter pushes a batch's keys onto the index before it writes the
batch, so every row key of a version, even a half-written one, is listed there:
dropping a version reads its index and UNLINKs in big batches, never SCANs.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

import redis

from serving.errors import OnlineStoreError

DEFAULT_URL = "redis://localhost:6379/0"
DEFAULT_PREFIX = "fs"


def resolve_url(redis_url: str | None) -> str:
    return redis_url or os.environ.get("REDIS_URL") or DEFAULT_URL


def resolve_prefix(prefix: str | None) -> str:
    return prefix or os.environ.get("FEATURE_STORE_REDIS_PREFIX") or DEFAULT_PREFIX


def mask_password(url: str) -> str:
    """The URL as it may be shown in a message: any password replaced by ***."""
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)


def connect(url: str, connect_timeout: float = 2.0, timeout: float = 30.0) -> redis.Redis:
    """A pooled client (redis://, rediss://, unix://; password and db from the URL)."""
    try:
        return redis.Redis.from_url(
            url,
            socket_connect_timeout=connect_timeout,
            socket_timeout=timeout,
            health_check_interval=30,
            decode_responses=False,
        )
    except ValueError as error:
        raise OnlineStoreError(f"bad Redis URL {mask_password(url)}: {error}") from error


def unreachable(url: str, error: Exception) -> OnlineStoreError:
    return OnlineStoreError(f"cannot reach Redis at {mask_password(url)}: {error}")


@dataclass(frozen=True)
class KeySpace:
    prefix: str

    @property
    def current(self) -> str:
        return f"{self.prefix}:current"

    @property
    def version_counter(self) -> str:
        return f"{self.prefix}:version_counter"

    def versions(self, view: str) -> str:
        return f"{self.prefix}:{view}:versions"

    def meta(self, view: str, version: int | str) -> str:
        return f"{self.prefix}:{view}:{version}:meta"

    def index(self, view: str, version: int | str) -> str:
        return f"{self.prefix}:{view}:{version}:index"

    def rows(self, view: str, version: int | str) -> bytes:
        """The start of every row key of a version; the entity key bytes follow it."""
        return f"{self.prefix}:{view}:{version}:".encode()


def pointer(version: int) -> str:
    return str(version)


def parse_pointer(value: bytes | str) -> int:
    text = value.decode() if isinstance(value, bytes) else value
    return int(text.partition(":")[0])


def redis_call(url: str, action: Any, *args: Any, **kwargs: Any) -> Any:
    """Runs `action`, turning connection failures into an OnlineStoreError naming the server."""
    try:
        return action(*args, **kwargs)
    except (redis.ConnectionError, redis.TimeoutError) as error:
        raise unreachable(url, error) from error
