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
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import hiredis
import msgpack
import numpy as np
import redis
from tqdm import tqdm

from serving.encoding import RowLayout, encode_keys, encode_rows, key_hashes
from serving.offline import OfflineStore, to_utc_naive
from serving.online import ENTITIES_PER_BUCKET, KeySpace, buckets_for, parse_pointer, pointer, redis_call
from serving.registry import FeatureView

# Test hook: seconds to sleep after each written batch, so a test can kill an export mid-way.
PAUSE_ENV = "FEATURE_STORE_EXPORT_PAUSE_SECONDS"
BATCH_ENTITIES = 50_000
# An incremental export rewrites the view when it outgrew its buckets this much.
MAX_BUCKET_GROWTH = 4


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
    hashes: np.ndarray


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
        replaced: list[tuple[str, int, int]] = []
        with tqdm(desc="materialize", unit="entity", disable=not self.progress, leave=False) as bar:
            for view in views:
                encoded = self._encode(view, as_of)
                bar.total = (bar.total or 0) + len(encoded.keys)
                bar.refresh()
                old = current.get(view.name)
                if incremental and old and self._can_patch(encoded, *old):
                    summary.views.append(self._queue_changes(switch, encoded, old[0], old[1], as_of))
                    bar.update(len(encoded.keys))
                    continue
                export = self._write_version(encoded, as_of, bar)
                summary.views.append(export)
                new_pointers[view.name] = pointer(export.version, buckets_for(export.entities))
                if old:
                    replaced.append((view.name, *old))
        if new_pointers:
            switch.hset(self.keys.current, mapping=new_pointers)
        switch.execute()
        for name, version, buckets in replaced:
            self._drop_version(name, version, buckets)
        summary.seconds = time.perf_counter() - started
        return summary

    def _encode(self, view: FeatureView, as_of: dt.datetime) -> _Encoded:
        table = self.offline.snapshot(view, as_of)
        layout = RowLayout.for_schema(table.schema, view.feature_names)
        keys = encode_keys(table, view.entity)
        return _Encoded(view, layout, keys, encode_rows(table, layout), key_hashes(keys))

    def _meta(self, encoded: _Encoded, as_of: dt.datetime, version: int, buckets: int) -> bytes:
        return msgpack.packb(
            {
                "view": encoded.view.name,
                "entity": list(encoded.view.entity),
                "layout": encoded.layout.to_dict(),
                "as_of": to_utc_naive(as_of).isoformat(),
                "created": dt.datetime.now(dt.timezone.utc).isoformat(),
                "version": version,
                "buckets": buckets,
            }
        )

    def _write_version(self, encoded: _Encoded, as_of: dt.datetime, bar: tqdm) -> ViewExport:
        name = encoded.view.name
        version = int(self.client.incr(self.keys.version_counter))
        buckets = buckets_for(len(encoded.keys))
        # Registered before any row is written, so a killed run's rows can be found.
        register = self.client.pipeline(transaction=True)
        register.set(self.keys.meta(name, version), self._meta(encoded, as_of, version, buckets))
        register.sadd(self.keys.versions(name), version)
        register.execute()
        sent = 0
        with _BulkWriter(self.client) as writer:
            batch: list[bytes] = []
            queued = 0
            for bucket, count, packed in _packed_hsets(encoded.keys, encoded.blobs, encoded.hashes, buckets):
                batch.append(b"%s%s" % (_hset_header(self.keys.bucket(name, version, bucket), count), packed))
                queued += count
                if queued >= self.batch_entities:
                    sent += self._send(writer, batch, bar, queued)
                    batch, queued = [], 0
            sent += self._send(writer, batch, bar, queued)
        return ViewExport(name, len(encoded.keys), len(encoded.keys), 0, sent, version, incremental=False)

    def _send(self, writer: _BulkWriter, batch: list[bytes], bar: tqdm, entities: int) -> int:
        if not batch:
            return 0
        sent = writer.send(batch)
        bar.update(entities)
        if self.pause:
            writer.drain()
            time.sleep(self.pause)
        return sent

    def _can_patch(self, encoded: _Encoded, version: int, buckets: int) -> bool:
        meta = self.client.get(self.keys.meta(encoded.view.name, version))
        if meta is None:
            return False
        saved = msgpack.unpackb(meta)
        return (
            saved["layout"] == encoded.layout.to_dict()
            and saved["entity"] == list(encoded.view.entity)
            and len(encoded.keys) <= MAX_BUCKET_GROWTH * buckets * ENTITIES_PER_BUCKET
        )

    def _queue_changes(self, switch: Any, encoded: _Encoded, version: int, buckets: int, as_of: dt.datetime) -> ViewExport:
        name = encoded.view.name
        held = self._read_version(name, version, buckets)
        changed = [i for i, (key, blob) in enumerate(zip(encoded.keys, encoded.blobs)) if held.get(key) != blob]
        gone = set(held).difference(encoded.keys)
        keys = [encoded.keys[i] for i in changed]
        blobs = [encoded.blobs[i] for i in changed]
        written = 0
        for bucket, fields in _by_bucket(keys, blobs, encoded.hashes[changed], buckets):
            switch.execute_command("HSET", self.keys.bucket(name, version, bucket), *fields)
            written += sum(map(len, fields))
        gone_keys = sorted(gone)
        for bucket, members in _group(gone_keys, key_hashes(gone_keys), buckets):
            switch.hdel(self.keys.bucket(name, version, bucket), *members)
        switch.set(self.keys.meta(name, version), self._meta(encoded, as_of, version, buckets))
        return ViewExport(name, len(encoded.keys), len(changed), len(gone_keys), written, version, incremental=True)

    def _read_version(self, name: str, version: int, buckets: int) -> dict[bytes, bytes]:
        held: dict[bytes, bytes] = {}
        step = max(1, self.batch_entities // ENTITIES_PER_BUCKET)
        for start in range(0, buckets, step):
            pipe = self.client.pipeline(transaction=False)
            for bucket in range(start, min(start + step, buckets)):
                pipe.hgetall(self.keys.bucket(name, version, bucket))
            for part in pipe.execute():
                held.update(part)
        return held

    def pointers(self) -> dict[str, tuple[int, int]]:
        return {name.decode(): parse_pointer(value) for name, value in self.client.hgetall(self.keys.current).items()}

    def clean_leftovers(self, view_names: Sequence[str]) -> int:
        """Deletes versions no pointer refers to (left by killed exports); returns how many."""
        current = self.pointers()
        dropped = 0
        for name in view_names:
            live = current.get(name, (None, 0))[0]
            for member in self.client.smembers(self.keys.versions(name)):
                version = int(member)
                if version != live:
                    meta = self.client.get(self.keys.meta(name, version))
                    buckets = msgpack.unpackb(meta)["buckets"] if meta else 0
                    self._drop_version(name, version, buckets)
                    dropped += 1
        return dropped

    def _drop_version(self, name: str, version: int, buckets: int) -> None:
        doomed = self.keys.version_keys(name, version, buckets)
        for start in range(0, len(doomed), 10_000):
            self.client.unlink(*doomed[start : start + 10_000])
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


def _bucket_order(hashes: np.ndarray, buckets: int) -> tuple[np.ndarray, list[tuple[int, int, int]]]:
    """Row order sorted by bucket (hash mod buckets), and (bucket, start, end) of each non-empty bucket."""
    bucket_of = hashes % buckets
    order = np.argsort(bucket_of, kind="stable")
    ends = np.cumsum(np.bincount(bucket_of, minlength=buckets)).tolist()
    spans = [(bucket, start, end) for bucket, (start, end) in enumerate(zip([0, *ends[:-1]], ends)) if end > start]
    return order, spans


def _group(items: list[bytes], hashes: np.ndarray, buckets: int) -> Iterator[tuple[int, list[bytes]]]:
    order, spans = _bucket_order(hashes, buckets)
    ordered = [items[i] for i in order.tolist()]
    for bucket, start, end in spans:
        yield bucket, ordered[start:end]


def _hset_header(key: str, pairs: int) -> bytes:
    raw = key.encode()
    return b"*%d\r\n$4\r\nHSET\r\n$%d\r\n%s\r\n" % (2 + 2 * pairs, len(raw), raw)


def _packed_hsets(keys: list[bytes], blobs: list[bytes], hashes: np.ndarray, buckets: int) -> Iterator[tuple[int, int, bytes]]:
    """Per non-empty bucket: (bucket, pairs, its field/value pairs in the Redis protocol).

    When every key and every blob has one length (integer keys, no variable-width
    feature), the whole protocol text is laid out by numpy in one pass; packing a
    million pairs one by one costs more than Redis takes to store them."""
    if not keys:
        return
    key_width, blob_width = len(keys[0]), len(blobs[0])
    if any(len(key) != key_width for key in keys) or any(len(blob) != blob_width for blob in blobs):
        for bucket, fields in _by_bucket(keys, blobs, hashes, buckets):
            yield bucket, len(fields) // 2, hiredis.pack_command(("X", *fields))[len(b"*%d\r\n$1\r\nX\r\n" % (len(fields) + 1)) :]
        return
    order, spans = _bucket_order(hashes, buckets)
    key_head, blob_head = b"$%d\r\n" % key_width, b"$%d\r\n" % blob_width
    layout = np.dtype(
        [("kh", f"S{len(key_head)}"), ("k", f"V{key_width}"), ("ke", "S2"), ("bh", f"S{len(blob_head)}"), ("b", f"V{blob_width}"), ("be", "S2")]
    )
    pairs = np.empty(len(keys), dtype=layout)
    pairs["kh"], pairs["ke"], pairs["bh"], pairs["be"] = key_head, b"\r\n", blob_head, b"\r\n"
    pairs["k"] = np.frombuffer(b"".join(keys), dtype=f"V{key_width}")[order]
    pairs["b"] = np.frombuffer(b"".join(blobs), dtype=f"V{blob_width}")[order]
    text = pairs.tobytes()
    width = layout.itemsize
    for bucket, start, end in spans:
        yield bucket, end - start, text[start * width : end * width]


def _by_bucket(keys: list[bytes], blobs: list[bytes], hashes: np.ndarray, buckets: int) -> Iterator[tuple[int, list[bytes]]]:
    """HSET field/value lists per bucket: key, blob, key, blob..."""
    order, spans = _bucket_order(hashes, buckets)
    rows = order.tolist()
    flat: list[bytes] = [b""] * (2 * len(keys))
    flat[0::2] = [keys[i] for i in rows]
    flat[1::2] = [blobs[i] for i in rows]
    for bucket, start, end in spans:
        yield bucket, flat[2 * start : 2 * end]
