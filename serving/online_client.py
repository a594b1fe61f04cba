"""Online reads: any number of entities and views in one Redis round trip.

A Lua script (EVALSHA; redis-py reloads it if the server lost it) resolves each
view's current version and reads every requested row in one atomic step, so a
response never mixes two snapshots. It also returns a version's metadata when the
client has not seen that version yet, so even a new snapshot costs no extra trip.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import struct
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import hiredis
import msgpack
import numpy as np
import pandas as pd
import redis

from serving.encoding import INT_KEY_WIDTH, RowDecoder, RowLayout, key_part, packed_int_keys
from serving.errors import EntityKeyError, OnlineStoreError
from serving.online import KeySpace, mask_password, redis_call
from serving.registry import FeatureView, Registry, python_type

PRESENT = "present"
NULL = "null"
MISSING = "missing"
OUTSIDE_TTL = "outside_ttl"

# ARGV: prefix, view count, then per view: name, known version, entity count, key
# width, then either all keys back to back in one argument (width > 0) or one key
# per argument (width 0). Returns per view: false (no snapshot) or
# {version, meta or false, {row or false...}}.
_READ_SCRIPT = """
local prefix = ARGV[1]
local pointers = prefix .. ':current'
local out = {}
local at = 3
for v = 1, tonumber(ARGV[2]) do
  local name, known, count, width = ARGV[at], ARGV[at + 1], tonumber(ARGV[at + 2]), tonumber(ARGV[at + 3])
  at = at + 4
  local current = redis.call('HGET', pointers, name)
  if not current then
    out[v] = false
  else
    local version = string.match(current, '^%d+')
    local base = prefix .. ':' .. name .. ':' .. version
    local meta = false
    if version ~= known then
      meta = redis.call('GET', base .. ':meta')
    end
    base = base .. ':'
    local names = {}
    if width > 0 then
      local packed = ARGV[at]
      for i = 1, count do
        names[i] = base .. string.sub(packed, (i - 1) * width + 1, i * width)
      end
    else
      for i = 1, count do
        names[i] = base .. ARGV[at + i - 1]
      end
    end
    local rows = {}
    if count <= 4000 then
      if count > 0 then
        rows = redis.call('MGET', unpack(names))
      end
    else
      -- unpack() is bounded by Lua's C stack: big requests go in slices.
      for first = 1, count, 4000 do
        local part = redis.call('MGET', unpack(names, first, math.min(first + 3999, count)))
        for i = 1, #part do
          rows[first + i - 1] = part[i]
        end
      end
    end
    out[v] = {version, meta, rows}
  end
  at = at + (width > 0 and 1 or count)
end
return out
"""

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
    types: dict[str, type | None]  # entity key -> the Python type its values must have, if known
    positions: dict[tuple[str, RowDecoder], list[int]] = field(default_factory=dict)  # (view, decoder) -> features' row slots


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
        self._idle: list[redis.connection.AbstractConnection] = []
        self._pid = os.getpid()

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
            types = {key: python_type(view.entity_types.get(key)) for view, _, _ in views for key in view.entity}
            plan = _Request(views, entity_columns, types)
            self._requests[cache_key] = plan
        return plan

    def get_online_features(
        self, features: Sequence[str], entity_rows: Sequence[Mapping[str, Any]], full_feature_names: bool = False
    ) -> OnlineResponse:
        plan = self._plan(features, full_feature_names)
        columns = self._entity_columns(plan, entity_rows)
        count = len(entity_rows)
        args: list[Any] = [self.keys.prefix, len(plan.views)]
        for view, _, _ in plan.views:
            args += [view.name, self._known.get(view.name, ""), count]
            entity = view.entity
            if len(entity) == 1 and plan.types[entity[0]] is int:
                args += [INT_KEY_WIDTH, _int_keys(entity[0], columns[entity[0]])]
            elif len(entity) == 1:
                args.append(0)
                args += [key_part(value) for value in columns[entity[0]]]
            else:
                args.append(0)
                args += [b"".join([key_part(value) for value in values]) for values in zip(*(columns[name] for name in entity))]
        replies = redis_call(self.url, self._evalsha, args)
        response = OnlineResponse(columns)
        for (view, names, outputs), reply in zip(plan.views, replies):
            self._fill(plan, response, view, names, outputs, reply)
        return response

    def _evalsha(self, args: list[Any]) -> Any:
        """EVALSHA packed by hiredis in one call, on a connection this client keeps between
        reads: redis-py's argument checks and pool bookkeeping cost more than the read itself
        for a single entity."""
        command = hiredis.pack_command(("EVALSHA", self._sha, 0, *args))
        if self._pid != os.getpid():
            # A forked child must not share its parent's sockets.
            self._idle.clear()
            self._pid = os.getpid()
        try:
            connection = self._idle.pop()  # list.pop and append are atomic: safe across threads
        except IndexError:
            connection = self.client.connection_pool.get_connection()
        loaded = reconnected = False
        try:
            while True:
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
                    # A connection the server closed while idle: one fresh try (send reconnects).
                    connection.disconnect()
                    if reconnected:
                        raise
                    reconnected = True
        except BaseException:
            # A reply may be left unread; the next read must not get it.
            connection.disconnect()
            raise
        finally:
            self._idle.append(connection)

    def _fill(self, plan: _Request, response: OnlineResponse, view: FeatureView, names: list[str], outputs: list[str], reply: Any) -> None:
        if not reply:
            raise OnlineStoreError(
                f"feature view '{view.name}' has no online snapshot under prefix '{self.keys.prefix}' at {mask_password(self.url)}; run materialize first"
            )
        version, meta, blobs = reply
        decoder = self._decoder(view.name, version.decode(), meta)
        positions = plan.positions.get((view.name, decoder))
        if positions is None:
            positions = plan.positions[(view.name, decoder)] = [decoder.layout.features.index(name) for name in names]
        stamps, columns, nulls = decoder.columns(blobs, positions)
        if None in stamps:
            base = [MISSING if blob is None else OUTSIDE_TTL if stamp is None else PRESENT for blob, stamp in zip(blobs, stamps)]
        else:
            base = [PRESENT] * len(blobs)
        for output, column, nulled in zip(outputs, columns, nulls):
            response.columns[output] = column
            statuses = response.statuses[output] = list(base)
            for row in nulled:
                statuses[row] = NULL
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

    def _entity_columns(self, plan: _Request, entity_rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
        """The entity key columns of the request; checked in bulk, and row by row only to name a fault."""
        try:
            columns = {name: [row[name] for row in entity_rows] for name in plan.entity_columns}
        except (KeyError, TypeError):
            self._check_rows(plan, entity_rows)
            raise
        if entity_rows and set(map(len, entity_rows)) != {len(plan.entity_columns)}:
            self._check_rows(plan, entity_rows)
        for name, wanted in plan.types.items():
            if wanted is not None and not set(map(type, columns[name])) <= {wanted}:
                self._check_rows(plan, entity_rows)
        return columns

    def _check_rows(self, plan: _Request, entity_rows: Sequence[Mapping[str, Any]]) -> None:
        expected = set(plan.entity_columns)
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
            for key, wanted in plan.types.items():
                value = row[key]
                if wanted is None:
                    continue
                if type(value) is not wanted and not (wanted is int and isinstance(value, np.integer)):
                    raise EntityKeyError(
                        f"entity row {index}: {key}={value!r} is a {type(value).__name__}; {key} needs a {wanted.__name__}"
                    )


def _int_keys(name: str, values: list[Any]) -> bytes:
    try:
        return packed_int_keys(values)
    except struct.error as error:
        raise EntityKeyError(f"entity key {name} holds a value outside the 64-bit integer range: {error}") from error
