"""Snapshots switch atomically: killed exports, concurrent readers, incremental corrections."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest
import redis

from online_checks import assert_online_equals_offline, same_response
from serving.exporter import PAUSE_ENV
from serving.store import FeatureStore

BEFORE = dt.datetime(2026, 1, 20, 12)
AFTER = dt.datetime(2026, 2, 25, 6)
READ = ["user_purchase_windows:spend_30d", "user_purchase_windows:purchase_count_30d", "user_features:avg_purchase_amount"]
USERS = [{"user_id": user} for user in range(1, 301, 3)]


def version_keys(raw: redis.Redis, prefix: str) -> set[bytes]:
    return {key for key in raw.scan_iter(match=f"{prefix}:*", count=5000) if not key.endswith((b":current", b":version_counter", b":versions"))}


def test_killed_export_leaves_the_previous_snapshot_whole_and_is_cleaned_next_time(
    store: FeatureStore, built_project: Path, redis_url: str, prefix: str, raw: redis.Redis
) -> None:
    store.materialize(as_of=BEFORE, progress=False)
    before = store.get_online_features(READ, USERS).to_dict()
    live_keys = version_keys(raw, prefix)
    script = (
        "import sys; from serving.store import FeatureStore; "
        "FeatureStore(sys.argv[1], redis_url=sys.argv[2], redis_prefix=sys.argv[3]).materialize(as_of=sys.argv[4], progress=False)"
    )
    exporter = subprocess.Popen(
        [sys.executable, "-c", script, str(built_project), redis_url, prefix, AFTER.isoformat()],
        env={**os.environ, PAUSE_ENV: "60"},  # test hook: the export stops after its first batch
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        deadline = time.monotonic() + 60
        while not version_keys(raw, prefix) - live_keys - {k for k in version_keys(raw, prefix) if k.endswith(b":meta")}:
            assert exporter.poll() is None and time.monotonic() < deadline, "the export never wrote its first batch"
            time.sleep(0.05)
        os.kill(exporter.pid, signal.SIGKILL)
    finally:
        exporter.wait()
    leftovers = version_keys(raw, prefix) - live_keys
    assert leftovers, "the killed export should have left half a version behind"
    assert same_response(store.get_online_features(READ, USERS).to_dict(), before)

    store.materialize(as_of=BEFORE, feature_views=["user_features"], progress=False)
    assert not (version_keys(raw, prefix) & leftovers), "the next materialize drops what the killed one wrote"
    assert same_response(store.get_online_features(READ, USERS).to_dict(), before)


def test_readers_during_an_export_see_one_whole_snapshot_or_the_other(store: FeatureStore, monkeypatch: pytest.MonkeyPatch) -> None:
    store.materialize(as_of=AFTER, progress=False)
    after = store.get_online_features(READ, USERS).to_dict()
    store.materialize(as_of=BEFORE, progress=False)
    before = store.get_online_features(READ, USERS).to_dict()
    differing = sum(a != b for a, b in zip(after["spend_30d"], before["spend_30d"]))
    assert differing > len(USERS) // 2, "the two snapshots must differ for many entities to catch a mix"

    seen = {"before": 0, "after": 0}
    mixed: list[dict[str, Any]] = []
    done = threading.Event()

    def read_forever() -> None:
        reader = FeatureStore(store.project_dir, redis_url=store.redis_url, redis_prefix=store.redis_prefix)
        while not done.is_set():
            got = reader.get_online_features(READ, USERS).to_dict()
            if same_response(got, before):
                seen["before"] += 1
            elif same_response(got, after):
                seen["after"] += 1
            else:
                mixed.append(got)

    monkeypatch.setenv(PAUSE_ENV, "0.2")  # test hook: slow the export so readers overlap it
    thread = threading.Thread(target=read_forever)
    thread.start()
    try:
        store.materialize(as_of=AFTER, progress=False)
        time.sleep(0.2)
    finally:
        done.set()
        thread.join()
    assert not mixed
    assert seen["before"] > 0 and seen["after"] > 0


def test_incremental_writes_only_corrected_and_late_entities(
    built_project: Path, redis_url: str, prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(built_project / "target" / "warehouse.duckdb", warehouse)
    monkeypatch.setenv("FEATURE_STORE_DUCKDB", str(warehouse))
    as_of = dt.datetime(2026, 2, 10, 12)
    store = FeatureStore(built_project, redis_url=redis_url, redis_prefix=prefix)
    first = store.materialize(as_of=as_of, feature_views=["user_features", "user_purchase_windows"], progress=False)
    assert first.keys_written == first.entities

    with duckdb.connect(str(warehouse)) as connection:
        corrected, late = connection.sql(
            "select user_id from user_features where event_timestamp = timestamptz '2026-02-10 00:00:00+00' order by user_id limit 2"
        ).fetchall()
        # A correction: the same event time, written later, with new values.
        connection.execute(
            "insert into user_features select user_id, event_timestamp, created_timestamp + interval 1 hour, 9999, 1.25, 0.5 "
            "from user_features where user_id = ? and event_timestamp = timestamptz '2026-02-10 00:00:00+00' "
            "order by created_timestamp desc limit 1",
            [corrected[0]],
        )
        # A late arrival: a newer snapshot, before as_of, only written now.
        connection.execute(
            "insert into user_features values (?, timestamptz '2026-02-10 06:00:00+00', now(), 4242, 2.5, 0.25)", [late[0]]
        )

    again = store.materialize(as_of=as_of, feature_views=["user_features", "user_purchase_windows"], incremental=True, progress=False)
    assert again.view("user_features").keys_written == 2
    assert again.view("user_purchase_windows").keys_written == 0
    assert again.view("user_features").version == first.view("user_features").version
    got = store.get_online_features(["user_features:total_purchases"], [{"user_id": corrected[0]}, {"user_id": late[0]}])
    assert got.to_dict()["total_purchases"] == [9999, 4242]
    assert got.event_timestamps["total_purchases"] == [dt.datetime(2026, 2, 10), dt.datetime(2026, 2, 10, 6)]
    assert_online_equals_offline(store, "user_features", [{"user_id": u} for u in range(1, 301)], as_of)

    unchanged = store.materialize(as_of=as_of, feature_views=["user_features"], incremental=True, progress=False)
    assert unchanged.keys_written == 0


@pytest.mark.parametrize("view", ["user_features", "user_category_windows"], ids=["fixed-width-keys", "composite-string-keys"])
def test_a_replaced_version_leaves_no_key_behind(store: FeatureStore, raw: redis.Redis, prefix: str, view: str) -> None:
    store.materialize(as_of=BEFORE, feature_views=[view], progress=False)
    first = version_keys(raw, prefix)
    summary = store.materialize(as_of=AFTER, feature_views=[view], progress=False)
    second = version_keys(raw, prefix)
    assert not first & second
    # One key per entity, plus the version's metadata and its index of keys.
    assert len(second) == summary.entities + 2
