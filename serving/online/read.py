"""Online reads: any number of entities and views in one round trip per server.

On one node a read is one transaction: MULTI, HMGET of the views' current versions,
one MGET of the rows of the versions this client saw last, EXEC. Pointers and rows
are read in one atomic step, so a response never mixes snapshots; when the pointers
name other versions (a switch happened), the client learns them and reads again. No
script runs: Redis spends a fraction of a Lua call's time on a plain MGET.

In a cluster a Lua script (EVALSHA; reloaded when a server lost it) reads every
requested row a server holds, since one MGET may not span slots. On the server with
the control keys it first resolves each view's current version, and returns a
version's metadata when this client has not seen that version yet, so a new snapshot
costs no extra trip. The other servers are asked, in the same round, for the rows of
the versions this client saw last. When the control server names other versions (a
switch happened), those servers are asked again. Either way every row comes from the
versions the pointers named at one instant; those are not deleted before a grace
period (serving.online.versions), and a read slower than half of it starts over.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import struct
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import hiredis
import msgpack
import pandas as pd
import redis

from serving.encoding import INT_KEY_WIDTH, Fixed, RowDecoder, RowLayout, key_part, packed_int_keys, split_fixed
from serving.entities import check_outputs, entity_columns
from serving.errors import EntityKeyError, OnlineStoreError
from serving.on_demand import OnDemandPlan, missing_request_fields
from serving.on_demand import plan as on_demand_plan
from serving.online.connection import Nodes, is_topology_error, mask_password, redis_call, unreachable
from serving.online.keys import ROW_SEP, ROW_TAIL, KeySpace
from serving.online.protocol import Column, command
from serving.online.versions import Timing
from serving.registry import FeatureView, Registry

PRESENT = "present"
NULL = "null"
MISSING = "missing"
OUTSIDE_TTL = "outside_ttl"
# How long a read keeps retrying while a cluster fails over or a server restarts.
RETRY_SECONDS = 15.0

# The cluster's read script, one call per server. ARGV: pointers key ('' on a server
# that must not resolve them), metadata key head, row separator, row tail, view count;
# then per view: name, row key head, version to read ('' to resolve), version known to
# the client, entity count, key width, then the keys (back to back in one argument when
# width > 0, else one per argument). Returns per view: false (no snapshot) or
# {version, metadata or false, {row or false, ...}}.
_READ_SCRIPT = """
local pointers, meta_head, sep, tail = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local out, reads = {}, {}
local at = 6
for v = 1, tonumber(ARGV[5]) do
  local name, head, version, known = ARGV[at], ARGV[at + 1], ARGV[at + 2], ARGV[at + 3]
  local count, width = tonumber(ARGV[at + 4]), tonumber(ARGV[at + 5])
  at = at + 6
  local meta = false
  if pointers ~= '' then
    version = redis.call('HGET', pointers, name)
    if version and version ~= known then
      meta = redis.call('GET', meta_head .. name .. ':' .. version)
    end
  end
  local packed = width > 0 and ARGV[at] or false
  if not version then
    out[v] = false
  else
    local base = head .. version .. sep
    local names = {}
    if packed then
      for i = 1, count do
        names[i] = base .. string.sub(packed, (i - 1) * width + 1, i * width) .. tail
      end
    else
      for i = 1, count do
        names[i] = base .. ARGV[at + i - 1] .. tail
      end
    end
    local rows = {}
    out[v] = {version, meta, rows}
    reads[#reads + 1] = {names = names, rows = rows, count = count, packed = packed}
  end
  at = at + (packed and 1 or count)
end
-- A command may not span slots, even on one server. Every view's row of one entity is in
-- that entity's slot (the hash tag is the entity key), so views sent with the same keys
-- read one MGET per entity; a view alone, one GET per entity.
local r = 1
while r <= #reads do
  local first = reads[r]
  local group = {first}
  while first.packed and reads[r + #group] and reads[r + #group].packed == first.packed do
    group[#group + 1] = reads[r + #group]
  end
  if #group == 1 then
    for i = 1, first.count do
      first.rows[i] = redis.call('GET', first.names[i])
    end
  else
    local names = {}
    for i = 1, first.count do
      for g = 1, #group do
        names[g] = group[g].names[i]
      end
      local got = redis.call('MGET', unpack(names))
      for g = 1, #group do
        group[g].rows[i] = got[g]
      end
    end
  end
  r = r + #group
end
return out
"""


@dataclass
class OnlineResponse:
    """Columns in request order: entity keys first, then features (Feast's layout)."""

    columns: dict[str, list[Any]]
    statuses: dict[str, list[str]] = field(default_factory=dict)
    event_timestamps: dict[str, list[dt.datetime | None]] = field(default_factory=dict)
    # view -> (snapshot version, its as_of): what the serving log records.
    snapshots: dict[str, tuple[int, str]] = field(default_factory=dict)
    # A request naming on-demand views: the read they were computed from (every feature
    # view feature involved, columns view__feature), which the serving log records.
    source_read: OnlineResponse | None = field(default=None, repr=False, compare=False)
    # view -> (its layout, the row blobs as read): the serving log keeps these as they are
    # and decodes them when it is flushed (decode_rows), which costs a read nothing.
    read_rows: dict[str, tuple[RowLayout, Sequence[bytes | None]]] = field(default_factory=dict, repr=False, compare=False)

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


@dataclass(frozen=True)
class _ViewKeys:
    """One view's entity keys for a read: back to back when they share a width, else one by one."""

    width: int
    packed: bytes
    keys: list[bytes]

    @property
    def count(self) -> int:
        return len(self.packed) // self.width if self.width else len(self.keys)

    def all(self) -> list[bytes]:
        return split_fixed(self.packed, self.width) if self.width else self.keys

    def select(self, keys: list[bytes], positions: list[int]) -> _ViewKeys:
        chosen = [keys[i] for i in positions]
        return _ViewKeys(self.width, b"".join(chosen), []) if self.width else _ViewKeys(0, b"", chosen)


class OnlineClient:
    def __init__(self, nodes: Nodes, keys: KeySpace, registry: Registry, timing: Timing) -> None:
        self.nodes = nodes
        self.url = nodes.url
        self.keys = keys
        self.registry = registry
        self.timing = timing
        self._sha = hashlib.sha1(_READ_SCRIPT.encode()).hexdigest()
        self._decoders: dict[tuple[str, str], RowDecoder] = {}
        self._as_of: dict[tuple[str, str], str] = {}  # (view, version) -> its snapshot's as_of (ISO, naive UTC)
        self._known: dict[str, str] = {}
        self._requests: dict[tuple[tuple[str, ...], bool], _Request] = {}
        self._on_demand: dict[tuple[tuple[str, ...], bool], OnDemandPlan | None] = {}
        self._header = [keys.current, keys.meta_head, ROW_SEP, ROW_TAIL]

    def _plan(self, features: Sequence[str], full_feature_names: bool) -> _Request:
        cache_key = call_shape(features, full_feature_names)
        plan = self._requests.get(cache_key)
        if plan is None:
            resolved = self.registry.resolve(features)
            outputs = Registry.output_names(resolved, full_feature_names)
            views = [(view, names, names_out) for (view, names), names_out in zip(resolved, outputs)]
            entity_columns = list(dict.fromkeys(key for view, _, _ in views for key in view.entity))
            check_outputs([name for names in outputs for name in names], entity_columns, "entity key")
            types = Registry.key_types(view for view, _, _ in views)
            plan = _Request(views, entity_columns, types)
            self._requests[cache_key] = plan
        return plan

    def _on_demand_plan(self, features: Sequence[str] | str, full_feature_names: bool) -> OnDemandPlan | None:
        cache_key = call_shape(features, full_feature_names)
        if cache_key not in self._on_demand:
            self._on_demand[cache_key] = on_demand_plan(self.registry, features, full_feature_names)
        return self._on_demand[cache_key]

    def served_from_snapshots(
        self, features: Sequence[str] | str, full_feature_names: bool, response: OnlineResponse
    ) -> tuple[Sequence[str] | str, bool, OnlineResponse]:
        """The part of a read that came from snapshots, as (features, full_feature_names,
        response): the read itself, or for a request naming on-demand views the feature
        view features it read (computed values follow from them and the request)."""
        on_demand = self._on_demand_plan(features, full_feature_names)
        if on_demand is None or response.source_read is None:
            return features, full_feature_names, response
        return on_demand.reads, True, response.source_read

    def get_online_features(
        self, features: Sequence[str] | str, entity_rows: Any, full_feature_names: bool = False
    ) -> OnlineResponse:
        # A request naming an on-demand view reads its sources too (columns view__feature),
        # takes its request fields from the entity rows, then computes it (serving.on_demand).
        on_demand = self._on_demand_plan(features, full_feature_names)
        if on_demand is None:
            plan = self._plan(features, full_feature_names)
            columns = self._entity_columns(plan, entity_rows)
        else:
            plan = self._plan(on_demand.reads, True)
            columns = self._entity_columns(plan, entity_rows, on_demand)
            request = on_demand.take_request(columns)
        keys = [self._view_keys(plan, view, columns) for view, _, _ in plan.views]
        # One node: one fresh try (a connection the server closed while idle). A cluster:
        # retries while it fails over, for a bounded time.
        deadline = time.monotonic() + (RETRY_SECONDS if self.nodes.cluster else 0)
        tries = 0
        while True:
            tries += 1
            try:
                replies = self._read_cluster(plan, keys) if self.nodes.cluster else self._read_node(plan, keys)
                break
            except (redis.RedisError, OSError) as error:
                if not is_topology_error(error):
                    raise
                if tries > 1 and time.monotonic() > deadline:
                    if not self.nodes.cluster:
                        raise unreachable(self.url, error) from error
                    raise OnlineStoreError(
                        f"Redis Cluster at {mask_password(self.url)} did not serve the read within {RETRY_SECONDS:g} s: {error}"
                    ) from error
                # A failover or restart: ask again where things are, then retry.
                time.sleep(0.05)
                try:
                    self.nodes.refresh()
                except (redis.RedisError, OSError):
                    continue
        response = OnlineResponse(columns)
        for (view, names, outputs), reply in zip(plan.views, replies):
            self._fill(plan, response, view, names, outputs, reply)
        return response if on_demand is None else on_demand.finish(response, request, OnlineResponse)

    @staticmethod
    def _view_keys(plan: _Request, view: FeatureView, columns: dict[str, list[Any]]) -> _ViewKeys:
        entity = view.entity
        if len(entity) == 1 and plan.types[entity[0]] is int:
            return _ViewKeys(INT_KEY_WIDTH, _int_keys(entity[0], columns[entity[0]]), [])
        if len(entity) == 1:
            return _ViewKeys(0, b"", [key_part(value) for value in columns[entity[0]]])
        return _ViewKeys(0, b"", [b"".join([key_part(value) for value in values]) for values in zip(*(columns[name] for name in entity))])

    def _read_node(self, plan: _Request, keys: list[_ViewKeys]) -> list[Any]:
        """Every view's rows from one server, in one transaction (see the module docstring)."""
        names = [view.name for view, _, _ in plan.views]
        for _ in range(5):
            if any(name not in self._known for name in names):
                self._learn(names)
            versions = [self._known.get(name) for name in names]
            runs = [
                Column(Fixed(view_keys.packed, view_keys.width) if view_keys.width else view_keys.keys, self.keys.rows(name, version), ROW_TAIL)
                for name, version, view_keys in zip(names, versions, keys)
                if version is not None and view_keys.count
            ]
            text = b"".join(
                [
                    hiredis.pack_command(("MULTI",)),
                    hiredis.pack_command(("HMGET", self.keys.current, *names)),
                    command(b"MGET", runs) if runs else hiredis.pack_command(("ECHO", "")),
                    hiredis.pack_command(("EXEC",)),
                ]
            )
            current, rows = self._exchange(text, 4)[-1]
            rows = rows if runs else []
            if [version.decode() if version else None for version in current] != versions:
                self._learn(names, current)  # a switch since this client last read: read the new versions
                continue
            replies: list[Any] = []
            at = 0
            for version, view_keys in zip(versions, keys):
                if version is None:
                    replies.append(False)
                else:
                    replies.append([version.encode(), None, rows[at : at + view_keys.count]])
                    at += view_keys.count
            return replies
        raise OnlineStoreError(f"feature views kept switching snapshots during a read at {mask_password(self.url)}; try again")

    def _learn(self, names: list[str], current: list[bytes | None] | None = None) -> None:
        """The views' current versions (`current`, else asked), with the metadata of any
        this client has not decoded yet."""
        client = self.nodes.client
        self._known = {name: version for name, version in self._known.items() if name not in names}
        for name, version in zip(names, client.hmget(self.keys.current, names) if current is None else current):
            if version is not None:
                version = version.decode()
                known = (name, version) in self._decoders
                self._decoder(name, version, None if known else client.get(self.keys.meta(name, version)))

    def _exchange(self, text: bytes, count: int) -> list[Any]:
        """Sends `text` on one node and reads its `count` replies; an error reply is raised."""
        connection = self.nodes.connection("")
        try:
            connection.send_packed_command([text])
            replies = [connection.read_response() for _ in range(count)]
        except BaseException:
            connection.disconnect()  # a reply may be left unread; the next read must not get it
            raise
        finally:
            self.nodes.release("", connection)
        for reply in replies:
            if isinstance(reply, redis.ResponseError):
                raise reply
        return replies

    def _read_cluster(self, plan: _Request, keys: list[_ViewKeys]) -> list[Any]:
        """Rows of every view from every server holding some, in one round when this
        client's versions are still current (see the module docstring)."""
        control = self.nodes.control(self.keys.prefix)
        # Views keyed alike (the same entity columns and types) share one placement, and
        # each server gets the same bytes for all of them (the script reads those together).
        shared: dict[Any, tuple[dict[str, list[int]], dict[str, _ViewKeys]]] = {}
        placed: list[dict[str, list[int]]] = []
        selected: list[dict[str, _ViewKeys]] = []
        for view_keys in keys:
            signature = (view_keys.width, view_keys.packed) if view_keys.width else tuple(view_keys.keys)
            if signature not in shared:
                all_keys = view_keys.all()
                groups = self.nodes.group(all_keys)
                shared[signature] = (groups, {server: view_keys.select(all_keys, positions) for server, positions in groups.items()})
            groups, selections = shared[signature]
            placed.append(groups)
            selected.append(selections)
        servers = sorted(set().union(*placed) | {control})
        nothing = _ViewKeys(0, b"", [])
        for attempt in range(5):
            started = time.monotonic()
            guesses = [self._known.get(view.name, "") for view, _, _ in plan.views]
            # A view this client never read: learn its version on the control server alone first.
            asked = [control] if attempt == 0 and "" in guesses else servers
            calls = {
                server: (server == control, [selections.get(server, nothing) for selections in selected])
                for server in asked
            }
            replies = self._call(calls, plan, guesses)
            resolved = replies[control]
            stale = False
            for (view, _, _), reply, guess in zip(plan.views, resolved, guesses):
                if reply:
                    self._decoder(view.name, reply[0].decode(), reply[1])
                    stale = stale or reply[0].decode() != guess
            # Too slow a round may have read versions collected meanwhile: read again.
            if stale or asked != servers or time.monotonic() - started > self.timing.grace_seconds / 2:
                continue
            return [
                self._merge(resolved[v], [(placed[v].get(server, []), replies[server][v]) for server in servers], keys[v].count)
                for v in range(len(keys))
            ]
        raise OnlineStoreError(f"feature views kept switching snapshots during a read at {mask_password(self.url)}; try again")

    @staticmethod
    def _merge(control: Any, parts: list[tuple[list[int], Any]], count: int) -> Any:
        if not control:
            return control
        rows: list[Any] = [None] * count
        for positions, reply in parts:
            if reply:
                for position, row in zip(positions, reply[2]):
                    rows[position] = row
        return [control[0], control[1], rows]

    def _call(self, calls: dict[str, tuple[bool, list[_ViewKeys]]], plan: _Request, guesses: list[str] | None = None) -> dict[str, Any]:
        """One EVALSHA per server, all sent before any reply is read. `calls`: server ->
        (resolve pointers there?, the view keys it holds)."""
        commands = {}
        for server, (resolve, view_keys) in calls.items():
            args: list[Any] = [*(self._header if resolve else ["", "", ROW_SEP, ROW_TAIL]), len(plan.views)]
            for index, ((view, _, _), keys) in enumerate(zip(plan.views, view_keys)):
                guess = "" if resolve or guesses is None else guesses[index]
                args += [view.name, self.keys.row_head(view.name), guess, self._known.get(view.name, ""), keys.count, keys.width]
                args += [keys.packed] if keys.width else keys.keys
            commands[server] = hiredis.pack_command(("EVALSHA", self._sha, 0, *args))
        connections = {server: self.nodes.connection(server) for server in commands}
        replies: dict[str, Any] = {}
        try:
            for server, command in commands.items():
                connections[server].send_packed_command([command])
            for server, connection in connections.items():
                replies[server] = self._reply(server, connection, commands[server])
        except BaseException:
            # A reply may be left unread; the next read must not get it.
            for connection in connections.values():
                connection.disconnect()
            raise
        finally:
            for server, connection in connections.items():
                self.nodes.release(server, connection)
        return replies

    def _reply(self, server: str, connection: Any, command: bytes) -> Any:
        try:
            return connection.read_response()
        except redis.exceptions.NoScriptError:
            # A new, restarted or flushed server: load the script once, then ask again.
            self.nodes.redis_for(server).script_load(_READ_SCRIPT)
            connection.send_packed_command([command])
            return connection.read_response()

    def _fill(self, plan: _Request, response: OnlineResponse, view: FeatureView, names: list[str], outputs: list[str], reply: Any) -> None:
        if not reply:
            raise OnlineStoreError(
                f"feature view '{view.name}' has no online snapshot under prefix '{self.keys.prefix}' at {mask_password(self.url)}; run materialize first"
            )
        version, meta, blobs = reply
        decoder = self._decoder(view.name, version.decode(), meta)
        response.snapshots[view.name] = (int(version), self._as_of[(view.name, version.decode())])
        positions = plan.positions.get((view.name, decoder))
        if positions is None:
            positions = plan.positions[(view.name, decoder)] = [decoder.layout.features.index(name) for name in names]
        response.read_rows[view.name] = (decoder.layout, blobs)
        stamps, columns = decode_rows(decoder, blobs, positions)
        for output, (column, statuses) in zip(outputs, columns):
            response.columns[output] = column
            response.statuses[output] = statuses
            response.event_timestamps[output] = stamps

    def _decoder(self, view: str, version: str, meta: bytes | None) -> RowDecoder:
        decoder = self._decoders.get((view, version))
        if decoder is None:
            if meta is None:
                # Another client instance's cache said it knew this version; ask again without it.
                meta = redis_call(self.url, self.nodes.client.get, self.keys.meta(view, version))
                if meta is None:
                    raise OnlineStoreError(f"version {version} of feature view '{view}' has no metadata; materialize again")
            saved = msgpack.unpackb(meta)
            decoder = RowDecoder(RowLayout.from_dict(saved["layout"]))
            self._decoders[(view, version)] = decoder
            self._as_of[(view, version)] = saved["as_of"]
        self._known[view] = version
        return decoder

    @staticmethod
    def _entity_columns(plan: _Request, entity_rows: Any, on_demand: OnDemandPlan | None = None) -> dict[str, list[Any]]:
        """The request's entity key columns, shape and types checked (serving.entities), and
        the request fields of the on-demand views it names."""
        if on_demand is None:
            return entity_columns(entity_rows, plan.entity_columns, plan.types)
        try:
            return entity_columns(entity_rows, [*plan.entity_columns, *on_demand.request_fields], plan.types)
        except EntityKeyError:
            # Name a missing request field as such, not as a missing key.
            given = _given_names(entity_rows)
            error = missing_request_fields(on_demand, given, "the entity rows lack") if given is not None else None
            if error is not None:
                raise error from None
            raise


def decode_rows(
    decoder: RowDecoder, blobs: Sequence[bytes | None], positions: Sequence[int]
) -> tuple[list[dt.datetime | None], list[tuple[list[Any], list[str]]]]:
    """Row blobs as served: per row its event time; per feature position its values and
    their statuses (missing: no row; outside_ttl: a row past its TTL; null; present).
    Reads, and the serving log when it is flushed, decode with this."""
    stamps, columns, nulls = decoder.columns(blobs, positions)
    if None in stamps:
        base = [MISSING if blob is None else OUTSIDE_TTL if stamp is None else PRESENT for blob, stamp in zip(blobs, stamps)]
    else:
        base = [PRESENT] * len(blobs)
    decoded = []
    for column, nulled in zip(columns, nulls):
        statuses = list(base)
        for row in nulled:
            statuses[row] = NULL
        decoded.append((column, statuses))
    return stamps, decoded


def _given_names(entity_rows: Any) -> list[str] | None:
    """The names every entity row of an online request gives (None: not a known shape)."""
    if isinstance(entity_rows, (list, tuple)) and entity_rows and all(isinstance(row, dict) for row in entity_rows):
        return [str(name) for name in set.intersection(*(set(row) for row in entity_rows))]
    if isinstance(entity_rows, (dict, pd.DataFrame)):
        return [str(name) for name in (entity_rows.columns if isinstance(entity_rows, pd.DataFrame) else entity_rows)]
    return None


def call_shape(features: Sequence[str] | str, full_feature_names: bool) -> tuple[tuple[str, ...], bool]:
    """A read's features and naming as a hashable key: what per-request plans are cached by."""
    return ((features,) if isinstance(features, str) else tuple(features), full_feature_names)


def _int_keys(name: str, values: list[Any]) -> bytes:
    try:
        return packed_int_keys(values)
    except struct.error as error:
        raise EntityKeyError(f"entity key {name} holds a value outside the 64-bit integer range: {error}") from error
