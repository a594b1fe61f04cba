"""Snapshots switch atomically: killed, hung and overlapping exports, concurrent readers, incremental corrections."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
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
from serving.online.connection import Nodes
from serving.online.export import PAUSE_ENV
from serving.online.keys import KeySpace
from serving.online.versions import LEASE_ENV, Timing, Versions
from serving.store import FeatureStore

BEFORE = dt.datetime(2026, 1, 20, 12)
AFTER = dt.datetime(2026, 2, 25, 6)
READ = ["user_purchase_windows:spend_30d", "user_purchase_windows:purchase_count_30d", "user_features:avg_purchase_amount"]
USERS = [{"user_id": user} for user in range(1, 301, 3)]


def version_keys(raw: redis.Redis, prefix: str) -> set[bytes]:
    """Every key of every version (rows, metadata, index), not the store-wide control keys."""
    control = (b":current", b":counter", b":versions")
    return {key for key in raw.scan_iter(match=f"{prefix}:*", count=5000) if not key.endswith(control)}


def live_keys(raw: redis.Redis, prefix: str) -> set[bytes]:
    """The keys the live versions need: their rows (from their indexes), metadata and index."""
    keys = KeySpace(prefix)
    wanted: set[bytes] = set()
    for view, version in ((name.decode(), int(value)) for name, value in raw.hgetall(keys.current).items()):
        wanted |= {keys.meta(view, version).encode(), keys.index(view, version).encode()}
        versions = Versions(Nodes("", raw), keys, Timing(60, 30))
        wanted |= {keys.row(view, version, key) for _, batch in versions.indexed_keys(view, version) for key in batch}
    return wanted


def exporter_process(project: Path, url: str, prefix: str, as_of: dt.datetime, views: list[str] | None, **env: str) -> subprocess.Popen:
    script = (
        "import sys, json; from serving.store import FeatureStore; "
        "FeatureStore(sys.argv[1], redis_url=sys.argv[2], redis_prefix=sys.argv[3])"
        ".materialize(as_of=sys.argv[4], feature_views=json.loads(sys.argv[5]), progress=False)"
    )
    return subprocess.Popen(
        [sys.executable, "-c", script, str(project), url, prefix, as_of.isoformat(), json.dumps(views)],
        env={**os.environ, **env},
        cwd=Path(__file__).resolve().parents[2],
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_rows(raw: redis.Redis, prefix: str, known: set[bytes], process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while not {key for key in version_keys(raw, prefix) - known if b"}" in key}:
        assert process.poll() is None and time.monotonic() < deadline, "the export never wrote its first batch"
        time.sleep(0.05)


def test_killed_export_leaves_the_previous_snapshot_whole_and_is_collected_when_its_lease_ends(
    store: FeatureStore, built_project: Path, redis_url: str, prefix: str, raw: redis.Redis
) -> None:
    store.materialize(as_of=BEFORE, progress=False)
    before = store.get_online_features(READ, USERS).to_dict()
    live = version_keys(raw, prefix)
    # Test hooks: the export stops after its first batch, and its lease lasts one second.
    exporter = exporter_process(built_project, redis_url, prefix, AFTER, None, **{PAUSE_ENV: "60", LEASE_ENV: "1"})
    try:
        wait_for_rows(raw, prefix, live, exporter)
        os.kill(exporter.pid, signal.SIGKILL)
    finally:
        exporter.communicate()
    leftovers = version_keys(raw, prefix) - live
    assert leftovers, "the killed export should have left half a version behind"
    assert same_response(store.get_online_features(READ, USERS).to_dict(), before)

    time.sleep(1.2)
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
    # Versions never change once switched to: the unchanged rows are copied into a new one by the server.
    assert again.view("user_features").keys_copied == again.view("user_features").entities - 2
    assert again.view("user_features").version != first.view("user_features").version
    got = store.get_online_features(["user_features:total_purchases"], [{"user_id": corrected[0]}, {"user_id": late[0]}])
    assert got.to_dict()["total_purchases"] == [9999, 4242]
    assert got.event_timestamps["total_purchases"] == [dt.datetime(2026, 2, 10), dt.datetime(2026, 2, 10, 6)]
    assert_online_equals_offline(store, "user_features", [{"user_id": u} for u in range(1, 301)], as_of)

    unchanged = store.materialize(as_of=as_of, feature_views=["user_features"], incremental=True, progress=False)
    assert unchanged.keys_written == 0


@pytest.mark.parametrize("view", ["user_features", "user_category_windows"], ids=["fixed-width-keys", "composite-string-keys"])
def test_a_replaced_version_outlives_the_switch_by_the_grace_period_then_leaves_no_key(
    store: FeatureStore, raw: redis.Redis, prefix: str, view: str
) -> None:
    store.materialize(as_of=BEFORE, feature_views=[view], progress=False)
    first = version_keys(raw, prefix)
    summary = store.materialize(as_of=AFTER, feature_views=[view], progress=False)
    assert first <= version_keys(raw, prefix), "a reader that resolved the old version may still read it"
    assert store.collect_garbage(grace_seconds=0) == 1
    second = version_keys(raw, prefix)
    assert not first & second
    # One key per entity, plus the version's metadata and its index of keys.
    assert len(second) == summary.entities + 2
    assert second == live_keys(raw, prefix)


def test_overlapping_exports_some_killed_never_mix_a_read_and_leave_no_orphans(
    store: FeatureStore, built_project: Path, redis_url: str, prefix: str, raw: redis.Redis
) -> None:
    snapshots = {}
    for as_of in (BEFORE, AFTER):
        store.materialize(as_of=as_of, progress=False)
        snapshots[as_of] = {
            view: store.get_online_features([f for f in READ if f.startswith(view)], USERS).to_dict()
            for view in ("user_purchase_windows", "user_features")
        }
    errors: list[Exception] = []
    mixed: list[dict[str, Any]] = []
    reads = 0
    done = threading.Event()

    def read_forever() -> None:
        nonlocal reads
        reader = FeatureStore(store.project_dir, redis_url=store.redis_url, redis_prefix=store.redis_prefix)
        while not done.is_set():
            try:
                for view in ("user_purchase_windows", "user_features"):
                    got = reader.get_online_features([f for f in READ if f.startswith(view)], USERS).to_dict()
                    if not any(same_response(got, snapshot[view]) for snapshot in snapshots.values()):
                        mixed.append(got)
                reads += 1
            except Exception as error:  # noqa: BLE001 - every failure of a read is what this test counts
                errors.append(error)

    readers = [threading.Thread(target=read_forever) for _ in range(2)]
    for thread in readers:
        thread.start()
    hooks = {PAUSE_ENV: "0.05", LEASE_ENV: "1"}
    runs = [
        (AFTER, None),
        (BEFORE, None),
        (AFTER, ["user_features"]),
        (BEFORE, ["user_purchase_windows", "user_features"]),
        (AFTER, ["user_purchase_windows"]),
        (BEFORE, None),
    ]
    rng = random.Random(7)
    try:
        exporters = []
        for as_of, views in runs:
            exporters.append(exporter_process(built_project, redis_url, prefix, as_of, views, **hooks))
            time.sleep(rng.uniform(0.05, 0.3))
        doomed = exporters[1::2]
        for process in doomed:
            time.sleep(rng.uniform(0.1, 0.6))
            os.kill(process.pid, signal.SIGKILL)
        outcomes = [process.communicate(timeout=120) for process in exporters]
        time.sleep(0.3)
    finally:
        done.set()
        for thread in readers:
            thread.join()
    for process, (_, stderr) in zip(exporters, outcomes):
        if process not in doomed:
            assert process.returncode == 0, stderr
    assert not errors, errors[:3]
    assert not mixed, mixed[:1]
    assert reads > 10

    time.sleep(1.2)  # the killed runs' leases run out
    clean = FeatureStore(store.project_dir, redis_url=store.redis_url, redis_prefix=store.redis_prefix)
    clean.materialize(as_of=AFTER, progress=False)
    clean.collect_garbage(grace_seconds=0)
    assert version_keys(raw, prefix) == live_keys(raw, prefix), "orphaned keys"
    assert {state for state in raw.hgetall(KeySpace(prefix).versions).values()} == {b"l"}


def test_an_export_that_hangs_past_its_lease_fails_and_changes_nothing(
    store: FeatureStore, built_project: Path, redis_url: str, prefix: str, raw: redis.Redis
) -> None:
    store.materialize(as_of=BEFORE, progress=False)
    before = store.get_online_features(READ, USERS).to_dict()
    pointers = raw.hgetall(KeySpace(prefix).current)
    exporter = exporter_process(built_project, redis_url, prefix, AFTER, None, **{PAUSE_ENV: "0.5", LEASE_ENV: "1"})
    try:
        wait_for_rows(raw, prefix, version_keys(raw, prefix), exporter)
        os.kill(exporter.pid, signal.SIGSTOP)  # a stalled machine: no heartbeat either
        time.sleep(1.5)
        assert store.collect_garbage() >= 1, "the silent run's version is collected"
        os.kill(exporter.pid, signal.SIGCONT)
        _, stderr = exporter.communicate(timeout=120)
    finally:
        if exporter.poll() is None:
            exporter.kill()
            exporter.wait()
    assert exporter.returncode != 0
    assert "lost version" in stderr or "was collected before this export switched" in stderr, stderr[-2000:]
    assert raw.hgetall(KeySpace(prefix).current) == pointers
    assert same_response(store.get_online_features(READ, USERS).to_dict(), before)
