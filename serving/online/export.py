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
import queue
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence, TypeVar

import msgpack
import pyarrow as pa
from tqdm import tqdm

from serving.encoding import RowLayout, encode_keys, encode_rows
from serving.errors import OnlineStoreError
from serving.offline import OfflineStore, to_utc_naive
from serving.online.connection import Nodes, redis_call
from serving.online.keys import ROW_TAIL, KeySpace
from serving.online.protocol import Column, Fanout, pack, take
from serving.online.versions import Lease, Timing, Versions, index_entry
from serving.registry import FeatureView

# Test hook: seconds to sleep after each written batch, so a test can kill an export mid-way.
PAUSE_ENV = "FEATURE_STORE_EXPORT_PAUSE_SECONDS"
BATCH_ENTITIES = 50_000
T = TypeVar("T")


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
                    version = self.versions.begin(view.name)
                    lease.add(view.name, version)
                    summary.views.append(self._export_view(view, as_of, version, live.get(view.name), bar, lease))
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

    def _export_view(self, view: FeatureView, as_of: dt.datetime, version: int, old: int | None, bar: tqdm, lease: Lease) -> ViewExport:
        """Streams the view's snapshot from the warehouse in batches, so the driver holds one
        batch at a time however big the view; each batch is encoded and written before the
        next is fetched. The metadata goes last: it needs the entity count, and no reader
        looks at a version before its switch."""
        export = ViewExport(view.name, 0, 0, 0, 0, version, incremental=False)
        rows = _ViewRows(self.keys, view.name, version, old)
        control = self.nodes.control(self.keys.prefix)
        layout: RowLayout | None = None
        with Fanout(self.nodes) as fanout:
            for batch in _read_ahead(self.offline.snapshot_batches(view, as_of, self.batch_entities)):
                if layout is None:
                    layout = RowLayout.for_schema(batch.schema, view.feature_names)
                    schema = batch.schema
                    saved = self._comparable_meta(view, layout, old) if old is not None else None
                    rows.compare = export.incremental = saved is not None
                    rows.old_entities = int(saved.get("entities", 0)) if saved else 0
                table = _conform(pa.Table.from_batches([batch]), schema)
                keys, blobs = encode_keys(table, view.entity), encode_rows(table, layout)
                # Listed in the index before any row is written, so even a killed run's rows can be deleted.
                fanout.writer(control).send(*pack(b"RPUSH", [Column([rows.index.encode()]), Column([index_entry(keys)])], per_key=True))
                if self.nodes.cluster:
                    fanout.writer(control).drain()  # the rows go to other servers
                self._write_batch(fanout, rows, keys, blobs, export)
                export.entities += len(keys)
                export.outside_ttl += table.column("event_timestamp").null_count
                bar.total = max(bar.total or 0, bar.n + len(keys))
                bar.update(len(keys))
                lease.check()
                if self.pause:
                    fanout.drain()
                    time.sleep(self.pause)
        if layout is None:
            # No entity at all: the layout comes from the (empty) result's columns.
            layout = RowLayout.for_schema(self.offline.snapshot(view, as_of).schema, view.feature_names)
        if rows.compare:
            export.keys_removed = max(rows.old_entities - rows.existing, 0)
        self.nodes.client.set(self.keys.meta(view.name, version), self._meta(view, layout, as_of, version, export.entities))
        return export

    def _write_batch(self, fanout: Fanout, rows: _ViewRows, keys: list[bytes], blobs: list[bytes], export: ViewExport) -> None:
        """A full export sends every row; an incremental one sends the rows whose bytes
        changed and has the server copy the others from the live version."""
        fresh = range(len(keys))
        if rows.compare:
            held = fanout.call(b"MGET", keys, [Column(keys, rows.old_head, ROW_TAIL)])
            rows.existing += sum(blob is not None for blob in held)
            same = [i for i, (blob, was) in enumerate(zip(blobs, held)) if blob == was]
            if same:
                kept = take(keys, same)
                copies = fanout.call(b"COPY", kept, [Column(kept, rows.old_head, ROW_TAIL), Column(kept, rows.head, ROW_TAIL)], multi_key=False)
                # A row the old version lost meanwhile (collected under a long pause) is sent after all.
                copied = {i for i, done in zip(same, copies) if done == 1}
                export.keys_copied += len(copied)
                fresh = [i for i in fresh if i not in copied]
        if len(fresh) != len(keys):
            keys, blobs = take(keys, fresh), take(blobs, fresh)
        if keys:
            export.bytes_written += fanout.send(b"MSET", keys, [Column(keys, rows.head, ROW_TAIL), Column(blobs)])
            export.keys_written += len(keys)

    def _comparable_meta(self, view: FeatureView, layout: RowLayout, version: int) -> dict[str, Any] | None:
        """The live version's metadata when its rows can be compared byte for byte with ours."""
        meta = self.nodes.client.get(self.keys.meta(view.name, version))
        if meta is None:
            return None
        saved = msgpack.unpackb(meta)
        return saved if saved["layout"] == layout.to_dict() and saved["entity"] == list(view.entity) else None

    def _meta(self, view: FeatureView, layout: RowLayout, as_of: dt.datetime, version: int, entities: int) -> bytes:
        return msgpack.packb(
            {
                "view": view.name,
                "entity": list(view.entity),
                "layout": layout.to_dict(),
                "as_of": to_utc_naive(as_of).isoformat(),
                "created": dt.datetime.now(dt.timezone.utc).isoformat(),
                "version": version,
                "entities": entities,
            }
        )


class _ViewRows:
    """Where one view's export writes (and, incremental, what it compares with)."""

    def __init__(self, keys: KeySpace, view: str, version: int, old: int | None) -> None:
        self.head = keys.rows(view, version)
        self.index = keys.index(view, version)
        self.old_head = keys.rows(view, old) if old is not None else b""
        self.old_entities = 0
        self.compare = False
        self.existing = 0


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """A later batch in the first batch's types (an engine may type a column of NULLs loosely)."""
    if table.schema.equals(schema):
        return table
    try:
        return table.cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
        raise OnlineStoreError(f"the snapshot's column types changed between batches ({table.schema} vs {schema}): {error}") from error


def _read_ahead(items: Iterator[T]) -> Iterator[T]:
    """`items`, with the next one fetched in a thread while the caller works on this one,
    so the warehouse, the encoding and Redis all work at once. At most one item waits
    beyond the caller's, so memory stays bounded. `items` runs (and is closed) in the
    thread alone; its errors are raised here."""
    ready: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def offer(kind: str, item: Any) -> bool:
        while not stop.is_set():
            try:
                ready.put((kind, item), timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not offer("item", item):
                    return
            offer("done", None)
        except BaseException as error:  # handed to the caller, which raises it
            offer("error", error)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="snapshot-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            kind, item = ready.get()
            if kind == "done":
                return
            if kind == "error":
                raise item
            yield item
    finally:
        stop.set()
        thread.join()
