"""Materialization: the offline snapshot of each online view at `as_of`, written to Redis.

Atomicity. A full export writes each view into a fresh version that no reader looks
at, then switches every view's pointer in one MULTI/EXEC; readers resolve pointers
and read rows inside one Lua script, so they see all of the old snapshot or all of
the new one. A killed exporter leaves only unreferenced versions, which the next run
deletes before writing (one exporter per prefix at a time is assumed).

Incremental exports recompute the full snapshot at the new `as_of` (so late rows and
corrections are caught), diff its row blobs against the current version, and apply
the changed and vanished entities to that version in one MULTI/EXEC: Redis runs a
transaction as a unit, and discards a half-sent one when the client dies.
"""

from __future__ import annotations

import datetime as dt
import os
import struct
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import hiredis
import msgpack
import numpy as np
import redis
from tqdm import tqdm

from serving.encoding import RowLayout, encode_keys, encode_rows, split_fixed
from serving.offline import OfflineStore, to_utc_naive
from serving.online import KeySpace, parse_pointer, pointer, redis_call
from serving.registry import FeatureView

# Test hook: seconds to sleep after each written batch, so a test can kill an export mid-way.
PAUSE_ENV = "FEATURE_STORE_EXPORT_PAUSE_SECONDS"
BATCH_ENTITIES = 50_000
# Keys per UNLINK, MGET or DEL: big enough to amortise a command, small enough not to stall readers.
KEYS_PER_COMMAND = 10_000
_INDEX_WIDTH = struct.Struct(">I")


@dataclass
class ViewExport:
    view: str
    entities: int
    keys_written: int
    keys_removed: int
    bytes_written: int
    version: int
    incremental: bool


@dataclass
class MaterializeSummary:
    as_of: dt.datetime
    views: list[ViewExport] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def entities(self) -> int:
        return sum(view.entities for view in self.views)

    @property
    def keys_written(self) -> int:
        return sum(view.keys_written for view in self.views)

    @property
    def bytes_written(self) -> int:
        return sum(view.bytes_written for view in self.views)

    def view(self, name: str) -> ViewExport:
        return {export.view: export for export in self.views}[name]

    def __str__(self) -> str:
        rate = self.entities / self.seconds if self.seconds else 0.0
        mode = "incremental" if any(view.incremental for view in self.views) else "full"
        return (
            f"materialized {len(self.views)} view(s) as of {self.as_of.isoformat()} ({mode}): "
            f"{self.entities:,} entities, {self.keys_written:,} keys written ({self.bytes_written / 1e6:.1f} MB) "
            f"in {self.seconds:.2f} s ({rate:,.0f} entities/s)"
        )


@dataclass
class _Encoded:
    view: FeatureView
    layout: RowLayout
    keys: list[bytes]
    blobs: list[bytes]


class Exporter:
    def __init__(
        self,
        client: redis.Redis,
        url: str,
        keys: KeySpace,
        offline: OfflineStore,
        progress: bool | None = None,
        batch_entities: int = BATCH_ENTITIES,
    ) -> None:
        self.client = client
        self.url = url
        self.keys = keys
        self.offline = offline
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.batch_entities = batch_entities
        self.pause = float(os.environ.get(PAUSE_ENV) or 0)

    def materialize(
        self, views: Sequence[FeatureView], as_of: dt.datetime, incremental: bool, clean: Sequence[str] = ()
    ) -> MaterializeSummary:
        """Exports `views`; first drops unreferenced versions of those and of the views in `clean`."""
        return redis_call(self.url, self._materialize, views, as_of, incremental, clean)

    def _materialize(
        self, views: Sequence[FeatureView], as_of: dt.datetime, incremental: bool, clean: Sequence[str]
    ) -> MaterializeSummary:
        started = time.perf_counter()
        summary = MaterializeSummary(as_of=as_of)
        self.clean_leftovers(list(dict.fromkeys([*clean, *(view.name for view in views)])))
        current = self.pointers()
        switch = self.client.pipeline(transaction=True)
        new_pointers: dict[str, str] = {}
        replaced: list[tuple[str, int]] = []
        with tqdm(desc="materialize", unit="entity", disable=not self.progress, leave=False) as bar:
            for view in views:
                encoded = self._encode(view, as_of)
                bar.total = (bar.total or 0) + len(encoded.keys)
                bar.refresh()
                old = current.get(view.name)
                if incremental and old is not None and self._can_patch(encoded, old):
                    summary.views.append(self._queue_changes(switch, encoded, old, as_of))
                    bar.update(len(encoded.keys))
                    continue
                export = self._write_version(encoded, as_of, bar)
                summary.views.append(export)
                new_pointers[view.name] = pointer(export.version)
                if old is not None:
                    replaced.append((view.name, old))
        if new_pointers:
            switch.hset(self.keys.current, mapping=new_pointers)
        switch.execute()
        for name, version in replaced:
            self._drop_version(name, version)
        summary.seconds = time.perf_counter() - started
        return summary

    def _encode(self, view: FeatureView, as_of: dt.datetime) -> _Encoded:
        table = self.offline.snapshot(view, as_of)
        layout = RowLayout.for_schema(table.schema, view.feature_names)
        return _Encoded(view, layout, encode_keys(table, view.entity), encode_rows(table, layout))

    def _meta(self, encoded: _Encoded, as_of: dt.datetime, version: int) -> bytes:
        return msgpack.packb(
            {
                "view": encoded.view.name,
                "entity": list(encoded.view.entity),
                "layout": encoded.layout.to_dict(),
                "as_of": to_utc_naive(as_of).isoformat(),
                "created": dt.datetime.now(dt.timezone.utc).isoformat(),
                "version": version,
            }
        )

    def _write_version(self, encoded: _Encoded, as_of: dt.datetime, bar: tqdm) -> ViewExport:
        name = encoded.view.name
        version = int(self.client.incr(self.keys.version_counter))
        # Registered before any row is written, so a killed run's rows can be found.
        register = self.client.pipeline(transaction=True)
        register.set(self.keys.meta(name, version), self._meta(encoded, as_of, version))
        register.sadd(self.keys.versions(name), version)
        register.execute()
        index = self.keys.index(name, version)
        rows = self.keys.rows(name, version)
        fixed = _fixed_widths(encoded.keys, encoded.blobs)
        sent = 0
        with _BulkWriter(self.client) as writer:
            for start in range(0, len(encoded.keys), self.batch_entities):
                keys = encoded.keys[start : start + self.batch_entities]
                blobs = encoded.blobs[start : start + self.batch_entities]
                # The index entry goes first on the same connection, so Redis has it before any row.
                commands = [
                    hiredis.pack_command(("RPUSH", index, _index_entry(keys, fixed[0] if fixed else 0))),
                    _command(b"MSET", rows, keys, blobs, fixed),
                ]
                sent += self._send(writer, commands, bar, len(keys))
        return ViewExport(name, len(encoded.keys), len(encoded.keys), 0, sent, version, incremental=False)

    def _send(self, writer: _BulkWriter, batch: list[bytes], bar: tqdm, entities: int) -> int:
        sent = writer.send(batch)
        bar.update(entities)
        if self.pause:
            writer.drain()
            time.sleep(self.pause)
        return sent

    def _can_patch(self, encoded: _Encoded, version: int) -> bool:
        meta = self.client.get(self.keys.meta(encoded.view.name, version))
        if meta is None:
            return False
        saved = msgpack.unpackb(meta)
        return saved["layout"] == encoded.layout.to_dict() and saved["entity"] == list(encoded.view.entity)

    def _queue_changes(self, switch: Any, encoded: _Encoded, version: int, as_of: dt.datetime) -> ViewExport:
        name = encoded.view.name
        rows = self.keys.rows(name, version)
        indexed = self._indexed_keys(name, version)
        held = self._read_rows(rows, indexed)
        changed = [i for i, (key, blob) in enumerate(zip(encoded.keys, encoded.blobs)) if held.get(key) != blob]
        gone = sorted(set(held).difference(encoded.keys))
        keys = [encoded.keys[i] for i in changed]
        blobs = [encoded.blobs[i] for i in changed]
        listed = set(indexed)
        unlisted = [key for key in keys if key not in listed]
        if unlisted:
            switch.rpush(self.keys.index(name, version), _index_entry(unlisted, 0))
        for start in range(0, len(keys), KEYS_PER_COMMAND):
            pairs = zip(keys[start : start + KEYS_PER_COMMAND], blobs[start : start + KEYS_PER_COMMAND])
            switch.execute_command("MSET", *(part for key, blob in pairs for part in (rows + key, blob)))
        for start in range(0, len(gone), KEYS_PER_COMMAND):
            switch.execute_command("DEL", *(rows + key for key in gone[start : start + KEYS_PER_COMMAND]))
        switch.set(self.keys.meta(name, version), self._meta(encoded, as_of, version))
        written = sum(map(len, keys)) + sum(map(len, blobs))
        return ViewExport(name, len(encoded.keys), len(changed), len(gone), written, version, incremental=True)

    def _index_entries(self, name: str, version: int) -> Iterator[tuple[int, bytes]]:
        """(key width, keys) per index entry: keys back to back when width > 0, else msgpack."""
        index = self.keys.index(name, version)
        page = 16
        for start in range(0, int(self.client.llen(index)), page):
            for entry in self.client.lrange(index, start, start + page - 1):
                yield _INDEX_WIDTH.unpack_from(entry)[0], entry[_INDEX_WIDTH.size :]

    def _indexed_keys(self, name: str, version: int) -> list[bytes]:
        """Every entity key the version's index lists (once each), in the order they were written."""
        keys: list[bytes] = []
        for width, packed in self._index_entries(name, version):
            keys += split_fixed(packed, width) if width else msgpack.unpackb(packed)
        return list(dict.fromkeys(keys))

    def _read_rows(self, rows: bytes, keys: list[bytes]) -> dict[bytes, bytes]:
        held: dict[bytes, bytes] = {}
        for start in range(0, len(keys), KEYS_PER_COMMAND):
            chunk = keys[start : start + KEYS_PER_COMMAND]
            blobs = self.client.execute_command("MGET", *(rows + key for key in chunk))
            held.update((key, blob) for key, blob in zip(chunk, blobs) if blob is not None)
        return held

    def pointers(self) -> dict[str, int]:
        return {name.decode(): parse_pointer(value) for name, value in self.client.hgetall(self.keys.current).items()}

    def clean_leftovers(self, view_names: Sequence[str]) -> int:
        """Deletes versions no pointer refers to (left by killed exports); returns how many."""
        current = self.pointers()
        dropped = 0
        for name in view_names:
            live = current.get(name)
            for member in self.client.smembers(self.keys.versions(name)):
                version = int(member)
                if version != live:
                    self._drop_version(name, version)
                    dropped += 1
        return dropped

    def _drop_version(self, name: str, version: int) -> None:
        rows = self.keys.rows(name, version)
        with _BulkWriter(self.client) as writer:
            for width, packed in self._index_entries(name, version):
                if width:
                    # Fixed-width keys go from the index entry to UNLINK commands without a Python object per key.
                    step = width * KEYS_PER_COMMAND
                    commands = [_fixed_command(b"UNLINK", rows, packed[i : i + step], width, None, 0) for i in range(0, len(packed), step)]
                else:
                    keys = msgpack.unpackb(packed)
                    commands = [_command(b"UNLINK", rows, keys[i : i + KEYS_PER_COMMAND], None, None) for i in range(0, len(keys), KEYS_PER_COMMAND)]
                if commands:
                    writer.send(commands)
        # The index goes last: a drop cut short is finished by the next clean_leftovers.
        self.client.unlink(self.keys.meta(name, version), self.keys.index(name, version))
        self.client.srem(self.keys.versions(name), version)


class _BulkWriter:
    """Protocol bytes written straight to one pooled connection, one batch in flight:
    Redis applies a batch while Python builds the next."""

    def __init__(self, client: redis.Redis) -> None:
        self._pool = client.connection_pool
        self._connection = self._pool.get_connection()
        self._in_flight = 0

    def send(self, commands: list[bytes]) -> int:
        """Sends commands already in the Redis protocol; their replies are read on the next send."""
        packed = b"".join(commands)
        self.drain()
        self._connection.send_packed_command([packed], check_health=False)
        self._in_flight = len(commands)
        return len(packed)

    def drain(self) -> None:
        while self._in_flight:
            self._in_flight -= 1
            self._connection.read_response()

    def __enter__(self) -> _BulkWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: Any) -> None:
        try:
            if kind is None:
                self.drain()
        finally:
            if kind is not None or self._in_flight:
                # Unread replies would answer the next user's commands.
                self._connection.disconnect()
            self._pool.release(self._connection)


def _fixed_widths(keys: list[bytes], blobs: list[bytes]) -> tuple[int, int] | None:
    """(key width, blob width) when every key has one length and so does every blob, else None."""
    key_widths = set(map(len, keys))
    blob_widths = set(map(len, blobs))
    if len(key_widths) == 1 and len(blob_widths) == 1:
        return key_widths.pop(), blob_widths.pop()
    return None


def _command(name: bytes, rows: bytes, keys: list[bytes], blobs: list[bytes] | None, fixed: tuple[int, int] | None) -> bytes:
    """`name` over the row keys `rows + key` (each followed by its blob, if given), in the Redis protocol.

    With fixed widths (integer keys, no variable-width feature) numpy lays out the
    whole text in one pass; packing a million arguments one by one costs more than
    Redis takes to store them."""
    args = len(keys) * (1 if blobs is None else 2)
    head = b"*%d\r\n$%d\r\n%s\r\n" % (1 + args, len(name), name)
    if fixed is None:
        if blobs is None:
            return head + b"".join(b"$%d\r\n%s%s\r\n" % (len(rows) + len(key), rows, key) for key in keys)
        return head + b"".join(
            b"$%d\r\n%s%s\r\n$%d\r\n%s\r\n" % (len(rows) + len(key), rows, key, len(blob), blob) for key, blob in zip(keys, blobs)
        )
    key_width, blob_width = fixed
    return _fixed_command(name, rows, b"".join(keys), key_width, None if blobs is None else b"".join(blobs), blob_width)


def _fixed_command(name: bytes, rows: bytes, keys: bytes, key_width: int, blobs: bytes | None, blob_width: int) -> bytes:
    """`_command` for keys (and blobs) of one width each, given back to back."""
    count = len(keys) // key_width
    head = b"*%d\r\n$%d\r\n%s\r\n" % (1 + count * (1 if blobs is None else 2), len(name), name)
    key_head = b"$%d\r\n%s" % (len(rows) + key_width, rows)
    fields = [("kh", f"S{len(key_head)}"), ("k", f"V{key_width}"), ("ke", "S2")]
    if blobs is not None:
        blob_head = b"$%d\r\n" % blob_width
        fields += [("bh", f"S{len(blob_head)}"), ("b", f"V{blob_width}"), ("be", "S2")]
    text = np.empty(count, dtype=np.dtype(fields))
    text["kh"], text["ke"] = key_head, b"\r\n"
    text["k"] = np.frombuffer(keys, dtype=f"V{key_width}")
    if blobs is not None:
        text["bh"], text["be"] = blob_head, b"\r\n"
        text["b"] = np.frombuffer(blobs, dtype=f"V{blob_width}")
    return head + text.tobytes()


def _index_entry(keys: list[bytes], key_width: int) -> bytes:
    """One index entry: the key width, then the keys back to back (width > 0) or as msgpack (width 0)."""
    if key_width:
        return _INDEX_WIDTH.pack(key_width) + b"".join(keys)
    return _INDEX_WIDTH.pack(0) + msgpack.packb(keys)
