"""What the serving log costs a read: 100 entities x 10 features over 2 views, with and
without logging every read (rate 1.0), same server, same run.

    .venv/bin/python bench/bench_serving_log.py [--entities 100000] [--rounds 30] [--block 50]

Uses $REDIS_URL, else a private embedded redis-server; the synthetic views of
bench_online.py, exported through the real path. Reads alternate in blocks (plain, then
logged, then the writer drained), so each block pays for its own logging. Two figures:
- latency: p50 of a read with logging / p50 without (floor: 1.10x);
- amortized: the whole logged block including draining the writer (sending what it
  buffered, reading the XADD replies) / the plain block;
- CPU: this process's CPU time per read with and without logging, and the difference as
  a share of the plain p50 (the least load-sensitive of the three on a busy machine).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_online import AS_OF, build_warehouse, drop_keys, percentiles, synthetic_view  # noqa: E402
from bench.common import duckdb_offline_store  # noqa: E402
from serving.embedded_redis import redis_url_or_embedded  # noqa: E402
from serving.monitoring.serving_log import DEFAULT_MAXLEN, ServingLogWriter  # noqa: E402
from serving.online.connection import Nodes, connect  # noqa: E402
from serving.online.export import Exporter  # noqa: E402
from serving.online.keys import KeySpace  # noqa: E402
from serving.online.read import OnlineClient  # noqa: E402
from serving.online.versions import Timing  # noqa: E402
from serving.registry import Registry  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--block", type=int, default=50, help="Reads per block.")
    args = parser.parse_args()

    view_a = synthetic_view("bench_view_a", ints=5, floats=5)
    view_b = synthetic_view("bench_view_b", ints=2, floats=3)
    timing = Timing.from_env()
    with tempfile.TemporaryDirectory() as tmp, redis_url_or_embedded() as url:
        warehouse = Path(tmp) / "bench.duckdb"
        build_warehouse(warehouse, view_a, args.entities)
        build_warehouse(warehouse, view_b, args.entities)
        client = connect(url)
        prefix = f"fsbench-{uuid.uuid4().hex[:8]}"
        keys = KeySpace(prefix)
        nodes = Nodes(url, client)
        try:
            Exporter(nodes, keys, duckdb_offline_store(warehouse), timing, progress=False).materialize([view_a, view_b], AS_OF, incremental=False)
            registry = Registry({view_a.name: view_a, view_b.name: view_b})
            reader = OnlineClient(nodes, keys, registry, timing)
            writer = ServingLogWriter(nodes, keys, registry, 1.0, DEFAULT_MAXLEN, "bench")
            features = [f"{view_a.name}:{f.name}" for f in view_a.features[:5]] + [f"{view_b.name}:{f.name}" for f in view_b.features]
            rng = random.Random(1)
            batches = [[{"user_id": rng.randrange(args.entities)} for _ in range(100)] for _ in range(args.block)]

            def plain(rows: list[dict[str, int]]) -> None:
                reader.get_online_features(features, rows, full_feature_names=True)

            def logged(rows: list[dict[str, int]]) -> None:
                writer.record(features, True, reader.get_online_features(features, rows, full_feature_names=True))

            for rows in batches:  # warm up: scripts loaded, decoders cached, the thread started
                plain(rows)
                logged(rows)
            writer.drain()
            samples: dict[str, list[float]] = {"plain": [], "logged": []}
            blocks: dict[str, list[float]] = {"plain": [], "logged": []}
            cpu: dict[str, list[float]] = {"plain": [], "logged": []}
            for _ in range(args.rounds):
                for name, action in (("plain", plain), ("logged", logged)):
                    block_start, cpu_start = time.perf_counter(), time.process_time()
                    for rows in batches:
                        start = time.perf_counter()
                        action(rows)
                        samples[name].append(time.perf_counter() - start)
                    writer.drain(60.0)
                    blocks[name].append(time.perf_counter() - block_start)
                    cpu[name].append(time.process_time() - cpu_start)
            entries = client.xlen(keys.serving_log)
        finally:
            drop_keys(client, prefix)
            client.close()

    (p50, p99), (l50, l99) = percentiles(samples["plain"]), percentiles(samples["logged"])
    block_plain, block_logged = statistics.median(blocks["plain"]), statistics.median(blocks["logged"])
    print(f"redis: {url.split('@')[-1]}; {args.rounds} rounds of {args.block} reads each way; {entries:,} entries logged (writer dropped {writer.dropped})")
    print(f"{'measure':60} {'p50':>9} {'p99':>9}  ratio p50")
    print(f"{'get_online_features: 100 entities x 10 features, 2 views':60} {p50 * 1e6:7.0f}µs {p99 * 1e6:7.0f}µs")
    print(f"{'  the same, every read logged':60} {l50 * 1e6:7.0f}µs {l99 * 1e6:7.0f}µs  {l50 / p50:5.2f}x  (floor 1.10x)")
    print(f"{'amortized per read, logger drained (median block / reads)':60} {block_plain / args.block * 1e6:7.0f}µs "
          f"{block_logged / args.block * 1e6:7.0f}µs  {block_logged / block_plain:5.2f}x  (logged / plain)")
    cpu_plain, cpu_logged = statistics.median(cpu["plain"]) / args.block, statistics.median(cpu["logged"]) / args.block
    print(f"{'this process CPU per read (median block / reads)':60} {cpu_plain * 1e6:7.0f}µs {cpu_logged * 1e6:7.0f}µs  "
          f"+{(cpu_logged - cpu_plain) * 1e6:.0f}µs = {(cpu_logged - cpu_plain) / p50:.1%} of the plain p50")


if __name__ == "__main__":
    main()
