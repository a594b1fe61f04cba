"""Online store speed, each number beside a plain redis-py baseline on the same server, same run.

    .venv/bin/python bench/bench_online.py [--entities 1000000] [--reads 3000]

Uses $REDIS_URL, else a private embedded redis-server. The synthetic feature tables go
into a temp DuckDB file and are exported through the real path (OfflineStore.snapshot,
the project's point-in-time macro, the Exporter); only dbt itself is skipped.

Floors: 1 entity x 10 features p50 within 1.5x a bare HMGET round trip; 100 entities x
10 features over 2 views p50 <= 1 ms; export >= 200k entities/s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import duckdb


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import duckdb_offline_store  # noqa: E402
from serving.embedded_redis import redis_url_or_embedded  # noqa: E402
from serving.encoding import pack_value  # noqa: E402
from serving.online.connection import Nodes, connect  # noqa: E402
from serving.online.export import Exporter  # noqa: E402
from serving.online.keys import KeySpace  # noqa: E402
from serving.online.read import OnlineClient  # noqa: E402
from serving.online.versions import Timing  # noqa: E402
from serving.registry import Feature, FeatureView, Registry  # noqa: E402

AS_OF = dt.datetime(2026, 3, 1)


def synthetic_view(name: str, ints: int, floats: int) -> FeatureView:
    features = [Feature(f"i{k}", "bigint", "") for k in range(ints)] + [Feature(f"f{k}", "double", "") for k in range(floats)]
    spec = {
        "name": name,
        "relation": name,
        "entity": ["user_id"],
        "timestamp_column": "event_timestamp",
        "created_timestamp_column": None,
        "ttl": None,
        "features": [{"name": f.name, "data_type": f.data_type} for f in features],
        "online": True,
    }
    return FeatureView(name, name, ("user_id",), "event_timestamp", None, None, None, True, None, (), "", tuple(features), {"user_id": "bigint"}, spec)


def build_warehouse(path: Path, view: FeatureView, entities: int) -> None:
    """One row per entity plus a second, later row for every third one; a few NULLs."""
    columns = ", ".join(
        f"case when (n + {k}) % 97 = 0 then null else (n * {k + 3}) % 1000 end as {f.name}" if f.data_type == "bigint"
        else f"case when (n + {k}) % 89 = 0 then null else ((n * {k + 7}) % 10007) / 13.0 end as {f.name}"
        for k, f in enumerate(view.features)
    )
    with duckdb.connect(str(path)) as connection:
        connection.execute(
            f"create or replace table {view.name} as "
            f"with rows as (select e as user_id, e as n, timestamp '2026-01-01' + to_seconds(e % 3000000) as event_timestamp from range({entities}) t(e) "
            f"union all select e, e + 1, timestamp '2026-02-01' + to_seconds(e % 3000000) from range(0, {entities}, 3) t(e)) "
            f"select user_id, event_timestamp, {columns} from rows"
        )


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def timed(actions: list[Callable[[], Any]], repeat: int) -> list[list[float]]:
    """Samples of each action, taken in turn, so a baseline and its measure share the machine's load."""
    for _ in range(min(200, repeat // 10)):
        for action in actions:
            action()
    samples: list[list[float]] = [[] for _ in actions]
    for _ in range(repeat):
        for action, taken in zip(actions, samples):
            start = time.perf_counter()
            action()
            taken.append(time.perf_counter() - start)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=1_000_000)
    parser.add_argument("--reads", type=int, default=3000)
    parser.add_argument("--exports", type=int, default=3)
    args = parser.parse_args()

    view_a = synthetic_view("bench_view_a", ints=5, floats=5)
    view_b = synthetic_view("bench_view_b", ints=2, floats=3)
    with tempfile.TemporaryDirectory() as tmp, redis_url_or_embedded() as url:
        warehouse = Path(tmp) / "bench.duckdb"
        started = time.perf_counter()
        build_warehouse(warehouse, view_a, args.entities)
        build_warehouse(warehouse, view_b, min(args.entities, 100_000))
        print(f"redis: {url.split('@')[-1]}; synthetic warehouse with {args.entities:,} entities built in {time.perf_counter() - started:.1f} s")

        client = connect(url)
        prefix = f"fsbench-{uuid.uuid4().hex[:8]}"
        keys = KeySpace(prefix)
        offline = duckdb_offline_store(warehouse)
        nodes = Nodes(url, client)
        timing = Timing.from_env()
        exporter = Exporter(nodes, keys, offline, timing, progress=False)
        try:
            # ---- export
            snapshot_seconds = []
            for _ in range(args.exports):
                start = time.perf_counter()
                snapshot = offline.snapshot(view_a, AS_OF)
                snapshot_seconds.append(time.perf_counter() - start)
            export_seconds = []
            for _ in range(args.exports):
                summary = exporter.materialize([view_a], AS_OF, incremental=False)
                export_seconds.append(summary.seconds)
            print(f"  last export: {summary}")
            rows = snapshot.drop_columns(["user_id"]).to_pylist()
            ids = snapshot.column("user_id").to_pylist()
            baseline_seconds = []
            for _ in range(args.exports):
                start = time.perf_counter()
                pipe = client.pipeline(transaction=False)
                for begin in range(0, len(rows), 50_000):
                    pipe.mset({f"{prefix}:plain:{ids[i]}": pack_value(list(rows[i].values())) for i in range(begin, min(begin + 50_000, len(rows)))})
                    pipe.execute()
                baseline_seconds.append(time.perf_counter() - start)
            exporter.materialize([view_b], AS_OF, incremental=False)

            # ---- reads
            registry = Registry({view_a.name: view_a, view_b.name: view_b})
            reader = OnlineClient(nodes, keys, registry, timing)
            features_a = [f"{view_a.name}:{f.name}" for f in view_a.features]
            features_ab = [f"{view_a.name}:{f.name}" for f in view_a.features[:5]] + [f"{view_b.name}:{f.name}" for f in view_b.features]
            plain_key = f"{prefix}:plain_hash"
            client.hset(plain_key, mapping={f.name: 1.5 for f in view_a.features})
            fields = [f.name for f in view_a.features]
            rng = random.Random(1)
            users_b = min(args.entities, 100_000)

            # Entity rows are drawn before the clock starts: the random draws are not the reader's work.
            singles = itertools.cycle([[{"user_id": rng.randrange(args.entities)}] for _ in range(args.reads)])
            batches = itertools.cycle([[{"user_id": rng.randrange(users_b)} for _ in range(100)] for _ in range(args.reads // 3)])
            hmget, one = timed([lambda: client.hmget(plain_key, fields), lambda: reader.get_online_features(features_a, next(singles))], args.reads)
            plain_keys = [f"{prefix}:plain:{i}" for i in range(200)]
            mget, hundred = timed(
                [lambda: client.mget(plain_keys), lambda: reader.get_online_features(features_ab, next(batches), full_feature_names=True)],
                args.reads // 3,
            )
            check = reader.get_online_features(features_ab, [{"user_id": 3}], full_feature_names=True).statuses
            assert all(status == ["present"] for status in check.values()), check
        finally:
            for key in client.scan_iter(match=f"{prefix}:*", count=10_000):
                client.unlink(key)
            client.close()

    export = statistics.median(export_seconds)
    plain = statistics.median(baseline_seconds)
    snap = statistics.median(snapshot_seconds)
    rate = args.entities / export
    (h50, h99), (o50, o99), (m50, m99), (c50, c99) = map(percentiles, (hmget, one, mget, hundred))
    print()
    print(f"{'measure':52} {'p50':>10} {'p99':>10}  ratio p50")
    print(f"{'baseline: bare HMGET of 10 fields':52} {h50 * 1e6:8.0f}µs {h99 * 1e6:8.0f}µs")
    print(f"{'get_online_features: 1 entity x 10 features':52} {o50 * 1e6:8.0f}µs {o99 * 1e6:8.0f}µs  {o50 / h50:5.2f}x  (floor 1.5x)")
    print(f"{'baseline: bare MGET of 200 keys':52} {m50 * 1e6:8.0f}µs {m99 * 1e6:8.0f}µs")
    print(f"{'get_online_features: 100 entities x 10 f, 2 views':52} {c50 * 1e6:8.0f}µs {c99 * 1e6:8.0f}µs  {c50 / m50:5.2f}x  (floor p50 <= 1000µs)")
    print()
    print(f"export of {args.entities:,} entities x 10 features (median of {args.exports}): {export:.2f} s = {rate:,.0f} entities/s (floor 200,000)")
    print(f"  of which the offline snapshot (DuckDB point-in-time join): {snap:.2f} s")
    print(f"  baseline: plain redis-py MSET of msgpack rows (no snapshot, no versions): {plain:.2f} s = {args.entities / plain:,.0f} entities/s; ratio {export / plain:.2f}x")
    verdicts = [o50 <= 1.5 * h50, c50 <= 1e-3, rate >= 200_000]
    print("floors:", ", ".join(f"{name} {'ok' if ok else 'MISSED'}" for name, ok in zip(["1-entity", "100-entity", "export"], verdicts)))


if __name__ == "__main__":
    main()
