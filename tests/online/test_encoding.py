"""Values go to Redis and come back as the same value of the same type, bit for bit."""

from __future__ import annotations

import datetime as dt
import math
import struct
from decimal import Decimal

import pyarrow as pa
import pytest

from serving.encoding import RowDecoder, RowLayout, encode_key, encode_keys, encode_rows, pack_value, packed_int_keys, unpack_value

UTC = dt.timezone.utc
IST = dt.timezone(dt.timedelta(hours=5, minutes=30))


def bits(value: float) -> bytes:
    return struct.pack(">d", value)


def same(a: object, b: object) -> bool:
    """Equal, of the same type, floats compared by their bits (so NaN == NaN, -0.0 != 0.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return bits(a) == bits(b)  # type: ignore[arg-type]
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))  # type: ignore[arg-type]
    if isinstance(a, Decimal):
        return str(a) == str(b)
    if isinstance(a, dt.datetime):
        return a == b and a.utcoffset() == b.utcoffset()  # type: ignore[union-attr]
    return a == b


VALUES = [
    0, 1, -1, 2**63 - 1, -(2**63), 2**64 - 1, 2**80, -(2**90),
    0.0, -0.0, 1.5, math.pi, float("nan"), float("inf"), float("-inf"), 5e-324, struct.unpack(">d", b"\x7f\xf8\x00\x00\x00\x00\x00\x01")[0],
    Decimal("1.10"), Decimal("-0.000"), Decimal("12345678901234567890.123456789"), Decimal("NaN"),
    "", "plain", "héllo wörld", "日本語 🚀", "a\x00b",
    True, False, None,
    dt.date(2024, 2, 29), dt.date(1, 1, 1), dt.date(9999, 12, 31),
    dt.datetime(2024, 3, 1, 12, 30, 45, 123456), dt.datetime(1900, 1, 1),
    dt.datetime(2024, 3, 1, 12, 30, 45, 123456, tzinfo=UTC), dt.datetime(2024, 3, 1, 18, 0, tzinfo=IST),
    dt.datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=dt.timezone(-dt.timedelta(hours=8))),
    dt.timedelta(days=-3, microseconds=7),
    [], [1, 2.5, "x", None, [True, Decimal("2")]], [float("nan"), -0.0],
]


@pytest.mark.parametrize("value", VALUES, ids=[f"{type(v).__name__}-{i}" for i, v in enumerate(VALUES)])
def test_every_value_round_trips_with_its_type(value: object) -> None:
    assert same(unpack_value(pack_value(value)), value)


def test_bool_and_int_are_not_confused() -> None:
    assert unpack_value(pack_value(True)) is True
    assert type(unpack_value(pack_value(1))) is int
    assert unpack_value(pack_value([1, True, 0, False])) == [1, True, 0, False]
    assert [type(v) for v in unpack_value(pack_value([1, True]))] == [int, bool]


def test_naive_and_aware_timestamps_stay_apart() -> None:
    naive = unpack_value(pack_value(dt.datetime(2024, 1, 1)))
    aware = unpack_value(pack_value(dt.datetime(2024, 1, 1, tzinfo=UTC)))
    assert naive.tzinfo is None
    assert aware.tzinfo is not None and aware.utcoffset() == dt.timedelta(0)


def table_of_every_type() -> pa.Table:
    return pa.table(
        {
            "event_timestamp": pa.array([dt.datetime(2024, 1, 1, 5), None, dt.datetime(1960, 1, 1, 0, 0, 0, 1), dt.datetime(2024, 1, 2)]),
            "i": pa.array([1, None, -(2**63), 2**63 - 1], pa.int64()),
            "small": pa.array([7, None, -1, 0], pa.int16()),
            "f": pa.array([float("nan"), -0.0, float("inf"), None]),
            "b": pa.array([True, None, False, True]),
            "s": pa.array(["héllo", None, "", "🚀"]),
            "d": pa.array([Decimal("1.10"), None, Decimal("-3.00"), Decimal("0")], pa.decimal128(10, 2)),
            "day": pa.array([dt.date(2020, 2, 29), None, dt.date(1900, 1, 1), dt.date(1970, 1, 1)]),
            "tz": pa.array([dt.datetime(2024, 1, 1, tzinfo=UTC), None, dt.datetime(1950, 1, 1, tzinfo=UTC), dt.datetime(2024, 1, 1, 0, 0, 0, 5, tzinfo=UTC)], pa.timestamp("us", "UTC")),
            "naive": pa.array([dt.datetime(2024, 1, 1, 1, 2, 3), None, dt.datetime(1950, 1, 1), dt.datetime(2000, 1, 1)], pa.timestamp("us")),
            "nanos": pa.array([dt.datetime(2024, 1, 1), None, dt.datetime(1950, 1, 1), dt.datetime(2000, 1, 1)], pa.timestamp("ns")),
            "l": pa.array([[1, 2], None, [], [None]], pa.list_(pa.int64())),
        }
    )


def test_rows_of_every_arrow_type_round_trip_exactly() -> None:
    table = table_of_every_type()
    features = [name for name in table.column_names if name != "event_timestamp"]
    layout = RowLayout.for_schema(table.schema, features)
    decoder = RowDecoder(RowLayout.from_dict(layout.to_dict()))
    expected_events = table.column("event_timestamp").to_pylist()
    # Nanosecond timestamps come back as Python datetimes (µs), like Arrow's own to_pylist of µs.
    expected = [table.column(name).cast(pa.timestamp("us")).to_pylist() if name == "nanos" else table.column(name).to_pylist() for name in features]
    for row, blob in enumerate(encode_rows(table, layout)):
        event, values = decoder.decode(blob)
        assert event == expected_events[row]
        for column, value in zip(expected, values):
            assert same(value, column[row]), (row, column[row], value)


def test_equal_rows_encode_to_equal_bytes() -> None:
    table = table_of_every_type()
    layout = RowLayout.for_schema(table.schema, table.column_names[1:])
    assert encode_rows(table, layout) == encode_rows(table.slice(0), layout)


def test_entity_keys_never_collide_across_types_and_composites() -> None:
    keys = [(1,), ("1",), (1, "ab"), (1, "a"), ("1a",), (12, ""), (1, "2"), ("", ""), ("",), (0,), (-1,)]
    encoded = [encode_key(key) for key in keys]
    assert len(set(encoded)) == len(keys)


def test_vectorised_keys_equal_one_by_one_keys() -> None:
    table = pa.table({"user_id": [1, -5, 2**62], "category": ["a", "é", ""]})
    assert encode_keys(table, ["user_id"]) == [encode_key((v,)) for v in [1, -5, 2**62]]
    assert encode_keys(table, ["user_id", "category"]) == [encode_key(row) for row in [(1, "a"), (-5, "é"), (2**62, "")]]


@pytest.mark.parametrize("rows", [5, 20], ids=["few-rows-by-struct", "many-rows-by-numpy"])
@pytest.mark.parametrize("fixed_width_only", [True, False], ids=["fixed-width-columnar", "with-tail-row-by-row"])
def test_columns_equal_rows_decoded_one_by_one_with_missing_nulls_and_outside_ttl(fixed_width_only: bool, rows: int) -> None:
    table = pa.concat_tables([table_of_every_type()] * 5).slice(0, rows)
    features = [name for name in table.column_names if name != "event_timestamp"]
    if fixed_width_only:
        features = ["i", "small", "f", "b", "day", "tz", "naive"]
    layout = RowLayout.for_schema(table.schema, features)
    decoder = RowDecoder(layout)
    blobs: list[bytes | None] = list(encode_rows(table, layout))
    blobs[1] = blobs[rows // 2 + 1] = None
    positions = [len(features) - 1, 0, 3]
    events, columns, nulls = decoder.columns(blobs, positions)
    for row, blob in enumerate(blobs):
        event, values = decoder.decode(blob) if blob is not None else (None, None)
        assert events[row] == event
        for column, nulled, position in zip(columns, nulls, positions):
            wanted = None if values is None or event is None else values[position]
            assert same(column[row], wanted), (row, position, column[row], wanted)
            assert (row in nulled) == (blob is not None and event is not None and wanted is None)


def test_packed_integer_keys_equal_one_by_one_keys() -> None:
    values = [0, 1, -1, 2**63 - 1, -(2**63), *range(20)]
    assert packed_int_keys(values) == b"".join(encode_key((value,)) for value in values)
    with pytest.raises(struct.error):
        packed_int_keys([2**63])


def test_columns_of_a_three_byte_null_bitmap_mark_the_right_nulls() -> None:
    features = [f"x{k}" for k in range(20)]  # 21 bits: event time + 20 features
    rows = 12
    table = pa.table(
        {
            "event_timestamp": pa.array([None if row == 5 else dt.datetime(2024, 1, 1, row) for row in range(rows)]),
            **{name: pa.array([None if row == k % rows else row * 100 + k for row in range(rows)], pa.int64()) for k, name in enumerate(features)},
        }
    )
    decoder = RowDecoder(RowLayout.for_schema(table.schema, features))
    events, columns, nulls = decoder.columns(encode_rows(table, decoder.layout), [19, 0, 7])
    assert events[5] is None and events[4] == dt.datetime(2024, 1, 1, 4)
    assert columns[0] == [row * 100 + 19 if row not in (5, 7) else None for row in range(rows)]
    assert nulls == [[7], [0], [7]]  # features 19 and 7 are NULL in row 7; row 5, outside its TTL, holds no NULL
