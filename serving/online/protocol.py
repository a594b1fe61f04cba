"""Bulk commands in the Redis protocol, built without a Python object per argument.

An export sends millions of arguments; packing them one by one through redis-py costs
more than Redis takes to store them. Here each argument is a column of values with a
common head and tail (row keys are head + entity key + tail), and when every value of
every column has one width (integer keys, fixed-width rows) numpy lays out the whole
text in one pass. `per_key` makes one command per row (what a cluster needs when rows
sit in different slots); otherwise one command carries every row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import redis

from serving.encoding import Fixed
from serving.online.connection import Nodes

# Keys per multi-key command on one node: big enough to amortise a command, small enough not to stall readers.
KEYS_PER_COMMAND = 10_000


@dataclass(frozen=True)
class Column:
    values: Sequence[bytes]
    head: bytes = b""
    tail: bytes = b""


def pack(name: bytes, columns: Sequence[Column], per_key: bool) -> tuple[bytes, int]:
    """(protocol text, number of replies it will get)."""
    count = len(columns[0].values)
    if count == 0:
        return b"", 0
    command = b"$%d\r\n%s\r\n" % (len(name), name)
    if per_key:
        opening = b"*%d\r\n%s" % (1 + len(columns), command)
        replies = count
    else:
        opening = b""
        replies = 1
    text = _rows(opening, columns, count)
    if not per_key:
        text = b"*%d\r\n%s" % (1 + count * len(columns), command) + text
    return text, replies


def command(name: bytes, runs: Sequence[Column]) -> bytes:
    """One command whose arguments are the values of each run in turn (where `pack`
    interleaves its columns row by row): MGET over the rows of several views."""
    count = sum(len(run.values) for run in runs)
    return b"*%d\r\n$%d\r\n%s\r\n" % (1 + count, len(name), name) + b"".join(_rows(b"", [run], len(run.values)) for run in runs if len(run.values))


def _rows(opening: bytes, columns: Sequence[Column], count: int) -> bytes:
    """The arguments of `count` rows, each `opening` then one value of every column."""
    widths = [common_width(column.values) for column in columns]
    if all(widths):
        return _fixed(opening, columns, widths, count)
    return b"".join(
        opening + b"".join(b"$%d\r\n%s%s%s\r\n" % (len(c.head) + len(v) + len(c.tail), c.head, v, c.tail) for c, v in zip(columns, row))
        for row in zip(*(column.values for column in columns))
    )


def _fixed(opening: bytes, columns: Sequence[Column], widths: list[int], count: int) -> bytes:
    fields: list[tuple[str, str]] = []
    constants: dict[str, bytes] = {}
    if opening:
        fields.append(("o", f"S{len(opening)}"))
        constants["o"] = opening
    for number, (column, width) in enumerate(zip(columns, widths)):
        head = b"$%d\r\n%s" % (len(column.head) + width + len(column.tail), column.head)
        tail = column.tail + b"\r\n"
        fields += [(f"h{number}", f"S{len(head)}"), (f"v{number}", f"V{width}"), (f"t{number}", f"S{len(tail)}")]
        constants[f"h{number}"], constants[f"t{number}"] = head, tail
    text = np.empty(count, dtype=np.dtype(fields))
    for name, constant in constants.items():
        text[name] = constant
    for number, (column, width) in enumerate(zip(columns, widths)):
        text[f"v{number}"] = np.frombuffer(joined(column.values), dtype=f"V{width}")
    return text.tobytes()


def common_width(values: Sequence[bytes]) -> int:
    """The one length of all values, or 0 when they differ."""
    if isinstance(values, Fixed):
        return values.width
    widths = set(map(len, values))
    return widths.pop() if len(widths) == 1 else 0


def joined(values: Sequence[bytes]) -> bytes:
    return values.buffer if isinstance(values, Fixed) else b"".join(values)


def take(values: Sequence[bytes], positions: Sequence[int]) -> Sequence[bytes]:
    """The values at `positions`, staying packed when they are."""
    return values.take(positions) if isinstance(values, Fixed) else [values[i] for i in positions]


class BulkWriter:
    """Protocol text written straight to one raw connection, one batch in flight:
    Redis applies a batch while Python builds the next. Replies are read on the next
    send (or `drain`), and the first error reply is raised."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self._in_flight = 0
        self.broken = False

    def send(self, text: bytes, replies: int) -> int:
        self.drain()
        if replies:
            try:
                self.connection.send_packed_command([text], check_health=False)
            except BaseException:
                self.broken = True
                raise
            self._in_flight = replies
        return len(text)

    def drain(self) -> list[Any]:
        """Reads the replies of what is in flight."""
        replies = []
        try:
            while self._in_flight:
                self._in_flight -= 1
                replies.append(self.connection.read_response())
        except BaseException:
            # Unread replies would answer the next user's commands.
            self.broken = True
            raise
        return replies

    def close(self) -> None:
        if self._in_flight or self.broken:
            self.connection.disconnect()


def is_error(reply: Any) -> bool:
    return isinstance(reply, redis.ResponseError)


class Fanout:
    """One BulkWriter per server for the length of a job: each call groups keys by the
    server holding their rows and pipelines the commands on every server at once. On
    one node a multi-key command carries up to KEYS_PER_COMMAND keys; in a cluster each
    key gets its own command, since a multi-key command must stay within one slot.

    Every column holds one value per key; the keys decide where each row goes."""

    def __init__(self, nodes: Nodes) -> None:
        self.nodes = nodes
        self._writers: dict[str, BulkWriter] = {}

    def writer(self, node: str) -> BulkWriter:
        writer = self._writers.get(node)
        if writer is None:
            writer = self._writers[node] = BulkWriter(self.nodes.connection(node))
        return writer

    def send(self, name: bytes, keys: Sequence[bytes], columns: Sequence[Column], multi_key: bool = True) -> int:
        """Sends `name` over every row; returns the bytes sent. Replies are checked on the next send."""
        sent = 0
        for node, positions in self.nodes.group(keys).items():
            sent += self.writer(node).send(*self._commands(name, positions, columns, multi_key))
        return sent

    def call(self, name: bytes, keys: Sequence[bytes], columns: Sequence[Column], multi_key: bool = True) -> list[Any]:
        """Like `send`, then waits: one reply per key, in key order (MGET's lists are flattened)."""
        grouped = self.nodes.group(keys)
        for node, positions in grouped.items():
            self.writer(node).send(*self._commands(name, positions, columns, multi_key))
        values: list[Any] = [None] * len(keys)
        for node, positions in grouped.items():
            replies = self.writer(node).drain()
            flat = [value for reply in replies for value in (reply if isinstance(reply, list) else [reply])]
            for position, value in zip(positions, flat):
                values[position] = value
        return values

    def _commands(self, name: bytes, positions: list[int], columns: Sequence[Column], multi_key: bool) -> tuple[bytes, int]:
        if len(positions) != len(columns[0].values):
            columns = [Column(take(column.values, positions), column.head, column.tail) for column in columns]
        if self.nodes.cluster or not multi_key:
            return pack(name, columns, per_key=True)
        texts, replies = [], 0
        for start in range(0, len(positions), KEYS_PER_COMMAND):
            chunk = [Column(column.values[start : start + KEYS_PER_COMMAND], column.head, column.tail) for column in columns]
            text, count = pack(name, chunk, per_key=False)
            texts.append(text)
            replies += count
        return b"".join(texts), replies

    def drain(self) -> None:
        for writer in self._writers.values():
            writer.drain()

    def __enter__(self) -> Fanout:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: Any) -> None:
        try:
            if kind is None:
                self.drain()
        finally:
            for node, writer in self._writers.items():
                writer.close()
                self.nodes.release(node, writer.connection)
            self._writers.clear()
