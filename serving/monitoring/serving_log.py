"""The serving log: what online reads served, sampled into a bounded Redis stream, and
drained from there into a warehouse table that dbt reads as a source.

Writing. After a sampled read has assembled its response, the request is packed as one
msgpack blob holding the row blobs exactly as Redis returned them (decoded only when the
log is flushed, by the readers' own decode_rows) and appended with one XADD, written to a
socket of the log's own without waiting for the reply (replies are collected in bulk later). The read never waits on a
round trip, and a Redis that refuses or vanishes loses log entries, never reads. The stream is capped with MAXLEN ~ (approximate
trimming, O(1) amortized): when nobody flushes, the oldest requests are dropped, never
the reader slowed. The key has a hash tag of its own (serving.online.keys), so in a
cluster it is one slot anywhere.

Flushing (`featurestore logs flush`). Entries are read oldest first with XRANGE, a
batch at a time, written to the table in one transaction, and only then XDEL'd by id:
- a crash before the commit leaves the entries in the stream; the next flush writes them;
- a crash after the commit and before XDEL leaves them too, and the next flush writes them
  again; the insert skips request ids the table already holds, so nothing is duplicated;
- entries appended meanwhile are not touched: only the ids read are deleted.
The table's layout is macros/monitoring/serving_log_table.sql (one row per request x
entity row x feature; documented there and in models/monitoring/monitoring.yml).
"""

from __future__ import annotations

import atexit
import datetime as dt
import json
import logging
import os
import random
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import hiredis
import msgpack
import orjson
import pyarrow as pa
import redis

from serving.engines import Engine
from serving.errors import InputError
from serving.online.connection import Nodes
from serving.online.keys import KeySpace
from serving.encoding import RowDecoder, RowLayout
from serving.online.read import MISSING, NULL, OUTSIDE_TTL, PRESENT, OnlineResponse, call_shape, decode_rows
from serving.registry import Registry
from serving.rendering import Renderer

RATE_ENV = "FEATURE_STORE_SERVING_LOG_RATE"
MAXLEN_ENV = "FEATURE_STORE_SERVING_LOG_MAXLEN"
# Requests kept in Redis when nobody flushes: a 100-entity x 10-feature request takes
# about 15 kB, so at most about 150 MB; single-entity requests far less.
DEFAULT_MAXLEN = 10_000
FLUSH_BATCH = 5_000  # stream entries per transaction
BATCH_TABLE = "__fs_serving_log_batch"
BATCH_PLACEHOLDER = "__fs_serving_log_batch_placeholder__"
_FIELD = b"m"  # an entry's one field: the request, msgpack with row blobs (_Encoder)
_JSON_FIELD = b"r"  # what earlier versions wrote instead: JSON of decoded values
_STATUS_NAMES = {"p": PRESENT, "n": NULL, "m": MISSING, "o": OUTSIDE_TTL}  # the JSON format's row codes
_JSON_SCALARS = {int, float, bool, str, type(None)}
_EPOCH = dt.datetime(1970, 1, 1)
_MICRO = dt.timedelta(microseconds=1)
# A few requests' XADDs go out in one socket write (one syscall, one wake-up of Redis):
# at most this many, or this old. Process exit, drain() and flush send the rest.
_BUFFERED_REQUESTS = 16
_BUFFERED_SECONDS = 0.2
_JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
_UNREAD_REPLIES = 256  # XADD replies left unread before the next send reads them all
_log = logging.getLogger(__name__)

SCHEMA = pa.schema(
    [
        ("request_id", pa.string()),
        ("request_at", pa.timestamp("us")),
        ("row_index", pa.int32()),
        ("entity_key", pa.string()),
        ("feature_view", pa.string()),
        ("feature", pa.string()),
        ("feature_ref", pa.string()),
        ("status", pa.string()),
        ("value_number", pa.float64()),
        ("value_text", pa.string()),
        ("event_at", pa.timestamp("us")),
        ("snapshot_version", pa.int64()),
        ("snapshot_as_of", pa.timestamp("us")),
        ("source", pa.string()),
        ("flushed_at", pa.timestamp("us")),
    ]
)


def rate_from(value: float | str | None) -> float:
    """The sample rate: the argument, else $FEATURE_STORE_SERVING_LOG_RATE, else 0 (off)."""
    if value is None:
        return fraction(os.environ.get(RATE_ENV) or 0.0, RATE_ENV, "a sample rate", " (off) to 1 (every read)")
    return fraction(value, "serving_log_rate", "a sample rate", " (off) to 1 (every read)")


def fraction(value: float | str, name: str, meaning: str, scale: str = " to 1") -> float:
    """A number from 0 to 1, or an InputError naming `name`."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1.0
    if not 0.0 <= number <= 1.0:
        raise InputError(f"{name}={value!r} is not {meaning}: use a number from 0{scale}")
    return number


def maxlen_from_env() -> int:
    text = os.environ.get(MAXLEN_ENV)
    if not text:
        return DEFAULT_MAXLEN
    if not text.isdigit() or int(text) < 1:
        raise InputError(f"{MAXLEN_ENV}={text!r} is not a whole number of requests >= 1")
    return int(text)


class ServingLogWriter:
    """Samples reads and appends each to the stream with one XADD, sent on a connection of
    its own without waiting for the reply: the replies are read in bulk later, by which
    time they have long arrived. So a logged read costs its encoding and a share of one
    socket write, never a round trip. (A background thread was measured slower: waking it
    cost more than the work it took over.)"""

    def __init__(self, nodes: Nodes, keys: KeySpace, registry: Registry, rate: float, maxlen: int, source: str = "python") -> None:
        self.nodes = nodes
        self.key = keys.serving_log
        self._tag = keys.serving_log_tag
        self.rate = rate
        self.maxlen = maxlen
        self.source = source
        self.dropped = 0  # requests not logged (Redis unreachable or refused): the reads succeeded regardless
        self._encoder = _Encoder(registry)
        self._lock = threading.Lock()  # one socket: two threads must not interleave their commands
        self._connection: Any = None
        self._pending = 0  # XADDs sent whose replies are not read yet
        self._buffer: list[bytes] = []  # XADDs not sent yet, since _buffered_at
        self._buffered_at = 0.0
        self._pid = 0
        self._random = random.random
        self._head = ("XADD", self.key, "MAXLEN", "~", str(maxlen), "*", _FIELD)

    def record(self, features: Sequence[str] | str, full_feature_names: bool, response: OnlineResponse) -> None:
        """Logs one served read (when sampled). Never raises for the log's sake."""
        if self.rate < 1.0 and self._random() >= self.rate:
            return
        try:
            command = hiredis.pack_command((*self._head, self._encoder.encode(time.time(), self.source, features, full_feature_names, response)))
        except Exception:  # a key msgpack cannot write must not fail the read
            self.dropped += 1
            _log.exception("serving log: a request could not be encoded")
            return
        with self._lock:
            if self._pid != os.getpid():
                self._start_process()
            now = time.monotonic()
            if not self._buffer:
                self._buffered_at = now
            self._buffer.append(command)
            if len(self._buffer) >= _BUFFERED_REQUESTS or now - self._buffered_at >= _BUFFERED_SECONDS:
                self._send()

    def drain(self, timeout: float = 10.0) -> None:
        """Sends what is buffered and reads every outstanding reply: each logged request
        is in the stream after this (flush, tests, and process exit call it)."""
        with self._lock:
            if self._pid != os.getpid():
                return
            self._send()
            if self._connection is not None:
                try:
                    self._read_replies(self._connection)
                except (redis.RedisError, OSError) as error:
                    self._lost(error, 0)

    def _send(self) -> None:
        if not self._buffer:
            return
        commands, self._buffer = self._buffer, []
        try:
            connection = self._open()
            if self._pending >= _UNREAD_REPLIES:
                self._read_replies(connection)
            # One bytes object: redis-py makes one sendall (a syscall) per list item.
            connection.send_packed_command([b"".join(commands)], check_health=False)
            self._pending += len(commands)
        except (redis.RedisError, OSError) as error:
            self._lost(error, len(commands))

    def _start_process(self) -> None:
        # The first record, or the first after a fork (HTTP workers): the parent's socket,
        # buffer and unread replies are not this process's.
        self._pid = os.getpid()
        self._connection = None
        self._buffer = []
        self._pending = 0
        atexit.register(self.drain)

    def _open(self) -> Any:
        if self._connection is None:
            self._connection = self.nodes.connection(self.nodes.control(self._tag))
        return self._connection

    def _read_replies(self, connection: Any) -> None:
        while self._pending:
            self._pending -= 1
            try:
                connection.read_response()
            except redis.ResponseError as error:  # e.g. the key holds another type: that entry only
                self.dropped += 1
                _log.warning("serving log: Redis refused an entry: %s", error)

    def _lost(self, error: BaseException, unsent: int) -> None:
        # Replies not read are entries that may or may not have been written: count them lost.
        self.dropped += unsent + self._pending
        self._pending = 0
        if self._connection is not None:
            self._connection.disconnect()
        self._connection = None
        _log.warning("serving log: %d request(s) not logged: %s", self.dropped, error)


class _Encoder:
    """One request as msgpack: {t: request time (epoch µs), s: source, k: {key column:
    values}, v: per view [name, snapshot version, as_of, layout (msgpack of its
    RowLayout), the requested features, the row blobs as read (None: no row)]}. Packing
    bytes as they came is a third of the time of writing decoded values as JSON; the layout
    travels with each entry because a version's metadata leaves Redis with the version."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._requested: dict[tuple[tuple[str, ...], bool], dict[str, list[str]]] = {}
        self._layouts: dict[RowLayout, bytes] = {}

    def _features_by_view(self, features: Sequence[str] | str, full: bool) -> dict[str, list[str]]:
        """View -> its requested features, in request order (cached per call shape)."""
        shape = call_shape(features, full)
        found = self._requested.get(shape)
        if found is None:
            found = self._requested[shape] = {view.name: list(names) for view, names in self.registry.resolve(features)}
        return found

    def encode(self, at: float, source: str, features: Sequence[str] | str, full: bool, response: OnlineResponse) -> bytes:
        views = []
        for view, names in self._features_by_view(features, full).items():
            layout, blobs = response.read_rows[view]
            packed = self._layouts.get(layout)
            if packed is None:
                packed = self._layouts[layout] = msgpack.packb(layout.to_dict())
            version, as_of = response.snapshots[view]
            views.append([view, version, as_of, packed, names, blobs])
        keys = {name: values for name, values in response.columns.items() if name not in response.statuses}
        return msgpack.packb({"t": int(at * 1_000_000), "s": source, "k": keys, "v": views}, default=_plain)


def _plain(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return str(value)


@dataclass(frozen=True)
class FlushSummary:
    requests: int
    rows: int
    relation: str
    remaining: int

    def __str__(self) -> str:
        return f"flushed {self.requests:,} request(s), {self.rows:,} row(s) into {self.relation}; {self.remaining:,} left in the stream"


def decode(entries: Sequence[tuple[bytes, dict[bytes, bytes]]], entity_keys: Callable[[str], Sequence[str]], flushed_at: dt.datetime) -> pa.Table:
    """Stream entries as rows of the serving-log table (SCHEMA)."""
    columns: dict[str, list[Any]] = {name: [] for name in SCHEMA.names}
    decoders: dict[bytes, RowDecoder] = {}
    for entry_id, fields in entries:
        request_id = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
        at, source, keys, views = _request(fields, decoders)
        request_at = _EPOCH + at * _MICRO
        for view, version, as_of, event_times, features in views:
            names = [name for name in entity_keys(view) if name in keys] or list(keys)
            entity_texts = [json.dumps(dict(zip(names, values)), separators=(",", ":")) for values in zip(*(keys[n] for n in names))]
            as_of_time = dt.datetime.fromisoformat(as_of)
            for feature, values, statuses in features:
                count = len(values)
                columns["request_id"] += [request_id] * count
                columns["request_at"] += [request_at] * count
                columns["row_index"] += range(count)
                columns["entity_key"] += entity_texts
                columns["feature_view"] += [view] * count
                columns["feature"] += [feature] * count
                columns["feature_ref"] += [f"{view}:{feature}"] * count
                columns["status"] += statuses
                numbers, texts = _split_values(values)
                columns["value_number"] += numbers
                columns["value_text"] += texts
                columns["event_at"] += event_times
                columns["snapshot_version"] += [version] * count
                columns["snapshot_as_of"] += [as_of_time] * count
                columns["source"] += [source] * count
                columns["flushed_at"] += [flushed_at] * count
    return pa.table(columns, schema=SCHEMA)


_LoggedView = tuple[str, int, str, list[Any], list[tuple[str, list[Any], list[str]]]]


def _request(fields: dict[bytes, bytes], decoders: dict[bytes, RowDecoder]) -> tuple[int, str, dict[str, list[Any]], list[_LoggedView]]:
    """One entry as (time µs, source, keys, per view (name, version, as_of, event times,
    per feature (name, values, statuses))), from either format: msgpack with row blobs
    (field m), or the JSON of decoded values earlier versions wrote (field r), which a
    stream may still hold after an upgrade."""
    if _FIELD in fields:
        request = msgpack.unpackb(fields[_FIELD])
        views = []
        for view, version, as_of, layout, names, blobs in request["v"]:
            decoder = decoders.get(layout)
            if decoder is None:
                decoder = decoders[layout] = RowDecoder(RowLayout.from_dict(msgpack.unpackb(layout)))
            stamps, decoded = decode_rows(decoder, blobs, [decoder.layout.features.index(name) for name in names])
            views.append((view, version, as_of, stamps, [(name, _as_json(values), statuses) for name, (values, statuses) in zip(names, decoded)]))
        return request["t"], request["s"], request["k"], views
    request = orjson.loads(fields[_JSON_FIELD])
    views = []
    for view, version, as_of, stamps, features, codes in request["v"]:
        event_times = [None if s is None else dt.datetime.fromisoformat(s) for s in stamps]
        logged = []
        for feature, values in features:
            rows = [_STATUS_NAMES[codes]] * len(values) if len(codes) == 1 else [_STATUS_NAMES[code] for code in codes]
            logged.append((feature, values, [NULL if row == PRESENT and value is None else row for row, value in zip(rows, values)]))
        views.append((view, version, as_of, event_times, logged))
    return request["t"], request["s"], request["k"], views


def _as_json(values: list[Any]) -> list[Any]:
    """Values as the JSON format carried them (dates and times as ISO 8601 text, decimals
    as text), so value_text reads the same whichever format an entry came in."""
    if all(type(value) in _JSON_SCALARS for value in values):
        return values
    return orjson.loads(orjson.dumps(values, default=_plain, option=_JSON_OPTIONS))


def _split_values(values: list[Any]) -> tuple[list[float | None], list[str | None]]:
    numbers: list[float | None] = []
    texts: list[str | None] = []
    for value in values:
        if value is None:
            numbers.append(None)
            texts.append(None)
        elif isinstance(value, bool):
            numbers.append(1.0 if value else 0.0)
            texts.append(None)
        elif isinstance(value, (int, float)):
            numbers.append(float(value))
            texts.append(None)
        else:
            numbers.append(None)
            texts.append(value if isinstance(value, str) else json.dumps(value, default=str))
    return numbers, texts


class ServingLogFlusher:
    """Drains the stream into the warehouse (see the module docstring for why it is safe)."""

    def __init__(self, client: Any, keys: KeySpace, engine: Engine, renderer: Renderer, registry: Registry) -> None:
        self.client = client
        self.key = keys.serving_log
        self.engine = engine
        self.renderer = renderer
        self.registry = registry

    def flush(self, batch: int = FLUSH_BATCH) -> FlushSummary:
        relation = self.renderer.call("serving_log_relation")
        create = self.renderer.call("serving_log_create_sql", relation)
        insert = self.renderer.call("serving_log_insert_sql", relation, BATCH_PLACEHOLDER)
        requests = rows = 0
        start = "-"
        while True:
            entries = self.client.xrange(self.key, start, "+", count=batch)
            if not entries:
                break
            table = decode(entries, self._entity_keys, dt.datetime.now(dt.timezone.utc).replace(tzinfo=None))
            with self.engine.write_session() as session:
                session.execute(create)
                name = session.upload(table, BATCH_TABLE)
                session.execute(insert.replace(BATCH_PLACEHOLDER, name))
            # Committed: now, and only now, the entries written may leave the stream.
            ids = [entry_id for entry_id, _ in entries]
            self.forget(ids)
            requests += len(entries)
            rows += table.num_rows
            last = ids[-1].decode() if isinstance(ids[-1], bytes) else ids[-1]
            start = "(" + last  # exclusive: entries after the last one written
            if len(entries) < batch:
                break
        return FlushSummary(requests, rows, relation, int(self.client.xlen(self.key)))

    def forget(self, ids: list[Any]) -> None:
        """Deletes the written entries from the stream, and nothing else."""
        self.client.xdel(self.key, *ids)

    def _entity_keys(self, view: str) -> Sequence[str]:
        found = self.registry.views.get(view)
        return found.entity if found is not None else ()
