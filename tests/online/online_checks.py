"""Comparisons shared by the online tests: online responses against offline retrieval."""

from __future__ import annotations

import datetime as dt
import math
import struct
from typing import Any, Sequence

import pandas as pd

from serving.online.connection import connect
from serving.store import FeatureStore


def drop_prefix(url: str, prefix: str) -> None:
    """Deletes every key of a test's prefix, on one node or across a cluster."""
    client = connect(url)
    try:
        for key in list(client.scan_iter(match=f"{prefix}:*", count=5000)):
            client.unlink(key)
    finally:
        client.close()


def is_null(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def same_value(online: Any, offline: Any) -> bool:
    """Offline (pandas) cannot tell NULL from NaN; anything else must match exactly, floats by bits."""
    if is_null(offline):
        return is_null(online)
    if isinstance(offline, float):
        return isinstance(online, float) and struct.pack(">d", online) == struct.pack(">d", offline)
    return type(online) is type(offline) and online == offline


def _whole(value: Any) -> int:
    assert float(value).is_integer(), value
    return int(value)


def offline_at(store: FeatureStore, features: Sequence[str], rows: list[dict[str, Any]], as_of: dt.datetime) -> pd.DataFrame:
    entity_df = pd.DataFrame(rows)
    entity_df["event_timestamp"] = pd.Timestamp(as_of)
    return store.get_historical_features(entity_df, list(features))


def assert_online_equals_offline(store: FeatureStore, view_name: str, rows: list[dict[str, Any]], as_of: dt.datetime) -> None:
    view = store.get_feature_view(view_name)
    features = [f"{view.name}:{name}" for name in view.feature_names]
    online = store.get_online_features(features, rows).to_dict()
    offline = offline_at(store, features, rows, as_of)
    for name in view.feature_names:
        wanted = offline[name].tolist()
        if view.feature(name).data_type in ("bigint", "integer"):
            # The offline frame turns an integer column with NULLs into floats; the values must still be whole.
            wanted = [want if is_null(want) else _whole(want) for want in wanted]
        mismatches = [(rows[i], got, want) for i, (got, want) in enumerate(zip(online[name], wanted)) if not same_value(got, want)]
        assert not mismatches, f"{view_name}.{name} at {as_of}: (row, online, offline) {mismatches[:5]}"


def read_all(store: FeatureStore, features: Sequence[str], rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    return store.get_online_features(list(features), rows).to_dict()


def same_response(a: dict[str, list[Any]], b: dict[str, list[Any]]) -> bool:
    return a.keys() == b.keys() and all(
        len(a[k]) == len(b[k]) and all(same_value(x, y) if not is_null(y) else is_null(x) for x, y in zip(a[k], b[k])) for k in a
    )
