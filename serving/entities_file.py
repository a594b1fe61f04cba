"""Entities files for `featurestore historical`: Parquet or CSV, read without guessing.

Parquet columns keep their types and are checked like any entity_df. A CSV has no types,
so its key and timestamp columns are read as text and converted by explicit rules: an
integer key must be written as an integer, and a timestamp is ISO 8601 unless the caller
names a strftime format or an epoch unit. Nothing is guessed, because every guess has a
silent failure: epoch seconds read as nanoseconds land in 1970, and 10/01/2024 is
October 1 or January 10 depending on who reads it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, Mapping, NoReturn

import numpy as np
import pandas as pd

from serving.entities import RowLabel, check_entity_frame
from serving.errors import EntityKeyError, InputError

EPOCH_UNITS = ("s", "ms", "us", "ns")
INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")
_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)")
_ISO_8601 = re.compile(
    r"\d{4}-\d{2}-\d{2}"
    r"([T ]\d{2}(:\d{2}(:\d{2}([.,]\d+)?)?)?)?"
    r"(Z|z|[+-]\d{2}(:?\d{2})?)?"
)
# Day and month in either order (15/01/2024, 10.01.24): readable both ways.
_DAY_MONTH = re.compile(r"(\d{1,2})([/.-])(\d{1,2})\2(\d{4}|\d{2})(\b.*)")


def read_entities(
    path: Path,
    key_types: Mapping[str, type | None],
    timestamp_column: str,
    timestamp_format: str | None = None,
    timestamp_unit: str | None = None,
) -> pd.DataFrame:
    """The entities file as an entity_df whose keys and timestamps pass the entity rule."""
    if timestamp_format and timestamp_unit:
        raise InputError("--timestamp-format and --timestamp-unit exclude each other; pass one")
    if not path.exists():
        raise InputError(f"entities file {path} does not exist")
    if path.suffix not in (".parquet", ".csv"):
        raise InputError(f"entities file {path} must end in .parquet or .csv")
    csv = path.suffix == ".csv"
    label: RowLabel = (lambda position: f"{path} line {position + 2}") if csv else (lambda position: f"{path} row {position + 1}")
    frame = _read_csv(path, [*key_types, timestamp_column]) if csv else _read_parquet(path)
    for key, wanted in key_types.items():
        if csv and key in frame.columns:
            frame[key] = _text_keys(key, frame[key], wanted, label)
    if timestamp_column in frame.columns:
        frame[timestamp_column] = _timestamps(frame[timestamp_column], timestamp_column, timestamp_format, timestamp_unit, label)
    check_entity_frame(frame, key_types, timestamp_column, name=str(path), label=label)
    return frame


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError) as error:
        raise InputError(f"cannot read entities file {path}: {error}") from error


def _read_csv(path: Path, text_columns: list[str]) -> pd.DataFrame:
    """The CSV, with `text_columns` exactly as written (no NA guessing: 'NA' may be a key)."""
    try:
        frame = pd.read_csv(path)
        present = [column for column in dict.fromkeys(text_columns) if column in frame.columns]
        if present:
            text = pd.read_csv(path, usecols=present, dtype=str, keep_default_na=False)
            for column in present:
                frame[column] = text[column].astype(object)
    except (OSError, ValueError) as error:
        raise InputError(f"cannot read entities file {path}: {error}") from error
    return frame


def _text_keys(key: str, column: pd.Series, wanted: type | None, label: RowLabel) -> pd.Series:
    for position, text in enumerate(column.tolist()):
        if text == "":
            raise EntityKeyError(f"{label(position)}: {key} is empty; every row needs a {key}")
    if wanted is not int:
        return column
    values = column.tolist()
    for position, text in enumerate(values):
        if not INTEGER_TEXT.fullmatch(text.strip()):
            raise EntityKeyError(f"{label(position)}: {key}={text!r} is not an integer; {key} is an integer key")
    numbers = [int(text) for text in values]
    for position, number in enumerate(numbers):
        if not -(2**63) <= number < 2**63:
            raise EntityKeyError(f"{label(position)}: {key}={number} is outside the 64-bit integer range")
    return pd.Series(np.array(numbers, dtype=np.int64), index=column.index)


def _timestamps(
    column: pd.Series, name: str, timestamp_format: str | None, unit: str | None, label: RowLabel
) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(column):
        if timestamp_format or unit:
            raise InputError(
                f"column {name} already holds timestamps ({column.dtype}); drop --timestamp-format / --timestamp-unit"
            )
        return column
    if unit:
        return _parse_each(column, label, name, _NUMBER, f"an epoch number (--timestamp-unit {unit})",
                           lambda values: pd.to_datetime(pd.to_numeric(values), unit=unit, utc=True))
    if pd.api.types.is_numeric_dtype(column):
        raise InputError(
            f"column {name} holds numbers ({column.iloc[:1].tolist()[0]!r} in {label(0)}), not timestamps; "
            f"if they are epoch times, pass --timestamp-unit ({', '.join(EPOCH_UNITS)})"
        )
    texts = column.astype(object)
    if timestamp_format:
        return _parse_each(texts, label, name, None, f"a time in --timestamp-format {timestamp_format}",
                           lambda values: pd.to_datetime(values, format=timestamp_format, utc=True))
    iso = texts.astype(str).str.strip().str.fullmatch(_ISO_8601.pattern).to_numpy(dtype=bool)
    if not iso.all():
        position = int(np.flatnonzero(~iso)[0])
        _refuse_non_iso(str(texts.iloc[position]), name, label(position))
    return _parse_each(texts, label, name, _ISO_8601, "an ISO 8601 time",
                       lambda values: pd.to_datetime(values, format="ISO8601", utc=True))


def _refuse_non_iso(text: str, name: str, where: str) -> NoReturn:
    stripped = text.strip()
    if not stripped:
        raise InputError(f"{where}: {name} is empty; every row needs a timestamp")
    if INTEGER_TEXT.fullmatch(stripped):
        raise InputError(
            f"{where}: {name}={text!r} is an integer, not an ISO 8601 time; if the column holds epoch times, "
            f"pass --timestamp-unit ({', '.join(EPOCH_UNITS)}), or --timestamp-format for another layout (e.g. %Y%m%d)"
        )
    day_month = _DAY_MONTH.fullmatch(stripped)
    if day_month:
        sep, year, rest = day_month.group(2), day_month.group(4), day_month.group(5)
        layout = f"{sep}{'%Y' if len(year) == 4 else '%y'}{' %H:%M' if rest.strip() else ''}"
        raise InputError(
            f"{where}: {name}={text!r} is not ISO 8601, and dates written this way read day-first or month-first; "
            f"pass --timestamp-format %d{sep}%m{layout} (day first) or %m{sep}%d{layout} (month first)"
        )
    raise InputError(
        f"{where}: {name}={text!r} is not an ISO 8601 time (e.g. 2024-01-15 or 2024-01-15T10:00:00Z); "
        "pass --timestamp-format (strftime, e.g. %d/%m/%Y %H:%M) for another layout"
    )


def _parse_each(
    values: pd.Series, label: RowLabel, name: str, shape: re.Pattern[str] | None, expected: str,
    parse: Callable[[pd.Series], pd.Series],
) -> pd.Series:
    """Parses the column in one call; on failure, value by value to name the first bad one."""
    try:
        return parse(values)
    except (ValueError, TypeError, OverflowError):
        pass
    for position, value in enumerate(values.tolist()):
        text = str(value).strip()
        try:
            if shape is not None and not shape.fullmatch(text):
                raise ValueError(text)
            parse(pd.Series([text]))
        except (ValueError, TypeError, OverflowError):
            raise InputError(f"{label(position)}: {name}={value!r} is not {expected}") from None
    raise InputError(f"column {name} cannot be read as {expected}")
