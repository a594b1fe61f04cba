"""Snapshot versions that any number of overlapping exporters can write at once.

The mechanism: every export writes each view into a version of its own (a number from
one INCR, so two runs never share one), switches the views' pointers in one script,
and deletes a replaced version only after a grace period. We chose this over one lease
with fencing tokens for the whole store because a fence must be checked by every write
to be safe, which plain SETs on many cluster nodes cannot do, and because a store-wide
lease would queue unrelated exports behind a slow one. Here nothing a writer does can
touch another writer's keys; the only shared state is a small registry, changed only
by the scripts below, which run atomically on the one node holding the control keys.

States in the registry (field "<view>:<version>"):

    w:<ms>   being written; the writer's lease lasts until <ms> (server clock). A
             heartbeat thread renews it, so a writer that dies or hangs loses it.
    l        live: the view's pointer names it.
    r:<ms>   retired at <ms> by a later switch. Readers that resolved it just before
             may still be reading it, so it stays for the grace period.
    x        claimed for deletion by a collector (a collector that dies leaves it
             claimed; the next one finishes the job, deleting is idempotent).

Per view the last run to switch wins. A switch fails as a whole, changing nothing, when
any of its versions was claimed because its lease ran out; that run then reports an
error and leaves nothing behind. Collection never claims a version a pointer names.
"""

from __future__ import annotations

import os
import struct
import threading
from dataclasses import dataclass
from typing import Iterator, Sequence

import msgpack
import redis

from serving.encoding import split_fixed
from serving.errors import OnlineStoreError
from serving.online.connection import Nodes
from serving.online.keys import ROW_TAIL, KeySpace, field, parse_field
from serving.online.protocol import Column, Fanout, joined, common_width

GRACE_ENV = "FEATURE_STORE_GC_GRACE_SECONDS"
LEASE_ENV = "FEATURE_STORE_EXPORT_LEASE_SECONDS"
DEFAULT_GRACE_SECONDS = 60.0
DEFAULT_LEASE_SECONDS = 30.0
MIN_GRACE_SECONDS = 1.0
INDEX_WIDTH = struct.Struct(">I")

# Shared by the scripts: the server clock in ms. Scripts that write after reading TIME
# need effects replication, the default since Redis 7 and switched on here for older ones.
_NOW = """
if redis.replicate_commands then redis.replicate_commands() end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
"""

# KEYS: counter, versions. ARGV: view, lease ms. Returns the new version.
_BEGIN = _NOW + """
local version = redis.call('INCR', KEYS[1])
redis.call('HSET', KEYS[2], ARGV[1] .. ':' .. version, 'w:' .. string.format('%d', now + tonumber(ARGV[2])))
return version
"""

# KEYS: versions. ARGV: lease ms, fields... Returns the fields no longer being written.
_RENEW = _NOW + """
local lost = {}
for i = 2, #ARGV do
  local state = redis.call('HGET', KEYS[1], ARGV[i])
  if state and string.sub(state, 1, 2) == 'w:' then
    redis.call('HSET', KEYS[1], ARGV[i], 'w:' .. string.format('%d', now + tonumber(ARGV[1])))
  else
    table.insert(lost, ARGV[i])
  end
end
return lost
"""

# KEYS: versions, current. ARGV: view, version, view, version... Returns false, or the
# first field that is no longer being written (then nothing changed).
_SWITCH = _NOW + """
for i = 1, #ARGV, 2 do
  local state = redis.call('HGET', KEYS[1], ARGV[i] .. ':' .. ARGV[i + 1])
  if not state or string.sub(state, 1, 2) ~= 'w:' then
    return ARGV[i] .. ':' .. ARGV[i + 1]
  end
end
for i = 1, #ARGV, 2 do
  local old = redis.call('HGET', KEYS[2], ARGV[i])
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  redis.call('HSET', KEYS[1], ARGV[i] .. ':' .. ARGV[i + 1], 'l')
  if old and old ~= ARGV[i + 1] then
    redis.call('HSET', KEYS[1], ARGV[i] .. ':' .. old, 'r:' .. string.format('%d', now))
  end
end
return false
"""

# KEYS: versions, current. ARGV: grace ms. Claims what may be deleted; returns those fields.
_CLAIM = _NOW + """
local claimed = {}
local entries = redis.call('HGETALL', KEYS[1])
for i = 1, #entries, 2 do
  local name, state = entries[i], entries[i + 1]
  local view, version = string.match(name, '^(.*):(%d+)$')
  local kind, stamp = string.sub(state, 1, 1), tonumber(string.sub(state, 3))
  local doomed = kind == 'x'
    or (kind == 'r' and now - stamp >= tonumber(ARGV[1]))
    or (kind == 'w' and now > stamp)
  if doomed and view and redis.call('HGET', KEYS[2], view) ~= version then
    redis.call('HSET', KEYS[1], name, 'x')
    table.insert(claimed, name)
  end
end
return claimed
"""

# KEYS: versions. ARGV: fields. Claims the versions of a run that failed cleanly, so they go at once.
_ABANDON = """
for i = 1, #ARGV do
  local state = redis.call('HGET', KEYS[1], ARGV[i])
  if state and string.sub(state, 1, 2) == 'w:' then
    redis.call('HSET', KEYS[1], ARGV[i], 'x')
  end
end
return 1
"""


def seconds_from_env(name: str, default: float) -> float:
    text = os.environ.get(name)
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value < 0:
        raise OnlineStoreError(f"{name}={text!r} is not a number of seconds >= 0")
    return value


@dataclass(frozen=True)
class Timing:
    """How long a replaced version outlives its switch, and how long a silent writer keeps its lease."""

    grace_seconds: float
    lease_seconds: float

    @classmethod
    def from_env(cls) -> Timing:
        grace = seconds_from_env(GRACE_ENV, DEFAULT_GRACE_SECONDS)
        if grace < MIN_GRACE_SECONDS:
            # Cluster readers start over when a read takes half the grace period; below this none would finish.
            raise OnlineStoreError(f"{GRACE_ENV}={grace:g} is too short: use at least {MIN_GRACE_SECONDS:g} seconds")
        return cls(grace, seconds_from_env(LEASE_ENV, DEFAULT_LEASE_SECONDS))


def index_entry(keys: Sequence[bytes]) -> bytes:
    """One index entry: the key width, then the keys back to back (one width) or as msgpack."""
    width = common_width(keys)
    if width:
        return INDEX_WIDTH.pack(width) + joined(keys)
    return INDEX_WIDTH.pack(0) + msgpack.packb(list(keys))


class Versions:
    """The version registry of one key space, and the collector of dead versions."""

    def __init__(self, nodes: Nodes, keys: KeySpace, timing: Timing) -> None:
        self.nodes = nodes
        self.keys = keys
        self.timing = timing
        client = nodes.client
        self._begin = client.register_script(_BEGIN)
        self._renew = client.register_script(_RENEW)
        self._switch = client.register_script(_SWITCH)
        self._claim = client.register_script(_CLAIM)
        self._abandon = client.register_script(_ABANDON)

    @property
    def _lease_ms(self) -> int:
        return int(self.timing.lease_seconds * 1000)

    def begin(self, view: str) -> int:
        return int(self._begin(keys=[self.keys.counter, self.keys.versions], args=[view, self._lease_ms]))

    def renew(self, fields: Sequence[str]) -> list[str]:
        """Extends the leases of versions being written; returns those that were lost."""
        if not fields:
            return []
        lost = self._renew(keys=[self.keys.versions], args=[self._lease_ms, *fields])
        return [name.decode() for name in lost]

    def switch(self, versions: dict[str, int]) -> None:
        """Points every view at its new version, all at once, or raises changing nothing."""
        args = [part for view, version in versions.items() for part in (view, version)]
        lost = self._switch(keys=[self.keys.versions, self.keys.current], args=args)
        if lost:
            view, version = parse_field(lost)
            raise OnlineStoreError(
                f"version {version} of feature view '{view}' was collected before this export switched to it: "
                f"the export went silent for longer than its lease ({self.timing.lease_seconds:g} s, {LEASE_ENV}); "
                "no snapshot changed, run materialize again"
            )

    def abandon(self, fields: Sequence[str]) -> None:
        """Deletes the versions of a run that failed before its switch."""
        if fields:
            self._abandon(keys=[self.keys.versions], args=list(fields))
            for name in fields:
                self.drop(*parse_field(name))

    def pointers(self) -> dict[str, int]:
        return {name.decode(): int(value) for name, value in self.nodes.client.hgetall(self.keys.current).items()}

    def states(self) -> dict[str, bytes]:
        return {name.decode(): state for name, state in self.nodes.client.hgetall(self.keys.versions).items()}

    def collect(self, grace_seconds: float | None = None) -> int:
        """Deletes every version that is retired for longer than the grace period, or
        whose writer lost its lease; returns how many."""
        grace = self.timing.grace_seconds if grace_seconds is None else grace_seconds
        claimed = self._claim(keys=[self.keys.versions, self.keys.current], args=[int(grace * 1000)])
        for name in claimed:
            view, version = parse_field(name)
            self.drop(view, version)
        return len(claimed)

    def indexed_keys(self, view: str, version: int) -> Iterator[tuple[int, list[bytes]]]:
        """(key width, keys) per index entry; width 0 when the keys vary in length."""
        client = self.nodes.client
        index = self.keys.index(view, version)
        page = 16
        for start in range(0, int(client.llen(index)), page):
            for entry in client.lrange(index, start, start + page - 1):
                width, packed = INDEX_WIDTH.unpack_from(entry)[0], entry[INDEX_WIDTH.size :]
                yield width, split_fixed(packed, width) if width else msgpack.unpackb(packed)

    def drop(self, view: str, version: int) -> None:
        """Deletes a claimed version: its rows (found through its index), then the index
        and metadata, then its registry entry, so a drop cut short is finished next time."""
        head = self.keys.rows(view, version)
        with Fanout(self.nodes) as fanout:
            for _, keys in self.indexed_keys(view, version):
                fanout.send(b"UNLINK", keys, [Column(keys, head, ROW_TAIL)])
        self.nodes.client.unlink(self.keys.meta(view, version), self.keys.index(view, version))
        self.nodes.client.hdel(self.keys.versions, field(view, version))



class Lease:
    """Keeps a run's versions leased while it works: a daemon thread renews them every
    third of the lease, so a run that dies or hangs loses them and a collector may take
    them, while a slow but live run (a long snapshot query) keeps them."""

    def __init__(self, versions: Versions) -> None:
        self.versions = versions
        self.fields: list[str] = []
        self.lost: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, view: str, version: int) -> None:
        self.fields.append(field(view, version))
        if self._thread is None:
            self._thread = threading.Thread(target=self._renew_until_stopped, name="feature-store-lease", daemon=True)
            self._thread.start()

    def _renew_until_stopped(self) -> None:
        while not self._stop.wait(self.versions.timing.lease_seconds / 3):
            try:
                self.lost += self.versions.renew(list(self.fields))
            except redis.RedisError:
                # Redis away for a moment: the next beat tries again, and the switch checks the lease anyway.
                continue

    def check(self) -> None:
        if self.lost:
            view, version = parse_field(self.lost[0])
            raise OnlineStoreError(
                f"this export lost version {version} of feature view '{view}': it went silent for longer than "
                f"its lease ({self.versions.timing.lease_seconds:g} s, {LEASE_ENV}) and a collector took it; "
                "no snapshot changed, run materialize again"
            )

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
