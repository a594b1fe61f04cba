"""Export from Spark in bounded memory: the Python process's peak RSS while materializing
N entities from Spark local[2] into Redis, beside collecting the whole snapshot into it.

    .venv/bin/python bench/bench_spark_export.py [--entities 5000000] [--methods export toArrow toPandas]

Uses $REDIS_URL, else a private embedded redis-server. Each method runs in a child
process of its own (one JVM each), so each peak (VmHWM, reset once Spark is up and the
inputs are declared) belongs to that method alone. The synthetic view (one row per entity
plus a later one for every third, 5 bigint and 5 double features with a few NULLs) is a
Spark temporary view over `range`, so every method computes the same snapshot query,
rendered by dbt for the project's `spark` target.

- export: the real path, Exporter.materialize -> OfflineStore.snapshot_batches ->
  the Spark engine's stream (Arrow batches, one partition at a time), encoded and written
  50k entities at a time. Checked: the entity count, and a sample of entities read back
  with get_online_features equals the same entities queried from Spark.
- toArrow / toPandas: the baseline, the whole snapshot collected into the driver
  (DataFrame.toArrow(); toPandas() with Arrow enabled).

Floor: the export's peak RSS under 2 GiB at 5M entities. The JVM (a separate process)
is reported too: its peak RSS, and the driver heap it was given.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_online import synthetic_view  # noqa: E402
from bench.common import mib, peak_rss_bytes, reset_peak_rss, rss_bytes  # noqa: E402

AS_OF = dt.datetime(2026, 3, 1)
VIEW = synthetic_view("bench_spark_view", ints=5, floats=5)
FLOOR_BYTES = 2 * 2**30
DRIVER_MEMORY = "4g"
PROJECT_ITEMS = ("dbt_project.yml", "profiles.yml", "models", "macros")


def spark_project(destination: Path) -> Path:
    """The project copied aside, so parsing it for the spark target leaves the checkout's
    target/ (parsed for DuckDB) alone."""
    destination.mkdir(parents=True)
    for item in PROJECT_ITEMS:
        source = ROOT / item
        if source.is_dir():
            shutil.copytree(source, destination / item)
        else:
            shutil.copy2(source, destination / item)
    return destination


def view_sql(entities: int) -> str:
    columns = ", ".join(
        f"case when (n + {k}) % 97 = 0 then null else (n * {k + 3}) % 1000 end as {f.name}" if f.data_type == "bigint"
        else f"case when (n + {k}) % 89 = 0 then null else cast((n * {k + 7}) % 10007 as double) / 13 end as {f.name}"
        for k, f in enumerate(VIEW.features)
    )
    return (
        f"create or replace temporary view {VIEW.name} as "
        f"with rows as (select id as user_id, id as n, timestamp'2026-01-01 00:00:00' + make_interval(0, 0, 0, 0, 0, 0, id % 3000000) as event_timestamp from range({entities}) "
        f"union all select id, id + 1, timestamp'2026-02-01 00:00:00' + make_interval(0, 0, 0, 0, 0, 0, id % 3000000) from range(0, {entities}, 3)) "
        f"select user_id, event_timestamp, {columns} from rows"
    )


def jvm_peak_rss() -> int:
    from pyspark import SparkContext

    status = Path(f"/proc/{SparkContext._gateway.proc.pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1]) * 1024


def child(method: str, entities: int, redis_url: str) -> dict[str, Any]:
    from pyspark.sql import SparkSession

    from serving.engines import open_target_engine
    from serving.offline import OfflineStore
    from serving.online.connection import Nodes, connect
    from serving.online.export import Exporter
    from serving.online.keys import KeySpace
    from serving.online.read import OnlineClient
    from serving.online.versions import Timing
    from serving.registry import Registry, load_manifest
    from serving.rendering import Renderer

    with tempfile.TemporaryDirectory() as tmp:
        project = spark_project(Path(tmp) / "project")
        spark = (
            SparkSession.builder.master("local[2]")
            .config("spark.driver.memory", DRIVER_MEMORY)
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.shuffle.partitions", "8")
            .config("spark.ui.enabled", "false")
            .config("spark.sql.warehouse.dir", str(Path(tmp) / "warehouse"))
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
            .getOrCreate()
        )
        spark.sparkContext.setLogLevel("ERROR")
        try:
            spark.sql(view_sql(entities))
            _, manifest_hash = load_manifest(project, "spark")
            offline = OfflineStore(Renderer(project, manifest_hash, "spark"), lambda: open_target_engine(project, "spark"))
            sql = offline.snapshot_sql(VIEW, AS_OF)
            result: dict[str, Any] = {}
            reset_peak_rss()
            result["rss_before"] = rss_bytes()
            started = time.perf_counter()
            if method == "export":
                client = connect(redis_url)
                keys = KeySpace(f"fsbench-spark-{uuid.uuid4().hex[:8]}")
                nodes = Nodes(redis_url, client)
                try:
                    summary = Exporter(nodes, keys, offline, Timing.from_env(), progress=False).materialize([VIEW], AS_OF, incremental=False)
                    result["seconds"] = time.perf_counter() - started
                    result["peak_rss"] = peak_rss_bytes()
                    result["entities"] = summary.entities
                    result["mismatches"] = sample_mismatches(spark, sql, OnlineClient(nodes, keys, Registry({VIEW.name: VIEW}), Timing.from_env()), entities)
                finally:
                    for key in client.scan_iter(match=f"{keys.prefix}:*", count=10_000):
                        client.unlink(key)
                    client.close()
            else:
                frame = spark.sql(sql)
                collected = frame.toArrow() if method == "toArrow" else frame.toPandas()
                result["seconds"] = time.perf_counter() - started
                result["peak_rss"] = peak_rss_bytes()
                result["entities"] = len(collected)
            result["jvm_peak_rss"] = jvm_peak_rss()
            return result
        finally:
            spark.stop()


def sample_mismatches(spark: Any, sql: str, reader: Any, entities: int) -> list[str]:
    """Entities read back online against the same entities queried from Spark."""
    ids = sorted({(i * 7_919_993) % entities for i in range(50)})
    rows = spark.sql(f"select * from ({sql}) where user_id in ({', '.join(map(str, ids))}) order by user_id").toArrow().to_pylist()
    features = [f"{VIEW.name}:{f.name}" for f in VIEW.features]
    online = reader.get_online_features(features, [{"user_id": i} for i in ids]).to_dict()
    found = []
    for index, row in enumerate(rows):
        for feature in VIEW.features:
            want, got = row[feature.name], online[feature.name][index]
            if not (want == got or (want is None and (got is None or (isinstance(got, float) and math.isnan(got))))):
                found.append(f"user {row['user_id']} {feature.name}: online {got!r}, spark {want!r}")
    if len(rows) != len(ids):
        found.append(f"spark returned {len(rows)} of {len(ids)} sampled entities")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=5_000_000)
    parser.add_argument("--methods", nargs="+", default=["export", "toArrow", "toPandas"], choices=["export", "toArrow", "toPandas"])
    parser.add_argument("--child", nargs=3, metavar=("METHOD", "ENTITIES", "REDIS_URL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        method, entities, url = args.child
        print(json.dumps(child(method, int(entities), url)))
        return
    if shutil.which("java") is None:
        raise SystemExit("bench_spark_export: no java on PATH; Spark needs Java 17")

    import subprocess

    from serving.embedded_redis import redis_url_or_embedded

    results = {}
    with redis_url_or_embedded() as url:
        print(f"redis: {url.split('@')[-1]}; Spark local[2], driver heap {DRIVER_MEMORY}; {args.entities:,} entities")
        for method in args.methods:
            done = subprocess.run([sys.executable, __file__, "--child", method, str(args.entities), url], capture_output=True, text=True)
            if done.returncode != 0:
                print(f"  {method}: failed\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
                continue
            results[method] = json.loads(done.stdout.strip().splitlines()[-1])
            r = results[method]
            print(f"  {method:9} {r['seconds']:7.1f} s  Python peak RSS {mib(r['peak_rss']):>10} (held {mib(r['rss_before'])} before)  JVM peak RSS {mib(r['jvm_peak_rss']):>10}  ({r['entities']:,} entities)")
    export = results.get("export")
    if export is None:
        raise SystemExit(1)
    assert export["entities"] == args.entities, f"exported {export['entities']:,} entities, expected {args.entities:,}"
    assert not export["mismatches"], export["mismatches"]
    print()
    print(f"export: {args.entities / export['seconds']:,.0f} entities/s; Python peak RSS {mib(export['peak_rss'])} (floor 2,048 MiB: {'met' if export['peak_rss'] < FLOOR_BYTES else 'MISSED'})")
    for method in ("toArrow", "toPandas"):
        if method in results:
            base = results[method]
            print(f"baseline {method}: Python peak RSS {mib(base['peak_rss'])} = {base['peak_rss'] / export['peak_rss']:.1f}x the export's; collect alone took {base['seconds']:.1f} s")


if __name__ == "__main__":
    main()
