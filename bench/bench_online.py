"""Online store speed, each number beside a plain redis-py baseline on the same server, same run.

    .venv/bin/python bench/bench_online.py [--entities 1000000] [--reads 3000]

Uses $REDIS_URL, else a private embedded redis-server. The synthetic feature tables go
into a temp DuckDB file and are exported through the real path (OfflineStore.snapshot,
the project's point-in-time macro, the Exporter); only dbt itself is skipped.

Floors: 1 entity x 10 features p50 within 1.5x a bare HMGET round trip; 100 entities x
10 features over 2 views p50 <= 1 ms; export >= 200k entities/s; materialize end to end
(snapshot query, encoding, writes) >= 500k entities/s for 200k entities x 3 features. On
a local cluster of 3 masters: 100 entities p50 <= 1.5x the single node's, and the export
rate per node.
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
from serving.embedded_redis import EmbeddedCluster, redis_url_or_embedded  # noqa: E402
from serving.encoding import pack_value  # noqa: E402
from serving.offline import OfflineStore  # noqa: E402
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


def drop_keys(client: Any, prefix: str) -> None:
    for key in client.scan_iter(match=f"{prefix}:*", count=10_000):
        client.unlink(key)


def median_export(exporter: Exporter, view: FeatureView, runs: int) -> tuple[float, Any]:
    seconds = []
    for _ in range(runs):
        summary = exporter.materialize([view], AS_OF, incremental=False)
        seconds.append(summary.seconds)
        exporter.versions.collect(grace_seconds=0)  # untimed: nothing reads the replaced version here
    return statistics.median(seconds), summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=1_000_000)
    parser.add_argument("--reads", type=int, default=3000)
    parser.add_argument("--exports", type=int, default=3)
    parser.add_argument("--no-cluster", action="store_true", help="Skip the Redis Cluster part.")
    args = parser.parse_args()

    view_a = synthetic_view("bench_view_a", ints=5, floats=5)
    view_b = synthetic_view("bench_view_b", ints=2, floats=3)
    view_small = synthetic_view("bench_view_small", ints=1, floats=2)
    small = 200_000
    timing = Timing.from_env()
    with tempfile.TemporaryDirectory() as tmp, redis_url_or_embedded() as url:
        warehouse = Path(tmp) / "bench.duckdb"
        started = time.perf_counter()
        build_warehouse(warehouse, view_a, args.entities)
        build_warehouse(warehouse, view_b, min(args.entities, 100_000))
        build_warehouse(warehouse, view_small, small)
        print(f"redis: {url.split('@')[-1]}; synthetic warehouse with {args.entities:,} entities built in {time.perf_counter() - started:.1f} s")

        client = connect(url)
        prefix = f"fsbench-{uuid.uuid4().hex[:8]}"
        keys = KeySpace(prefix)
        offline = duckdb_offline_store(warehouse)
        nodes = Nodes(url, client)
        exporter = Exporter(nodes, keys, offline, timing, progress=False)
        try:
            # ---- export
            snapshot_seconds = []
            for _ in range(args.exports):
                start = time.perf_counter()
                snapshot = offline.snapshot(view_a, AS_OF)
                snapshot_seconds.append(time.perf_counter() - start)
            export, summary = median_export(exporter, view_a, args.exports)
            print(f"  last export: {summary.__str__().splitlines()[0]}")
            small_export, _ = median_export(exporter, view_small, args.exports)
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
            batch_rows = [[{"user_id": rng.randrange(users_b)} for _ in range(100)] for _ in range(args.reads // 3)]
            batches = itertools.cycle(batch_rows)
            hmget, one = timed([lambda: client.hmget(plain_key, fields), lambda: reader.get_online_features(features_a, next(singles))], args.reads)
            plain_keys = [f"{prefix}:plain:{i}" for i in range(200)]
            mget, hundred = timed(
                [lambda: client.mget(plain_keys), lambda: reader.get_online_features(features_ab, next(batches), full_feature_names=True)],
                args.reads // 3,
            )
            check = reader.get_online_features(features_ab, [{"user_id": 3}], full_feature_names=True).statuses
            assert all(status == ["present"] for status in check.values()), check
            cluster = None if args.no_cluster else bench_cluster(offline, registry, view_a, view_b, features_ab, batch_rows, reader, args)
        finally:
            drop_keys(client, prefix)
            client.close()

    plain = statistics.median(baseline_seconds)
    snap = statistics.median(snapshot_seconds)
    rate = args.entities / export
    small_rate = small / small_export
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
    print(f"materialize end to end, {small:,} entities x 3 features (median of {args.exports}): {small_export:.3f} s = {small_rate:,.0f} entities/s (floor 500,000)")
    verdicts = {"1-entity": o50 <= 1.5 * h50, "100-entity": c50 <= 1e-3, "export": rate >= 200_000, "export 200k x 3": small_rate >= 500_000}
    if cluster is not None:
        (k50, k99), cluster_export = cluster
        print()
        print(f"{'cluster (3 masters): 100 entities x 10 f, 2 views':52} {k50 * 1e6:8.0f}µs {k99 * 1e6:8.0f}µs  {k50 / c50:5.2f}x one node  (floor 1.5x)")
        cluster_rate = args.entities / cluster_export
        print(f"cluster export of {args.entities:,} entities x 10 features: {cluster_export:.2f} s = {cluster_rate:,.0f} entities/s, {cluster_rate / 3:,.0f} per node")
        verdicts["cluster 100-entity"] = k50 <= 1.5 * c50
    print("floors:", ", ".join(f"{name} {'ok' if ok else 'MISSED'}" for name, ok in verdicts.items()))


def bench_cluster(
    offline: OfflineStore,
    registry: Registry,
    view_a: FeatureView,
    view_b: FeatureView,
    features: list[str],
    batch_rows: list[list[dict[str, int]]],
    single_reader: OnlineClient,
    args: argparse.Namespace,
) -> tuple[tuple[float, float], float]:
    """The same export and 100-entity reads on a local cluster of 3 masters (no replicas),
    each read interleaved with the same read on the single node."""
    with EmbeddedCluster(masters=3, replicas_per_master=0) as cluster:
        client = connect(cluster.url)
        nodes = Nodes(cluster.url, client)
        keys = KeySpace("fsbench")
        timing = Timing.from_env()
        exporter = Exporter(nodes, keys, offline, timing, progress=False)
        export, _ = median_export(exporter, view_a, args.exports)
        exporter.materialize([view_b], AS_OF, incremental=False)
        reader = OnlineClient(nodes, keys, registry, timing)
        batches = itertools.cycle(batch_rows)
        _, on_cluster = timed(
            [lambda: single_reader.get_online_features(features, batch_rows[0], full_feature_names=True),
             lambda: reader.get_online_features(features, next(batches), full_feature_names=True)],
            args.reads // 3,
        )
        client.close()
    return percentiles(on_cluster), export


if __name__ == "__main__":
    main()
