"""Materialization: the offline snapshot of each online view at `as_of`, written to Redis.

Each run writes every selected view into a new version of its own, which no reader
looks at, then switches all their pointers in one script (serving.online.versions),
so a reader sees all of the old snapshot or all of the new one, and any number of
runs may overlap. A killed run leaves versions whose lease runs out; the next run's
collection deletes them. Replaced versions are deleted after a grace period, since a
cluster reader may still be reading them.

Incremental exports recompute the full snapshot at the new `as_of` (so late rows and
corrections are caught) and compare its row bytes with the live version: changed rows
are sent, unchanged ones are copied by the server (COPY: every version of an entity's
row is in one slot), vanished ones are left out. The result is a new version switched
like any other, so incremental and full exports share every guarantee.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import msgpack
from tqdm import tqdm

from serving.encoding import RowLayout, encode_keys, encode_rows
from serving.offline import OfflineStore, to_utc_naive
from serving.online.connection import Nodes, redis_call
from serving.online.keys import ROW_TAIL, KeySpace
from serving.online.protocol import Column, Fanout, pack
from serving.online.versions import Lease, Timing, Versions, index_entry
from serving.registry import FeatureView

# Test hook: seconds to sleep after each written batch, so a test can kill an export mid-way.
PAUSE_ENV = "FEATURE_STORE_EXPORT_PAUSE_SECONDS"
BATCH_ENTITIES = 50_000


@dataclass
class ViewExport:
    view: str
    entities: int
    keys_written: int
    keys_removed: int
    bytes_written: int
    version: int
    incremental: bool
    keys_copied: int = 0
    outside_ttl: int = 0  # entities whose latest row is older than the TTL at as_of: they read as outside_ttl

    @property
    def present(self) -> int:
        return self.entities - self.outside_ttl


@dataclass
class MaterializeSummary:
    as_of: dt.datetime
    views: list[ViewExport] = field(default_factory=list)
    seconds: float = 0.0
    versions_collected: int = 0

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

    @property
    def warnings(self) -> list[str]:
        """Views whose snapshot is mostly expired at as_of: reads would return little but outside_ttl."""
        return [
            f"{view.outside_ttl:,} of {view.entities:,} entities of '{view.view}' are outside its TTL at {self.as_of.isoformat()}: "
            "they read as outside_ttl (no values); is --as-of right?"
            for view in self.views
            if view.entities and view.outside_ttl * 2 > view.entities
        ]

    def __str__(self) -> str:
        rate = self.entities / self.seconds if self.seconds else 0.0
        mode = "incremental" if any(view.incremental for view in self.views) else "full"
        lines = [
            f"materialized {len(self.views)} view(s) as of {self.as_of.isoformat()} ({mode}): "
            f"{self.entities:,} entities, {self.keys_written:,} keys written ({self.bytes_written / 1e6:.1f} MB) "
            f"in {self.seconds:.2f} s ({rate:,.0f} entities/s)"
        ]
        lines += [f"  {view.view}: {view.present:,} present, {view.outside_ttl:,} outside_ttl (version {view.version})" for view in self.views]
        return "\n".join(lines)


@dataclass
class _Encoded:
    view: FeatureView
    layout: RowLayout
    keys: list[bytes]
    blobs: list[bytes]
    outside_ttl: int


class Exporter:
    def __init__(
        self,
        nodes: Nodes,
        keys: KeySpace,
        offline: OfflineStore,
        timing: Timing,
        progress: bool | None = None,
        batch_entities: int = BATCH_ENTITIES,
    ) -> None:
        self.nodes = nodes
        self.keys = keys
        self.offline = offline
        self.versions = Versions(nodes, keys, timing)
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.batch_entities = batch_entities
        self.pause = float(os.environ.get(PAUSE_ENV) or 0)

    def materialize(self, views: Sequence[FeatureView], as_of: dt.datetime, incremental: bool) -> MaterializeSummary:
        return redis_call(self.nodes.url, self._materialize, views, as_of, incremental)

    def _materialize(self, views: Sequence[FeatureView], as_of: dt.datetime, incremental: bool) -> MaterializeSummary:
        started = time.perf_counter()
        summary = MaterializeSummary(as_of=as_of)
        live = self.versions.pointers() if incremental else {}
        lease = Lease(self.versions)
        written: dict[str, int] = {}
        try:
            with tqdm(desc="materialize", unit="entity", disable=not self.progress, leave=False) as bar:
                for view in views:
                    encoded = self._encode(view, as_of)
                    bar.total = (bar.total or 0) + len(encoded.keys)
                    bar.refresh()
                    version = self.versions.begin(view.name)
                    lease.add(view.name, version)
                    self.nodes.client.set(self.keys.meta(view.name, version), self._meta(encoded, as_of, version))
                    old = live.get(view.name)
                    saved = self._saved_meta(encoded, old) if old is not None else None
                    if saved is not None:
                        export = self._write_changes(encoded, version, old, saved, bar, lease)
                    else:
                        export = self._write_version(encoded, version, bar, lease)
                    export.outside_ttl = encoded.outside_ttl
                    summary.views.append(export)
                    written[view.name] = version
            lease.stop()
            lease.check()
            self.versions.switch(written)
        except BaseException:
            lease.stop()
            # A clean failure takes its versions with it; a killed run leaves them to the lease.
            redis_call(self.nodes.url, self.versions.abandon, lease.fields)
            raise
        summary.versions_collected = self.versions.collect()
        summary.seconds = time.perf_counter() - started
        return summary

    def _encode(self, view: FeatureView, as_of: dt.datetime) -> _Encoded:
        table = self.offline.snapshot(view, as_of)
        layout = RowLayout.for_schema(table.schema, view.feature_names)
        expired = table.column("event_timestamp").null_count
        return _Encoded(view, layout, encode_keys(table, view.entity), encode_rows(table, layout), expired)

    def _meta(self, encoded: _Encoded, as_of: dt.datetime, version: int) -> bytes:
        return msgpack.packb(
            {
                "view": encoded.view.name,
                "entity": list(encoded.view.entity),
                "layout": encoded.layout.to_dict(),
                "as_of": to_utc_naive(as_of).isoformat(),
                "created": dt.datetime.now(dt.timezone.utc).isoformat(),
                "version": version,
                "entities": len(encoded.keys),
            }
        )

    def _batches(self, encoded: _Encoded, version: int, bar: tqdm, lease: Lease) -> Iterator[tuple[Fanout, int, list[bytes]]]:
        """Yields (fanout, first position, keys) per batch, after listing the batch's keys in the
        version's index, so even a killed run's rows can be found and deleted."""
        index = self.keys.index(encoded.view.name, version)
        control = self.nodes.control(self.keys.prefix)
        width = _common_width(encoded.keys)
        with Fanout(self.nodes) as fanout:
            for start in range(0, len(encoded.keys), self.batch_entities):
                keys = encoded.keys[start : start + self.batch_entities]
                fanout.writer(control).send(*pack(b"RPUSH", [Column([index.encode()]), Column([index_entry(keys, width)])], per_key=True))
                if self.nodes.cluster:
                    # Rows go to other servers: the index must be stored before any of them.
                    fanout.writer(control).drain()
                yield fanout, start, keys
                bar.update(len(keys))
                lease.check()
                if self.pause:
                    fanout.drain()
                    time.sleep(self.pause)

    def _write_version(self, encoded: _Encoded, version: int, bar: tqdm, lease: Lease) -> ViewExport:
        head = self.keys.rows(encoded.view.name, version)
        sent = 0
        for fanout, start, keys in self._batches(encoded, version, bar, lease):
            blobs = encoded.blobs[start : start + len(keys)]
            sent += fanout.send(b"MSET", keys, [Column(keys, head, ROW_TAIL), Column(blobs)])
        count = len(encoded.keys)
        return ViewExport(encoded.view.name, count, count, 0, sent, version, incremental=False)

    def _saved_meta(self, encoded: _Encoded, version: int) -> dict[str, Any] | None:
        """The live version's metadata when its rows can be compared byte for byte with ours."""
        meta = self.nodes.client.get(self.keys.meta(encoded.view.name, version))
        if meta is None:
            return None
        saved = msgpack.unpackb(meta)
        same = saved["layout"] == encoded.layout.to_dict() and saved["entity"] == list(encoded.view.entity)
        return saved if same else None

    def _write_changes(self, encoded: _Encoded, version: int, old: int, saved: dict[str, Any], bar: tqdm, lease: Lease) -> ViewExport:
        name = encoded.view.name
        old_head, head = self.keys.rows(name, old), self.keys.rows(name, version)
        sent = changed = copied = existing = 0
        for fanout, start, keys in self._batches(encoded, version, bar, lease):
            blobs = encoded.blobs[start : start + len(keys)]
            held = fanout.call(b"MGET", keys, [Column(keys, old_head, ROW_TAIL)])
            existing += sum(blob is not None for blob in held)
            same = [i for i, (blob, was) in enumerate(zip(blobs, held)) if blob == was]
            if same:
                kept = [keys[i] for i in same]
                copies = fanout.call(b"COPY", kept, [Column(kept, old_head, ROW_TAIL), Column(kept, head, ROW_TAIL)], multi_key=False)
                # A row the old version lost meanwhile (collected under a long pause) is sent after all.
                same = [i for i, done in zip(same, copies) if done == 1]
                copied += len(same)
            unchanged = set(same)
            fresh = [i for i in range(len(keys)) if i not in unchanged]
            if fresh:
                fresh_keys = [keys[i] for i in fresh]
                sent += fanout.send(b"MSET", fresh_keys, [Column(fresh_keys, head, ROW_TAIL), Column([blobs[i] for i in fresh])])
                changed += len(fresh)
        removed = max(int(saved.get("entities", existing)) - existing, 0)
        return ViewExport(name, len(encoded.keys), changed, removed, sent, version, incremental=True, keys_copied=copied)


def _common_width(keys: list[bytes]) -> int:
    """The one length of every key, or 0 when lengths differ (the index stores them as msgpack then)."""
    widths = set(map(len, keys))
    return widths.pop() if len(widths) == 1 else 0
