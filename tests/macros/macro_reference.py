"""Brute-force reference semantics of the macros, in plain Python.

Written from the rules in common docs (time_bounds.sql, point_in_time_join_sql.sql,
window_aggregates.sql), not from the SQL: every function loops over rows. Times are
epoch microseconds (int) or None; rows are dicts.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from typing import Any, Iterable, Sequence

Row = dict[str, Any]


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def ascending_nulls_last(value: Any) -> tuple:
    """SQL `asc nulls last` order for one value (DuckDB puts NaN after every number)."""
    if value is None:
        return (2,)
    if _is_nan(value):
        return (1,)
    return (0, value)


def descending_nulls_last(value: Any) -> tuple:
    if value is None:
        return (1,)
    return (0, -value)


def _key(row: Row, keys: Sequence[str]) -> tuple | None:
    values = tuple(row[key] for key in keys)
    return None if any(value is None for value in values) else values


def point_in_time(
    spine: Sequence[Row],
    spine_timestamp: str,
    view: Sequence[Row],
    keys: Sequence[str],
    timestamp: str,
    features: Sequence[str],
    created: str | None = None,
    ttl_us: int | None = None,
) -> list[dict[str, Any]]:
    """For each spine row, in order: the features (and `__event_at`) of the view row with
    the same keys and the latest timestamp <= the spine time, within the TTL if any;
    ties: latest created (nulls last), then smallest feature values (nulls last)."""
    by_key: dict[tuple, list[Row]] = defaultdict(list)
    for row in view:
        key = _key(row, keys)
        if key is not None and row[timestamp] is not None:
            by_key[key].append(row)
    result = []
    for spine_row in spine:
        key = _key(spine_row, keys)
        at = spine_row[spine_timestamp]
        best = None
        if key is not None and at is not None:
            for row in by_key.get(key, ()):
                ts = row[timestamp]
                if ts > at or (ttl_us is not None and ts < at - ttl_us):
                    continue
                rank = (
                    -ts,
                    descending_nulls_last(row[created]) if created else (),
                    tuple(ascending_nulls_last(row[name]) for name in features),
                )
                if best is None or rank < best[0]:
                    best = (rank, row)
        chosen = best[1] if best else None
        out = {name: (chosen[name] if chosen else None) for name in features}
        out["__event_at"] = chosen[timestamp] if chosen else None
        result.append(out)
    return result


def aggregate(function: str, values: list[Any]) -> Any:
    """One aggregate over the values of the events in a window (None = SQL NULL).

    `values` holds the column's value per event; for count without a column, 1s."""
    present = [value for value in values if value is not None]
    if function == "count":
        return len(present)
    if function == "count_distinct":
        return len(set(present))
    if function == "sum":
        return math.fsum(present) if present else 0
    if not present:
        return None
    if function == "avg":
        return math.fsum(present) / len(present)
    if function == "min":
        return min(present)
    if function == "max":
        return max(present)
    if function == "stddev":
        return statistics.stdev(present) if len(present) >= 2 else None
    raise ValueError(f"unknown function {function}")


def window_value(events: Iterable[Row], timestamp: str, at: int, aggregation: dict[str, Any]) -> Any:
    """The aggregation over the events in (at - w, at]."""
    width = aggregation["window_us"]
    column = aggregation.get("column")
    values = [1 if column is None else event[column] for event in events if at - width < event[timestamp] <= at]
    return aggregate(aggregation["function"], values)


def _events_by_key(source: Sequence[Row], keys: Sequence[str], timestamp: str) -> dict[tuple, list[Row]]:
    by_key: dict[tuple, list[Row]] = defaultdict(list)
    for row in source:
        key = _key(row, keys)
        if key is not None and row[timestamp] is not None:
            by_key[key].append(row)
    return by_key


def windows_at_points(
    source: Sequence[Row], keys: Sequence[str], timestamp: str, aggregations: Sequence[dict[str, Any]], change_points: bool
) -> list[tuple]:
    """at='events' / 'change_points': (keys..., time, values...) sorted by keys and time."""
    widths = {aggregation["window_us"] for aggregation in aggregations}
    rows = []
    for key, events in _events_by_key(source, keys, timestamp).items():
        times = {event[timestamp] for event in events}
        if change_points:
            times |= {event[timestamp] + width for event in events for width in widths}
        for at in times:
            rows.append((*key, at, *(window_value(events, timestamp, at, a) for a in aggregations)))
    return sorted(rows, key=lambda row: row[: len(keys) + 1])


def windows_at_spine(
    source: Sequence[Row],
    keys: Sequence[str],
    timestamp: str,
    aggregations: Sequence[dict[str, Any]],
    spine: Sequence[Row],
    spine_timestamp: str,
) -> list[tuple]:
    """at='spine': one tuple of values per spine row, in spine order; all None for a
    spine row with a NULL key or time."""
    by_key = _events_by_key(source, keys, timestamp)
    rows = []
    for spine_row in spine:
        key = _key(spine_row, keys)
        at = spine_row[spine_timestamp]
        if key is None or at is None:
            rows.append(tuple(None for _ in aggregations))
            continue
        events = by_key.get(key, [])
        rows.append(tuple(window_value(events, timestamp, at, a) for a in aggregations))
    return rows
