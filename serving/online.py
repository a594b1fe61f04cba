"""The Redis side shared by the exporter and the reader: connection and key space.

Key space, for prefix P and view V (one version = one complete snapshot of a view):

    P:current               hash  V -> "<version>:<buckets>", the version readers use
    P:version_counter       int   source of version numbers
    P:V:versions            set   every version written, finished or not (for cleanup)
    P:V:<version>:meta      str   msgpack: row layout, entity keys, as_of, created, buckets
    P:V:<version>:b<i>      hash  entity key bytes -> row blob, for keys with crc32 % buckets == i

Entities live in hash buckets (~128 each) rather than one key per entity so a version
is a known, small set of keys: dropping an old or half-written version is a few
thousand UNLINKs instead of a SCAN over the whole key space.
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
ENTITIES_PER_BUCKET = 128


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

    def bucket(self, view: str, version: int | str, index: int) -> str:
        return f"{self.prefix}:{view}:{version}:b{index}"

    def version_keys(self, view: str, version: int | str, buckets: int) -> list[str]:
        return [self.meta(view, version), *(self.bucket(view, version, i) for i in range(buckets))]


def pointer(version: int, buckets: int) -> str:
    return f"{version}:{buckets}"


def parse_pointer(value: bytes | str) -> tuple[int, int]:
    text = value.decode() if isinstance(value, bytes) else value
    version, _, buckets = text.partition(":")
    return int(version), int(buckets)


def buckets_for(entities: int) -> int:
    return max(1, -(-entities // ENTITIES_PER_BUCKET))


def redis_call(url: str, action: Any, *args: Any, **kwargs: Any) -> Any:
    """Runs `action`, turning connection failures into an OnlineStoreError naming the server."""
    try:
        return action(*args, **kwargs)
    except (redis.ConnectionError, redis.TimeoutError) as error:
        raise unreachable(url, error) from error
