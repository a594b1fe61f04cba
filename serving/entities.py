"""Entity input, checked by one rule on every path: entity_df (offline), entity_rows
(online) and entities files (the CLI).

A key value must have the Python type of its key's declared SQL type, exactly: an
integer key takes int or a numpy/pandas integer, a string key takes str. Nothing is
converted, because a conversion joins the wrong entity without a word: True would
match user 1, and '1' would be cast to 1 offline while online it is another key.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from serving.errors import ColumnClashError, EntityKeyError, InputError

RowLabel = Callable[[int], str]
_NEEDS = {
    int: "an integer (int, numpy integer or pandas Int64; not bool, float or str)",
    str: "a string (str)",
}
# pandas' infer_dtype names for a column whose every value has the key's type.
_INFERRED = {int: "integer", str: "string"}


def key_value_ok(value: Any, wanted: type | None) -> bool:
    """The key rule for one value (None: the key's type is not declared, anything goes)."""
    if wanted is int:
        return type(value) is int or isinstance(value, np.integer)
    if wanted is str:
        return isinstance(value, str)
    return True


def bad_key(label: str, key: str, value: Any, wanted: type) -> EntityKeyError:
    what = "missing" if _is_missing(value) else f"a {type(value).__name__}"
    return EntityKeyError(f"{label}: {key}={value!r} is {what}; {key} needs {_NEEDS[wanted]}")


def _is_missing(value: Any) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and value != value)


def check_key_values(key: str, values: Sequence[Any], wanted: type | None, label: RowLabel) -> None:
    """Refuses the first value of `values` that breaks the key rule, naming its row."""
    if wanted is None:
        return
    for position, value in enumerate(values):
        if not key_value_ok(value, wanted):
            raise bad_key(label(position), key, value, wanted)


def check_key_column(key: str, column: pd.Series, wanted: type | None, label: RowLabel) -> None:
    """The key rule for a frame column: by dtype in one pass, value by value only to name a fault."""
    if wanted is None:
        return
    if pd.api.types.infer_dtype(column, skipna=False) == _INFERRED[wanted] and not column.isna().any():
        return
    check_key_values(key, column.tolist(), wanted, label)


def entity_frame(entity_df: Any) -> pd.DataFrame:
    """entity_df as a DataFrame: a DataFrame, or a list of dicts (one per row), is accepted as is."""
    if isinstance(entity_df, pd.DataFrame):
        return entity_df
    if isinstance(entity_df, (list, tuple)) and entity_df and all(isinstance(row, Mapping) for row in entity_df):
        return pd.DataFrame.from_records(list(entity_df))
    raise InputError(
        f"entity_df must be a pandas DataFrame or a non-empty list of dicts (one per row); got {_kind(entity_df)}"
    )


def timestamp_column_of(entity_df: pd.DataFrame) -> str:
    """The entity frame's timestamp column: `event_timestamp`, else its only datetime column."""
    if "event_timestamp" in entity_df.columns:
        return "event_timestamp"
    candidates = [c for c in entity_df.columns if pd.api.types.is_datetime64_any_dtype(entity_df[c])]
    if len(candidates) == 1:
        return str(candidates[0])
    raise EntityKeyError(
        "entity_df needs an event_timestamp column (or exactly one datetime column, or timestamp_column=...); "
        f"its columns: {', '.join(map(str, entity_df.columns))}"
    )


def check_entity_frame(
    frame: pd.DataFrame,
    key_types: Mapping[str, type | None],
    timestamp_column: str,
    name: str = "entity_df",
    label: RowLabel | None = None,
) -> None:
    """Every key column present and of its key's type, and a timestamp column of timestamps."""
    label = label or (lambda position: f"{name} row {position}")
    columns = ", ".join(map(str, frame.columns))
    missing = [key for key in key_types if key not in frame.columns]
    if missing:
        raise EntityKeyError(f"{name} lacks entity key column(s) {', '.join(missing)}; its columns: {columns}")
    if timestamp_column not in frame.columns:
        raise InputError(
            f"{name} has no timestamp column '{timestamp_column}'; its columns: {columns} "
            "(name the timestamp column with timestamp_column=...)"
        )
    for key, wanted in key_types.items():
        check_key_column(key, frame[key], wanted, label)
    stamps = frame[timestamp_column]
    if not pd.api.types.is_datetime64_any_dtype(stamps):
        first = stamps.iloc[:1].tolist()[0] if len(stamps) else None
        convert = f"pd.to_datetime({name}['{timestamp_column}']"
        if pd.api.types.is_numeric_dtype(stamps):
            how = f"if they are epoch times, convert them with {convert}, unit='s') (or unit='ms', 'us', 'ns')"
        else:
            how = f"convert them with {convert}, format='ISO8601', utc=True) (or format='...' for another layout)"
        raise InputError(
            f"{name} column '{timestamp_column}' holds {stamps.dtype} values ({first!r} in {label(0)}), not timestamps; {how}"
        )
    if stamps.isna().any():
        position = int(np.flatnonzero(stamps.isna().to_numpy())[0])
        raise InputError(f"{label(position)}: {timestamp_column} is missing (NaT); every row needs a timestamp")


def check_outputs(outputs: Sequence[str], taken: Sequence[str], name: str = "entity_df") -> None:
    """A feature column must not replace a column of the caller's frame."""
    clashes = [column for column in outputs if column in set(map(str, taken))]
    if clashes:
        raise ColumnClashError(
            f"feature(s) {', '.join(clashes)} would overwrite the {name} column(s) of the same name; "
            "ask for full_feature_names=True (columns named view__feature), or rename those columns"
        )


def entity_columns(
    entity_rows: Any, keys: Sequence[str], key_types: Mapping[str, type | None]
) -> dict[str, list[Any]]:
    """The key columns of an online request. entity_rows is a list of dicts (one per entity),
    or, as Feast also takes it, a dict of equal-length lists or a DataFrame (one column per key).
    Checked in bulk, and row by row only to name a fault."""
    # The usual list of dicts first: a read of one entity pays for one isinstance.
    if isinstance(entity_rows, (list, tuple)):
        columns = _columns_of_rows(entity_rows, keys)
    elif isinstance(entity_rows, pd.DataFrame):
        columns = _columns_of_mapping({str(name): entity_rows[name].tolist() for name in entity_rows.columns}, keys)
    elif isinstance(entity_rows, Mapping):
        columns = _columns_of_mapping(entity_rows, keys)
    else:
        raise InputError(
            "entity_rows must be a list of dicts (one per entity), a dict of lists (one per key) or a DataFrame; "
            f"got {_kind(entity_rows)}"
        )
    for key, wanted in key_types.items():
        if wanted is not None and not set(map(type, columns[key])) <= {wanted}:
            check_key_values(key, columns[key], wanted, lambda position: f"entity row {position}")
    return columns


def _columns_of_rows(rows: Sequence[Any], keys: Sequence[str]) -> dict[str, list[Any]]:
    try:
        columns = {name: [row[name] for row in rows] for name in keys}
        if not rows or set(map(len, rows)) == {len(keys)}:
            return columns
    except (KeyError, TypeError, IndexError):
        pass
    for position, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise InputError(f"entity row {position} is {_kind(row)}, not a dict of entity keys such as {{'{keys[0]}': ...}}")
        _check_key_names(f"entity row {position} {dict(row)!r}", row.keys(), keys)
    raise AssertionError("unreachable: some row had to break the shape")


def _columns_of_mapping(mapping: Mapping[Any, Any], keys: Sequence[str]) -> dict[str, list[Any]]:
    _check_key_names("entity_rows", mapping.keys(), keys)
    columns = {}
    for key in keys:
        values = mapping[key]
        if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray, pd.Series)):
            raise InputError(
                f"entity_rows['{key}'] must be a list of values (one per entity); got {_kind(values)} "
                f"(one entity is [{{'{key}': ...}}])"
            )
        columns[key] = values.tolist() if isinstance(values, (np.ndarray, pd.Series)) else list(values)
    lengths = {key: len(values) for key, values in columns.items()}
    if len(set(lengths.values())) > 1:
        raise InputError(f"entity_rows' key lists differ in length: {', '.join(f'{key} has {n}' for key, n in lengths.items())}")
    return columns


def _check_key_names(label: str, given: Any, keys: Sequence[str]) -> None:
    missing = [key for key in keys if key not in given]
    extra = sorted(map(str, set(given) - set(keys)))
    if missing or extra:
        problem = "; ".join(
            part
            for part in (
                f"missing entity key(s) {', '.join(missing)}" if missing else "",
                f"unexpected key(s) {', '.join(extra)}" if extra else "",
            )
            if part
        )
        raise EntityKeyError(f"{label}: {problem}; the requested views need exactly: {', '.join(keys)}")


def _kind(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:60]}{'...' if len(text) > 60 else ''}"
