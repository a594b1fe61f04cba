"""Freshness of the online store: which snapshot each view serves, from when, and how old it is."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Sequence

import msgpack
import redis
from redis.cluster import RedisCluster

from serving.online.keys import KeySpace


@dataclass(frozen=True)
class ViewStatus:
    view: str
    version: int | None  # None: never materialized under this prefix
    as_of: dt.datetime | None  # the snapshot's time (naive UTC)
    exported_at: dt.datetime | None  # when the export wrote it (UTC)
    entities: int | None
    age_seconds: float | None  # now - as_of: how far behind the present the values are


def online_status(client: redis.Redis | RedisCluster, keys: KeySpace, views: Sequence[str]) -> list[ViewStatus]:
    pointers = {name.decode(): int(value) for name, value in client.hgetall(keys.current).items()}
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    statuses = []
    for view in views:
        version = pointers.get(view)
        raw = client.get(keys.meta(view, version)) if version is not None else None
        if raw is None:
            statuses.append(ViewStatus(view, version, None, None, None, None))
            continue
        meta = msgpack.unpackb(raw)
        as_of = dt.datetime.fromisoformat(meta["as_of"])
        exported = dt.datetime.fromisoformat(meta["created"]).replace(tzinfo=None)
        statuses.append(ViewStatus(view, version, as_of, exported, meta.get("entities"), (now - as_of).total_seconds()))
    return statuses
