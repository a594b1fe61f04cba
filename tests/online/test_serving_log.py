"""The serving log's Redis side: what a logged read appends, sampling, the bound. On one
node and on a cluster (the stream has a hash tag of its own)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import redis

from serving.monitoring.serving_log import MAXLEN_ENV, decode
from serving.store import FeatureStore

AS_OF = dt.datetime(2026, 2, 10, 12)
FEATURES = ["user_features:total_purchases", "user_purchase_windows:stddev_amount_30d", "user_features:avg_purchase_amount"]


def logged_store(built_project: Path, redis_url: str, prefix: str, rate: float = 1.0) -> FeatureStore:
    return FeatureStore(built_project, redis_url=redis_url, redis_prefix=prefix, serving_log_rate=rate)


def test_reads_are_not_logged_by_default(store: FeatureStore, raw: redis.Redis) -> None:
    store.materialize(as_of=AS_OF, feature_views=["user_features"], progress=False)
    store.get_online_features(FEATURES[:1], [{"user_id": 1}])
    assert raw.exists(store._keys.serving_log) == 0


def test_one_entry_per_read_holds_what_was_served(built_project: Path, redis_url: str, prefix: str, raw: redis.Redis) -> None:
    store = logged_store(built_project, redis_url, prefix)
    summary = store.materialize(as_of=AS_OF, feature_views=["user_features", "user_purchase_windows"], progress=False)
    versions = {view.view: view.version for view in summary.views}
    users = [*range(1, 40), 10**9]
    response = store.get_online_features(FEATURES, [{"user_id": user} for user in users])
    store._serving_log.drain()
    entries = raw.xrange(store._keys.serving_log, "-", "+")
    assert len(entries) == 1
    rows = decode(entries, lambda view: store.get_feature_view(view).entity, dt.datetime(2026, 3, 1)).to_pylist()
    assert len(rows) == len(users) * len(FEATURES)
    for row in rows:
        position = row["row_index"]
        assert json.loads(row["entity_key"]) == {"user_id": users[position]}
        assert row["feature_ref"] == f"{row['feature_view']}:{row['feature']}"
        assert row["status"] == response.statuses[row["feature"]][position]
        assert row["value_number"] == response.columns[row["feature"]][position]
        assert row["event_at"] == response.event_timestamps[row["feature"]][position]
        assert (row["snapshot_version"], row["snapshot_as_of"], row["source"]) == (versions[row["feature_view"]], AS_OF, "python")
    assert {row["status"] for row in rows} >= {"present", "missing"}


def test_the_log_is_bounded(built_project: Path, redis_url: str, prefix: str, raw: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MAXLEN_ENV, "10")
    store = logged_store(built_project, redis_url, prefix)
    store.materialize(as_of=AS_OF, feature_views=["user_features"], progress=False)
    for _ in range(400):
        store.get_online_features(FEATURES[:1], [{"user_id": 1}])
    store._serving_log.drain()
    # MAXLEN ~ trims whole stream nodes (100 entries by default), never below 10.
    assert 10 <= raw.xlen(store._keys.serving_log) <= 110


def test_a_sample_rate_logs_about_that_share(built_project: Path, redis_url: str, prefix: str, raw: redis.Redis) -> None:
    store = logged_store(built_project, redis_url, prefix, rate=0.5)
    store.materialize(as_of=AS_OF, feature_views=["user_features"], progress=False)
    for _ in range(400):
        store.get_online_features(FEATURES[:1], [{"user_id": 1}])
    store._serving_log.drain()
    # Binomial(400, 0.5): outside 140..260 with probability about 1e-9.
    assert 140 <= raw.xlen(store._keys.serving_log) <= 260


def test_a_read_naming_an_on_demand_view_logs_the_feature_values_it_read(
    built_project: Path, redis_url: str, prefix: str, raw: redis.Redis
) -> None:
    """The snapshot part of the read is logged: the plain feature asked for and the on-demand
    view's sources (computed values follow from those and the request's own fields)."""
    store = logged_store(built_project, redis_url, prefix)
    store.materialize(as_of=AS_OF, feature_views=["user_features", "user_purchase_windows"], progress=False)
    users = [*range(1, 25), 10**9]
    features = ["user_features:total_purchases", "purchase_request_features:amount_vs_avg_30d"]
    response = store.get_online_features(features, [{"user_id": user, "amount": 12.5} for user in users])
    plain = store.get_online_features(
        ["user_features:total_purchases", "user_purchase_windows:avg_amount_30d", "user_purchase_windows:max_amount_30d"],
        [{"user_id": user} for user in users],
    )
    store._serving_log.drain()
    entries = raw.xrange(store._keys.serving_log, "-", "+")
    assert len(entries) == 2  # the on-demand read, then the plain one
    rows = decode(entries[:1], lambda view: store.get_feature_view(view).entity, dt.datetime(2026, 3, 1)).to_pylist()
    assert sorted({row["feature_ref"] for row in rows}) == [
        "user_features:total_purchases",
        "user_purchase_windows:avg_amount_30d",
        "user_purchase_windows:max_amount_30d",
    ]
    assert len(rows) == 3 * len(users)
    for row in rows:
        assert row["value_number"] == plain.columns[row["feature"]][row["row_index"]]
        assert row["status"] == plain.statuses[row["feature"]][row["row_index"]]
    assert response.columns["total_purchases"] == plain.columns["total_purchases"]
    assert {row["status"] for row in rows} >= {"present", "missing"}


def test_both_entry_formats_decode_to_the_same_rows() -> None:
    """Entries hold row blobs as read (field m), decoded at flush by the readers' own
    decode_rows; a stream may still hold the JSON of decoded values earlier versions
    wrote (field r). Both give the same rows, dates, decimals and text included."""
    import decimal

    import msgpack
    import orjson
    import pyarrow as pa

    from serving.encoding import RowLayout, encode_rows

    features = ["amount", "label", "seen_at", "price", "flag"]
    table = pa.table({
        "event_timestamp": pa.array([dt.datetime(2026, 1, 1, 8), None, dt.datetime(2026, 1, 2, 9, 30, 0, 5)], pa.timestamp("us")),
        "amount": pa.array([2.5, 1.0, None], pa.float64()),
        "label": pa.array(["a'b", "x", None], pa.string()),
        "seen_at": pa.array([dt.datetime(2025, 12, 31, 23, 59, 59, 250000), None, dt.datetime(2026, 1, 2)], pa.timestamp("us")),
        "price": pa.array([decimal.Decimal("1.50"), None, decimal.Decimal("-3.25")], pa.decimal128(9, 2)),
        "flag": pa.array([True, None, False], pa.bool_()),
    })
    layout = RowLayout.for_schema(table.schema, features)
    blobs = [*encode_rows(table, layout), None]  # a fourth entity with no row
    requested = ["label", "seen_at", "price", "flag", "amount"]
    keys = {"user_id": [1, 2, 3, 4]}
    new = {"t": 1_767_225_600_000_000, "s": "python", "k": keys,
           "v": [["v", 7, "2026-01-03T00:00:00", msgpack.packb(layout.to_dict()), requested, blobs]]}
    old = {"t": 1_767_225_600_000_000, "s": "python", "k": keys,
           "v": [["v", 7, "2026-01-03T00:00:00", ["2026-01-01T08:00:00", None, "2026-01-02T09:30:00.000005", None],
                  [["label", ["a'b", None, None, None]],
                   ["seen_at", ["2025-12-31T23:59:59.250000", None, "2026-01-02T00:00:00", None]],
                   ["price", ["1.50", None, "-3.25", None]],
                   ["flag", [True, None, False, None]],
                   ["amount", [2.5, None, None, None]]],
                  # Per row: present, outside_ttl (no event time), present (its NULLs are status null), missing.
                  "popm"]]}

    def rows(entry: dict[bytes, bytes]) -> list[dict]:
        decoded = decode([(b"1-0", entry)], lambda view: ["user_id"], dt.datetime(2026, 3, 1)).to_pylist()
        return [{k: v for k, v in row.items() if k != "flushed_at"} for row in decoded]

    from_blobs, from_json = rows({b"m": msgpack.packb(new)}), rows({b"r": orjson.dumps(old)})
    assert from_blobs == from_json
    by = {(row["feature"], row["row_index"]): row for row in from_blobs}
    assert [by[("label", i)]["status"] for i in range(4)] == ["present", "outside_ttl", "null", "missing"]
    assert (by[("label", 0)]["value_text"], by[("price", 2)]["value_text"], by[("seen_at", 0)]["value_text"]) == (
        "a'b", "-3.25", "2025-12-31T23:59:59.250000")
    assert (by[("flag", 2)]["value_number"], by[("amount", 0)]["value_number"]) == (0.0, 2.5)
    assert by[("amount", 2)]["event_at"] == dt.datetime(2026, 1, 2, 9, 30, 0, 5)
