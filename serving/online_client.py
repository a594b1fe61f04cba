"""Online reads: any number of entities and views in one Redis round trip.

A Lua script (EVALSHA; redis-py reloads it if the server lost it) resolves each
view's current version and reads every requested row in one atomic step, so a
response never mixes two snapshots. It also returns a version's metadata when the
client has not seen that version yet, so even a new snapshot costs no extra trip.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import zlib
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import hiredis
import msgpack
import numpy as np
import pandas as pd
import redis

from serving.encoding import RowDecoder, RowLayout, key_part
from serving.errors import EntityKeyError, OnlineStoreError
from serving.online import KeySpace, mask_password, redis_call
from serving.registry import FeatureView, Registry

PRESENT = "present"
NULL = "null"
MISSING = "missing"
OUTSIDE_TTL = "outside_ttl"

# ARGV: prefix, view count, then per view: name, known version, entity count,
# then (crc32, key bytes) per entity. Returns per view: false (no snapshot) or
# {version, meta or false, row or false...}.
_READ_SCRIPT = """
local prefix = ARGV[1]
local pointers = prefix .. ':current'
local out = {}
local at = 3
for v = 1, tonumber(ARGV[2]) do
  local name, known, count = ARGV[at], ARGV[at + 1], tonumber(ARGV[at + 2])
  at = at + 3
  local current = redis.call('HGET', pointers, name)
  if not current then
    out[v] = false
  else
    local version, buckets = string.match(current, '^(%d+):(%d+)$')
    buckets = tonumber(buckets)
    local base = prefix .. ':' .. name .. ':' .. version
    local rows = {version, false}
    if version ~= known then
      rows[2] = redis.call('GET', base .. ':meta')
    end
    base = base .. ':b'
    for i = 1, count do
      rows[i + 2] = redis.call('HGET', base .. string.format('%d', tonumber(ARGV[at]) % buckets), ARGV[at + 1])
      at = at + 2
    end
    out[v] = rows
  end
end
return out
"""

_INT_TYPES = {"bigint", "integer", "int", "int8", "int4", "int2", "int64", "int32", "smallint", "tinyint", "hugeint", "ubigint", "uinteger", "long"}
_STR_TYPES = {"varchar", "text", "string", "char", "bpchar"}


def _python_type(data_type: str | None) -> type | None:
    base = (data_type or "").lower().split("(")[0].strip()
    if base in _INT_TYPES:
        return int
    if base in _STR_TYPES:
        return str
    return None


@dataclass
class OnlineResponse:
    """Columns in request order: entity keys first, then features (Feast's layout)."""

    columns: dict[str, list[Any]]
    statuses: dict[str, list[str]] = field(default_factory=dict)
    event_timestamps: dict[str, list[dt.datetime | None]] = field(default_factory=dict)

    def to_dict(self, include_metadata: bool = False) -> dict[str, list[Any]]:
        result = {name: list(values) for name, values in self.columns.items()}
        if include_metadata:
            for name in self.statuses:
                result[f"{name}__status"] = list(self.statuses[name])
                result[f"{name}__event_timestamp"] = list(self.event_timestamps[name])
        return result

    def to_df(self, include_metadata: bool = False) -> pd.DataFrame:
        return pd.DataFrame(self.to_dict(include_metadata))


@dataclass(frozen=True)
class _Request:
    views: list[tuple[FeatureView, list[str], list[str]]]  # view, its features, their output column names
    entity_columns: list[str]


class OnlineClient:
    def __init__(self, client: redis.Redis, url: str, keys: KeySpace, registry: Registry) -> None:
        self.client = client
        self.url = url
        self.keys = keys
        self.registry = registry
        self._sha = hashlib.sha1(_READ_SCRIPT.encode()).hexdigest()
        self._decoders: dict[tuple[str, str], RowDecoder] = {}
        self._known: dict[str, str] = {}
        self._requests: dict[tuple[tuple[str, ...], bool], _Request] = {}

    def _plan(self, features: Sequence[str], full_feature_names: bool) -> _Request:
        cache_key = (tuple(features), full_feature_names)
        plan = self._requests.get(cache_key)
        if plan is None:
            resolved = self.registry.resolve(features)
            views = [
                (view, names, [f"{view.name}__{name}" if full_feature_names else name for name in names])
                for view, names in resolved
            ]
            outputs = [name for _, _, names in views for name in names]
            duplicated = sorted({name for name in outputs if outputs.count(name) > 1})
            if duplicated:
                raise EntityKeyError(
                    f"feature name(s) {', '.join(duplicated)} come from more than one feature view; "
                    "ask for full_feature_names=True"
                )
            entity_columns = list(dict.fromkeys(key for view, _, _ in views for key in view.entity))
            plan = _Request(views, entity_columns)
            self._requests[cache_key] = plan
        return plan

    def get_online_features(
        self, features: Sequence[str], entity_rows: Sequence[Mapping[str, Any]], full_feature_names: bool = False
    ) -> OnlineResponse:
        plan = self._plan(features, full_feature_names)
        self._check_rows(plan, entity_rows)
        args: list[Any] = [self.keys.prefix, len(plan.views)]
        crc32 = zlib.crc32
        for view, _, _ in plan.views:
            args += [view.name, self._known.get(view.name, ""), len(entity_rows)]
            entity = view.entity
            if len(entity) == 1:
                keys = [key_part(row[entity[0]]) for row in entity_rows]
            else:
                keys = [b"".join([key_part(row[name]) for name in entity]) for row in entity_rows]
            for key in keys:
                args += (crc32(key), key)
        replies = redis_call(self.url, self._evalsha, args)
        columns: dict[str, list[Any]] = {name: [row[name] for row in entity_rows] for name in plan.entity_columns}
        response = OnlineResponse(columns)
        for (view, names, outputs), reply in zip(plan.views, replies):
            self._fill(response, view, names, outputs, reply, len(entity_rows))
        return response

    def _evalsha(self, args: list[Any]) -> Any:
        """EVALSHA on a pooled connection, packed by hiredis in one call: redis-py's own
        argument checks cost more than the read itself for a single entity."""
        command = hiredis.pack_command(("EVALSHA", self._sha, 0, *args))
        pool = self.client.connection_pool
        loaded = reconnected = False
        while True:
            connection = pool.get_connection()
            try:
                connection.send_packed_command([command])
                return connection.read_response()
            except redis.exceptions.NoScriptError:
                if loaded:
                    raise
                # A new, restarted or flushed server: load the script once, then ask again.
                self.client.script_load(_READ_SCRIPT)
                loaded = True
            except redis.ConnectionError:
                # A pooled connection the server closed while idle: one fresh try.
                connection.disconnect()
                if reconnected:
                    raise
                reconnected = True
            finally:
                pool.release(connection)

    def _fill(self, response: OnlineResponse, view: FeatureView, names: list[str], outputs: list[str], reply: Any, count: int) -> None:
        if not reply:
            raise OnlineStoreError(
                f"feature view '{view.name}' has no online snapshot under prefix '{self.keys.prefix}' at {mask_password(self.url)}; run materialize first"
            )
        version = reply[0].decode()
        decoder = self._decoder(view.name, version, reply[1])
        positions = [decoder.layout.features.index(name) for name in names]
        decode = decoder.decode
        rows = [None if blob is None else decode(blob) for blob in reply[2:]]
        stamps = [row[0] if row is not None else None for row in rows]
        base = [MISSING if row is None else OUTSIDE_TTL if row[0] is None else PRESENT for row in rows]
        found = [row[1] if row is not None and row[0] is not None else None for row in rows]
        for output, position in zip(outputs, positions):
            column = [None if values is None else values[position] for values in found]
            response.columns[output] = column
            response.statuses[output] = [NULL if value is None and status is PRESENT else status for status, value in zip(base, column)]
            response.event_timestamps[output] = stamps

    def _decoder(self, view: str, version: str, meta: bytes | None) -> RowDecoder:
        decoder = self._decoders.get((view, version))
        if decoder is None:
            if meta is None:
                # Another client instance's cache said it knew this version; ask again without it.
                meta = redis_call(self.url, self.client.get, self.keys.meta(view, version))
                if meta is None:
                    raise OnlineStoreError(f"version {version} of feature view '{view}' has no metadata; materialize again")
            decoder = RowDecoder(RowLayout.from_dict(msgpack.unpackb(meta)["layout"]))
            self._decoders[(view, version)] = decoder
        self._known[view] = version
        return decoder

    def _check_rows(self, plan: _Request, entity_rows: Sequence[Mapping[str, Any]]) -> None:
        expected = set(plan.entity_columns)
        types = {
            key: _python_type(view.entity_types.get(key)) for view, _, _ in plan.views for key in view.entity
        }
        for index, row in enumerate(entity_rows):
            if row.keys() != expected:
                missing = sorted(expected - row.keys())
                extra = sorted(set(row.keys()) - expected)
                problem = "; ".join(
                    part
                    for part in (
                        f"missing entity key(s) {', '.join(missing)}" if missing else "",
                        f"unexpected key(s) {', '.join(map(str, extra))}" if extra else "",
                    )
                    if part
                )
                raise EntityKeyError(f"entity row {index} {dict(row)!r}: {problem}; the requested views need exactly: {', '.join(plan.entity_columns)}")
            for key, wanted in types.items():
                value = row[key]
                if wanted is None:
                    continue
                if type(value) is not wanted and not (wanted is int and isinstance(value, np.integer)):
                    raise EntityKeyError(
                        f"entity row {index}: {key}={value!r} is a {type(value).__name__}; {key} needs a {wanted.__name__}"
                    )
