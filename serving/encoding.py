"""Bytes for the online store: entity keys, feature rows, and single values.

A row blob is built for read speed and for whole-column (numpy) encoding at export:

    [null bitmap][event time µs][fixed-width features...][msgpack tail]

Fixed-width features (ints, floats, bools, dates, microsecond timestamps) sit in one
little-endian struct that `struct.unpack_from` reads in one call; everything else
(strings, decimals, lists, other timestamps...) goes into one msgpack array at the
end, with ext types so every value comes back as the same Python value. The layout
is a property of the snapshot's Arrow schema, recorded once per version in Redis, so
equal values always give equal bytes (incremental exports compare blobs).
"""

from __future__ import annotations

import datetime as dt
import struct
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Iterator, Sequence, overload

import msgpack
import numpy as np
import pyarrow as pa

from serving.errors import EntityKeyError

EPOCH = dt.datetime(1970, 1, 1)
EPOCH_DATE = dt.date(1970, 1, 1)
UTC = dt.timezone.utc

# msgpack ext type codes of the value codec.
_EXT_DECIMAL = 1
_EXT_DATE = 2
_EXT_NAIVE_DATETIME = 3
_EXT_AWARE_DATETIME = 4
_EXT_TIMEDELTA = 5
_EXT_BIG_INT = 6
_EXT_TIME = 7
_MICROS_AND_OFFSET = struct.Struct(">qi")
_INT64 = struct.Struct(">q")
_INT32 = struct.Struct(">i")


def _micros(delta: dt.timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _to_ext(value: Any) -> msgpack.ExtType:
    # datetime before date: a datetime is a date.
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            return msgpack.ExtType(_EXT_NAIVE_DATETIME, _INT64.pack(_micros(value - EPOCH)))
        offset = value.utcoffset() or dt.timedelta(0)
        utc_naive = value.replace(tzinfo=None) - offset
        return msgpack.ExtType(_EXT_AWARE_DATETIME, _MICROS_AND_OFFSET.pack(_micros(utc_naive - EPOCH), _micros(offset) // 1_000_000))
    if isinstance(value, dt.date):
        return msgpack.ExtType(_EXT_DATE, _INT32.pack((value - EPOCH_DATE).days))
    if isinstance(value, Decimal):
        return msgpack.ExtType(_EXT_DECIMAL, str(value).encode())
    if isinstance(value, dt.timedelta):
        return msgpack.ExtType(_EXT_TIMEDELTA, _INT64.pack(_micros(value)))
    if isinstance(value, dt.time):
        return msgpack.ExtType(_EXT_TIME, value.isoformat().encode())
    if isinstance(value, int):
        return msgpack.ExtType(_EXT_BIG_INT, str(value).encode())
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot store a {type(value).__name__} online: {value!r}")


def _from_ext(code: int, data: bytes) -> Any:
    if code == _EXT_NAIVE_DATETIME:
        return EPOCH + dt.timedelta(microseconds=_INT64.unpack(data)[0])
    if code == _EXT_AWARE_DATETIME:
        micros, offset = _MICROS_AND_OFFSET.unpack(data)
        zone = UTC if offset == 0 else dt.timezone(dt.timedelta(seconds=offset))
        return (EPOCH + dt.timedelta(microseconds=micros, seconds=offset)).replace(tzinfo=zone)
    if code == _EXT_DATE:
        return EPOCH_DATE + dt.timedelta(days=_INT32.unpack(data)[0])
    if code == _EXT_DECIMAL:
        return Decimal(data.decode())
    if code == _EXT_TIMEDELTA:
        return dt.timedelta(microseconds=_INT64.unpack(data)[0])
    if code == _EXT_TIME:
        return dt.time.fromisoformat(data.decode())
    if code == _EXT_BIG_INT:
        return int(data.decode())
    return msgpack.ExtType(code, data)


def _packer() -> msgpack.Packer:
    # One per caller: a Packer keeps a buffer, so it is not shared between threads.
    return msgpack.Packer(default=_to_ext, use_bin_type=True, datetime=False)


def pack_value(value: Any) -> bytes:
    """One Python value as msgpack; `unpack_value` gives back an equal value of the same type."""
    return _packer().pack(value)


def unpack_value(data: bytes) -> Any:
    return msgpack.unpackb(data, ext_hook=_from_ext, raw=False, strict_map_key=False, use_list=True)


# ---------------------------------------------------------------- entity keys

_KEY_INT = 0x01
_KEY_STR = 0x02
# Below this many rows a view's columns are unpacked with struct, from this many up with numpy.
_FEW_ROWS = 8
_INT_KEY_DTYPE = np.dtype([("tag", "u1"), ("value", ">i8")])


def key_part(value: Any) -> bytes:
    """A type-tagged, self-delimiting encoding, so no two key tuples share bytes."""
    if isinstance(value, str):
        raw = value.encode()
        return bytes((_KEY_STR,)) + len(raw).to_bytes(4, "big") + raw
    return bytes((_KEY_INT,)) + _INT64.pack(value)


def encode_key(values: Sequence[Any]) -> bytes:
    return b"".join(key_part(value) for value in values)


INT_KEY_WIDTH = 9
_INT_KEY_STRUCTS: dict[int, struct.Struct] = {}


def packed_int_keys(values: Sequence[int]) -> bytes:
    """The keys of single-integer entities back to back, INT_KEY_WIDTH bytes each: one
    struct call instead of one `key_part` per entity. Raises struct.error out of int64 range."""
    count = len(values)
    packer = _INT_KEY_STRUCTS.get(count)
    if packer is None:
        packer = struct.Struct(">" + "Bq" * count)
        if count <= 1024:
            _INT_KEY_STRUCTS[count] = packer
    args: list[Any] = [_KEY_INT] * (2 * count)
    args[1::2] = values
    return packer.pack(*args)


class Fixed(Sequence[bytes]):
    """Values of one width back to back in one buffer: a sequence of bytes that an export
    never has to split into a million Python objects and join again. numpy lays out
    protocol text straight from `buffer`; positions are picked with `take`."""

    def __init__(self, buffer: bytes, width: int) -> None:
        self.buffer = buffer
        self.width = width

    def __len__(self) -> int:
        return len(self.buffer) // self.width

    @overload
    def __getitem__(self, index: int) -> bytes: ...
    @overload
    def __getitem__(self, index: slice) -> Fixed: ...
    def __getitem__(self, index: int | slice) -> bytes | Fixed:
        width = self.width
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step != 1:
                return self.take(list(range(start, stop, step)))
            return Fixed(self.buffer[start * width : stop * width], width)
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self.buffer[index * width : (index + 1) * width]

    def __iter__(self) -> Iterator[bytes]:
        buffer, width = self.buffer, self.width
        return (buffer[start : start + width] for start in range(0, len(buffer), width))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Fixed):
            return self.width == other.width and self.buffer == other.buffer
        return isinstance(other, Sequence) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]

    def take(self, positions: Sequence[int]) -> Fixed:
        array = np.frombuffer(self.buffer, dtype=f"V{self.width}")
        return Fixed(array[np.asarray(positions, dtype=np.intp)].tobytes(), self.width)


def encode_keys(table: pa.Table, columns: Sequence[str]) -> Sequence[bytes]:
    """The key bytes of every row of `table`; one numpy pass for a single integer key."""
    if len(columns) == 1 and pa.types.is_integer(table.schema.field(columns[0]).type):
        column = table.column(columns[0])
        if column.null_count:
            raise EntityKeyError(f"entity key column '{columns[0]}' holds NULLs; keys must not be NULL")
        packed = np.empty(table.num_rows, dtype=_INT_KEY_DTYPE)
        packed["tag"] = _KEY_INT
        packed["value"] = column.to_numpy()
        return Fixed(packed.tobytes(), _INT_KEY_DTYPE.itemsize)
    parts = [table.column(name).to_pylist() for name in columns]
    return [encode_key(values) for values in zip(*parts)]


def split_fixed(buffer: bytes, width: int) -> list[bytes]:
    return [buffer[start : start + width] for start in range(0, len(buffer), width)]


# ---------------------------------------------------------------- feature rows

# Arrow type -> (layout kind, struct code). Every other type goes into the msgpack tail.
_FIXED_KINDS = {"int": "q", "uint": "Q", "float": "d", "bool": "?", "timestamp": "q", "date": "i"}


def _kind_of(arrow_type: pa.DataType) -> str:
    if pa.types.is_boolean(arrow_type):
        return "bool"
    if pa.types.is_unsigned_integer(arrow_type):
        return "uint"
    if pa.types.is_integer(arrow_type):
        return "int"
    if pa.types.is_floating(arrow_type):
        return "float"
    if pa.types.is_timestamp(arrow_type) and arrow_type.unit == "us":
        return "timestamp"
    if pa.types.is_date32(arrow_type):
        return "date"
    return "tail"


@dataclass(frozen=True)
class RowLayout:
    """Where each feature lives in a row blob. Saved with each version; a reader decodes with it."""

    features: tuple[str, ...]
    kinds: tuple[str, ...]
    time_zones: tuple[str | None, ...]

    @classmethod
    def for_schema(cls, schema: pa.Schema, features: Sequence[str]) -> RowLayout:
        types = [schema.field(name).type for name in features]
        return cls(
            tuple(features),
            tuple(_kind_of(t) for t in types),
            tuple(t.tz if pa.types.is_timestamp(t) else None for t in types),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"features": list(self.features), "kinds": list(self.kinds), "time_zones": list(self.time_zones)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RowLayout:
        return cls(tuple(data["features"]), tuple(data["kinds"]), tuple(data["time_zones"]))

    @property
    def fixed(self) -> list[int]:
        return [i for i, kind in enumerate(self.kinds) if kind != "tail"]

    @property
    def tail(self) -> list[int]:
        return [i for i, kind in enumerate(self.kinds) if kind == "tail"]

    @property
    def bitmap_bytes(self) -> int:
        # bit 0: the event time; bit 1 + i: feature i.
        return (len(self.features) + 1 + 7) // 8

    @property
    def struct(self) -> struct.Struct:
        return struct.Struct("<" + f"{self.bitmap_bytes}sq" + "".join(_FIXED_KINDS[self.kinds[i]] for i in self.fixed))

    def numpy_dtype(self) -> np.dtype:
        fields = [("bitmap", f"V{self.bitmap_bytes}"), ("event", "<i8")]
        codes = {"q": "<i8", "Q": "<u8", "d": "<f8", "?": "?", "i": "<i4"}
        fields += [(f"f{i}", codes[_FIXED_KINDS[self.kinds[i]]]) for i in self.fixed]
        return np.dtype(fields)


def _fixed_values(column: pa.ChunkedArray, kind: str) -> np.ndarray:
    if kind == "timestamp":
        column = column.cast(pa.int64())
    elif kind == "date":
        column = column.cast(pa.int32())
    elif kind == "float":
        column = column.cast(pa.float64())
    filler = {"bool": False, "float": 0.0}.get(kind, 0)
    return column.fill_null(filler).to_numpy()


def encode_rows(table: pa.Table, layout: RowLayout, event_column: str = "event_timestamp") -> Sequence[bytes]:
    """One blob per row of `table`: the event time and the layout's features."""
    rows = table.num_rows
    packed = np.zeros(rows, dtype=layout.numpy_dtype())
    bitmap = np.zeros((rows, layout.bitmap_bytes), dtype=np.uint8)

    def mark_nulls(column: pa.ChunkedArray, bit: int) -> None:
        if column.null_count:
            nulls = column.is_null().to_numpy(zero_copy_only=False)
            bitmap[nulls, bit // 8] |= np.uint8(1 << (bit % 8))

    event = table.column(event_column)
    mark_nulls(event, 0)
    packed["event"] = _fixed_values(event, "timestamp")
    for i in layout.fixed:
        column = table.column(layout.features[i])
        mark_nulls(column, i + 1)
        packed[f"f{i}"] = _fixed_values(column, layout.kinds[i])
    packed["bitmap"] = bitmap.view(f"V{layout.bitmap_bytes}").reshape(rows)
    blobs = Fixed(packed.tobytes(), packed.dtype.itemsize)
    if not layout.tail:
        return blobs
    # NULLs in the tail are msgpack nils; the bitmap covers fixed-width features only.
    tails = zip(*(table.column(layout.features[i]).to_pylist() for i in layout.tail))
    pack = _packer().pack
    return [head + pack(list(values)) for head, values in zip(blobs, tails)]


class RowDecoder:
    """Decodes row blobs of one layout into (event time, [feature values])."""

    def __init__(self, layout: RowLayout) -> None:
        self.layout = layout
        self._struct = layout.struct
        self._fixed = layout.fixed
        self._tail = layout.tail
        self._kinds = layout.kinds
        self._converters = {i: _converter(layout.kinds[i], layout.time_zones[i]) for i in self._fixed}
        # Field of each fixed-width feature in the unpacked struct (bitmap and event time come first).
        self._slots = {i: slot for slot, i in enumerate(self._fixed, start=2)}
        self._column_converters = {i: _column_converter(layout.kinds[i], layout.time_zones[i]) for i in self._fixed}
        self._array_converters = {i: _array_converter(layout.kinds[i], layout.time_zones[i]) for i in self._fixed}
        self._dtype = _with_integer_bitmap(layout.numpy_dtype())
        # Only ints, floats and bools, no NULL: the struct's values are the features, in order.
        self._plain = not self._tail and not any(self._converters.values())
        self._no_nulls = bytes(layout.bitmap_bytes)

    def decode(self, blob: bytes) -> tuple[dt.datetime | None, Sequence[Any]]:
        unpacked = self._struct.unpack_from(blob)
        if self._plain and unpacked[0] == self._no_nulls:
            return EPOCH + dt.timedelta(microseconds=unpacked[1]), unpacked[2:]
        bitmap = int.from_bytes(unpacked[0], "little")
        event = None if bitmap & 1 else EPOCH + dt.timedelta(microseconds=unpacked[1])
        values: list[Any] = [None] * len(self._kinds)
        for slot, i in enumerate(self._fixed, start=2):
            if not (bitmap >> (i + 1)) & 1:
                convert = self._converters[i]
                values[i] = convert(unpacked[slot]) if convert else unpacked[slot]
        if self._tail:
            tail = unpack_value(blob[self._struct.size :])
            for i, value in zip(self._tail, tail):
                values[i] = value
        return event, values

    def columns(
        self, blobs: Sequence[bytes | None], positions: Sequence[int]
    ) -> tuple[list[dt.datetime | None], list[list[Any]], list[list[int]]]:
        """Per row: the event time (None for a missing blob or a row outside its TTL); per
        position: that feature's column (None where NULL, missing or outside TTL), and the
        rows where it is NULL in a row that is there and inside its TTL."""
        count = len(blobs)
        present = blobs if None not in blobs else [blob for blob in blobs if blob is not None]
        joined = b"".join(present)
        if self._tail or len(joined) != self._struct.size * len(present):
            return self._columns_row_by_row(blobs, positions)
        if len(present) < _FEW_ROWS:
            # Numpy's fixed cost outweighs its speed for a handful of rows.
            fields = list(zip(*self._struct.iter_unpack(joined))) or [()] * (2 + len(self._fixed))
            add, delta = EPOCH.__add__, dt.timedelta
            events: list[Any] = [add(delta(0, 0, micros)) for micros in fields[1]]
            columns = [self._column_converters[position](fields[self._slots[position]]) for position in positions]
            dirty = [(row, int.from_bytes(packed, "little")) for row, packed in enumerate(fields[0]) if packed != self._no_nulls]
        else:
            table = np.frombuffer(joined, dtype=self._dtype)
            events = table["event"].view("datetime64[us]").tolist()
            columns = [self._array_converters[position](table[f"f{position}"]) for position in positions]
            dirty = self._dirty_rows(table, joined, len(present))
        rows_at = None if len(present) == count else [row for row, blob in enumerate(blobs) if blob is not None]
        nulls: list[list[int]] = [[] for _ in positions]
        if dirty:
            self._blank_nulls(dirty, events, columns, positions, nulls, rows_at)
        if rows_at is not None:
            events = _spread(events, blobs)
            columns = [_spread(column, blobs) for column in columns]
        return events, columns, nulls

    def _dirty_rows(self, table: np.ndarray, joined: bytes, rows: int) -> list[tuple[int, int]]:
        """(row, bitmap) of each row with any bit set in its null bitmap."""
        if self._dtype.fields["bitmap"][0].kind == "u":
            bitmaps = table["bitmap"]
            dirty = np.flatnonzero(bitmaps)
            return list(zip(dirty.tolist(), bitmaps[dirty].tolist()))
        flags = np.frombuffer(joined, dtype=np.uint8).reshape(rows, -1)[:, : self.layout.bitmap_bytes]
        return [(row, int.from_bytes(flags[row].tobytes(), "little")) for row in np.flatnonzero(flags.any(axis=1)).tolist()]

    def _blank_nulls(
        self,
        dirty: list[tuple[int, int]],
        events: list[Any],
        columns: list[list[Any]],
        positions: Sequence[int],
        nulls: list[list[int]],
        rows_at: list[int] | None,
    ) -> None:
        """Sets None where a dirty row's bitmap marks a NULL feature or a row outside its TTL."""
        for row, bitmap in dirty:
            if bitmap & 1:
                events[row] = None
                for column in columns:
                    column[row] = None
                continue
            for column, position, nulled in zip(columns, positions, nulls):
                if (bitmap >> (position + 1)) & 1:
                    column[row] = None
                    nulled.append(row if rows_at is None else rows_at[row])

    def _columns_row_by_row(
        self, blobs: Sequence[bytes | None], positions: Sequence[int]
    ) -> tuple[list[dt.datetime | None], list[list[Any]], list[list[int]]]:
        rows = [None if blob is None else self.decode(blob) for blob in blobs]
        events = [None if row is None else row[0] for row in rows]
        found = [None if row is None or row[0] is None else row[1] for row in rows]
        columns = [[None if values is None else values[position] for values in found] for position in positions]
        nulls = [[row for row, value in enumerate(column) if value is None and found[row] is not None] for column in columns]
        return events, columns, nulls


def _with_integer_bitmap(dtype: np.dtype) -> np.dtype:
    """`dtype` with its bitmap read as one little-endian unsigned integer, when it is 1, 2, 4 or 8 bytes."""
    width = dtype.fields["bitmap"][0].itemsize
    if width not in (1, 2, 4, 8):
        return dtype
    return np.dtype([(name, f"<u{width}" if name == "bitmap" else dtype.fields[name][0]) for name in dtype.names])


def _spread(values: list[Any], blobs: Sequence[bytes | None]) -> list[Any]:
    """`values` of the present blobs put back at their rows, None at the missing ones."""
    taken = iter(values)
    return [None if blob is None else next(taken) for blob in blobs]


def _column_converter(kind: str, time_zone: str | None) -> Any:
    """Turns one unpacked struct field (a tuple over rows) into the feature's column."""
    convert = _converter(kind, time_zone)
    if convert is None:
        return list
    return lambda values: [convert(value) for value in values]


def _array_converter(kind: str, time_zone: str | None) -> Any:
    """Turns one numpy field (an array over rows) into the feature's column, in C where numpy can."""
    if kind == "timestamp" and time_zone is None:
        return lambda values: values.view("datetime64[us]").tolist()
    if kind == "date":
        return lambda values: values.astype("datetime64[D]").tolist()
    convert = _converter(kind, time_zone)
    if convert is None:
        return lambda values: values.tolist()
    return lambda values: [convert(value) for value in values.tolist()]


def _converter(kind: str, time_zone: str | None) -> Any:
    if kind == "timestamp":
        if time_zone is None:
            return lambda micros: EPOCH + dt.timedelta(microseconds=micros)
        zone = _zone(time_zone)
        return lambda micros: (EPOCH + dt.timedelta(microseconds=micros)).replace(tzinfo=UTC).astimezone(zone)
    if kind == "date":
        return lambda days: EPOCH_DATE + dt.timedelta(days=days)
    return None


def _zone(name: str) -> dt.tzinfo:
    if name.upper() in ("UTC", "+00:00", "ETC/UTC"):
        return UTC
    if name[0] in "+-":
        sign = 1 if name[0] == "+" else -1
        hours, _, minutes = name[1:].partition(":")
        return dt.timezone(sign * dt.timedelta(hours=int(hours), minutes=int(minutes or 0)))
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)
