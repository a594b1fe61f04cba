"""Scale: the point-in-time join and get_historical_features on Spark local[2] and on
DuckDB, on the same Parquet files, results compared row by row, times and ratio printed.

    .venv/bin/python bench/bench_spark_scale.py [--feature-rows 10000000] [--spine-rows 1000000]
        [--entities 200000] [--repeat 1] [--tasks pit historical] [--data-dir DIR] [--driver-memory 6g]

The data (seeded, bench_offline's generator: events in random order, 5% sharing (entity,
timestamp) with another row, created timestamps tying in whole minutes, 1% NULL created,
2% NULL amount; an unsorted spine with 1% unknown entities and 5% duplicate rows, plus a
row_id) is written once as Parquet under --data-dir (default target/bench_spark_scale/...)
and reused by later runs. Each engine reads those files its own way inside the timed
work: DuckDB `read_parquet(...)`, Spark `parquet.`...``.

  pit         point_in_time_join_sql as dbt renders it for each target (TTL 7 days,
              created-timestamp tie-break, event timestamps included), its result
              written to Parquet by the engine: DuckDB `COPY ... TO`, Spark
              `DataFrame.write.parquet` (each task writes its own partition; nothing
              passes through the driver).
  historical  OfflineStore.historical, the code behind get_historical_features: the
              1M-row pandas entity frame uploaded to the engine, the same join, the
              result back in the driver as a pandas DataFrame in entity-frame order.

Each (engine, task) runs in a child process of its own: DuckDB with 2 threads, Spark
local[2] (its JVM started before the clock starts). Before any figure is printed the two
engines' results are compared in DuckDB on every row and column: the join by row_id,
get_historical_features by position (so the order is checked too). The join passes
values through unchanged, so equality is exact.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_offline import FEATURES, SEED, TTL, feature_table, pit_view, spine_table  # noqa: E402
from bench.bench_spark_export import spark_project  # noqa: E402
from bench.common import mib, peak_rss_bytes, reset_peak_rss  # noqa: E402

ENGINES = ("duckdb", "spark")
TASKS = ("pit", "historical")
SPINE_COLUMNS = ["entity_id", "as_of", "row_id"]


# --- data ----------------------------------------------------------------------------


def data_dir(args: argparse.Namespace) -> Path:
    if args.data_dir:
        return Path(args.data_dir).resolve()
    return ROOT / "target" / "bench_spark_scale" / f"f{args.feature_rows}_s{args.spine_rows}_e{args.entities}"


def generate(directory: Path, feature_rows: int, spine_rows: int, entities: int) -> None:
    """features.parquet and spine.parquet, written once (a marker names what is there)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    marker = directory / "generated.json"
    wanted = {"seed": SEED, "feature_rows": feature_rows, "spine_rows": spine_rows, "entities": entities}
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        return
    directory.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    rng = np.random.default_rng(SEED)
    spine = spine_table(spine_rows, entities, rng)
    spine = spine.append_column("row_id", pa.array(np.arange(spine_rows, dtype=np.int64)))
    # Row groups of 1M rows: Spark reads the files in several splits, as it would a table.
    pq.write_table(spine, directory / "spine.parquet", row_group_size=1_000_000)
    del spine
    pq.write_table(feature_table(feature_rows, entities, rng), directory / "features.parquet", row_group_size=1_000_000)
    marker.write_text(json.dumps(wanted))
    print(f"generated {feature_rows:,} feature rows and {spine_rows:,} spine rows in {time.perf_counter() - started:.0f} s under {directory}")


# --- the work, in a child process per (engine, task) -----------------------------------


def view_spec(relation: str) -> dict[str, Any]:
    """bench_offline's view (TTL 7 days, created-timestamp tie-break) over `relation`."""
    return {**pit_view(0), "relation": relation}


def feature_view(relation: str) -> Any:
    from serving.registry import Feature, FeatureView

    return FeatureView(
        name="fv", relation=relation, entity=("entity_id",), timestamp_column="event_timestamp",
        created_timestamp_column="created_timestamp", ttl=TTL["text"], ttl_seconds=TTL["seconds"], online=False,
        owner=None, tags=(), description="", features=tuple(Feature(name, None, "") for name in FEATURES),
        spec=view_spec(relation),
    )


def start_spark(tmp: Path, driver_memory: str) -> Any:
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master("local[2]")
        .appName("bench_spark_scale")
        .config("spark.driver.memory", driver_memory)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "8")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.warehouse.dir", str(tmp / "warehouse"))
        .config("spark.local.dir", str(tmp / "spark_local"))
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def child(engine: str, task: str, directory: Path, repeat: int, driver_memory: str) -> dict[str, Any]:
    import pandas as pd

    from serving.offline import OfflineStore
    from serving.registry import load_manifest
    from serving.rendering import Renderer

    features, spine = directory / "features.parquet", directory / "spine.parquet"
    out = directory / "results" / f"{task}_{engine}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    seconds: list[float] = []
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        if engine == "duckdb":
            import duckdb

            from serving.engines.duckdb import DuckDBEngine

            _, manifest_hash = load_manifest(ROOT)
            renderer = Renderer(ROOT, manifest_hash)
            relation, spine_relation = f"read_parquet('{features}')", f"read_parquet('{spine}')"
            # An empty warehouse file: the view reads the Parquet file through its relation.
            database = Path(tmp) / "bench.duckdb"
            duckdb.connect(str(database)).close()
            offline = OfflineStore(renderer, lambda: DuckDBEngine(database, {"threads": 2}))
            connection = duckdb.connect(config={"threads": 2})
            connection.execute("set TimeZone = 'UTC'")

            def write(sql: str, target: Path) -> None:
                connection.execute(f"copy ({sql}) to '{target / 'part-0.parquet'}' (format parquet)")
        else:
            from serving.engines import open_target_engine

            spark = start_spark(Path(tmp), driver_memory)
            project = spark_project(Path(tmp) / "project")
            _, manifest_hash = load_manifest(project, "spark")
            renderer = Renderer(project, manifest_hash, "spark")
            relation, spine_relation = f"parquet.`{features}`", f"parquet.`{spine}`"
            # The engine finds the session started above (the process's active one).
            offline = OfflineStore(renderer, lambda: open_target_engine(project, "spark"))

            def write(sql: str, target: Path) -> None:
                spark.sql(sql).write.mode("overwrite").parquet(str(target))

        reset_peak_rss()
        if task == "pit":
            # The spine's columns named: without a list, Spark (like any engine but DuckDB)
            # also returns the helpers __fs_row and __fs_at, which order its tables.
            sql = renderer.call("point_in_time_join_sql", spine_relation, "as_of", [view_spec(relation)], False, True, SPINE_COLUMNS)
            for attempt in range(repeat):
                started = time.perf_counter()
                write(sql, out)
                seconds.append(time.perf_counter() - started)
        else:
            entity_df = pd.read_parquet(spine)
            view = feature_view(relation)
            for attempt in range(repeat):
                started = time.perf_counter()
                result = offline.historical(entity_df, [(view, FEATURES)], "as_of", False)
                seconds.append(time.perf_counter() - started)
                if attempt == 0:
                    result.insert(0, "position", range(len(result)))
                    result.to_parquet(out / "part-0.parquet", index=False)
                del result
        peak = peak_rss_bytes()
        if engine == "spark":
            spark.stop()
    return {"seconds": seconds, "peak_rss": peak}


# --- comparison ------------------------------------------------------------------------


def compare(directory: Path, task: str, spine_rows: int) -> list[str]:
    """Rows that differ between the engines' results (empty when they agree)."""
    import duckdb

    key = "row_id" if task == "pit" else "position"
    with duckdb.connect() as connection:
        connection.execute("set TimeZone = 'UTC'")
        results = {e: f"read_parquet('{directory / 'results' / f'{task}_{e}'}/*.parquet')" for e in ENGINES}
        columns = [c[0] for c in connection.execute(f"describe select * from {results['duckdb']}").fetchall()]
        spark_columns = [c[0] for c in connection.execute(f"describe select * from {results['spark']}").fetchall()]
        problems = [] if columns == spark_columns else [f"columns differ: duckdb {columns}, spark {spark_columns}"]
        for engine, relation in results.items():
            rows, keys = connection.execute(f"select count(*), count(distinct {key}) from {relation}").fetchone()
            if rows != spine_rows or keys != spine_rows:
                problems.append(f"{engine}: {rows:,} rows with {keys:,} distinct {key}, expected {spine_rows:,}")
        differ = " or ".join(f"d.{c} is distinct from s.{c}" for c in columns if c != key)
        found = connection.execute(
            f"select coalesce(d.{key}, s.{key}) as k, d.* exclude ({key}), s.* exclude ({key}) from {results['duckdb']} d "
            f"full join {results['spark']} s on d.{key} = s.{key} "
            f"where d.{key} is null or s.{key} is null or {differ} order by k limit 5"
        ).fetchall()
        count = connection.execute(
            f"select count(*) from {results['duckdb']} d full join {results['spark']} s on d.{key} = s.{key} "
            f"where d.{key} is null or s.{key} is null or {differ}"
        ).fetchone()[0]
        if count:
            problems.append(f"{count:,} rows differ; first: {found}")
        return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feature-rows", type=int, default=10_000_000)
    parser.add_argument("--spine-rows", type=int, default=1_000_000)
    parser.add_argument("--entities", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=1, help="timed runs per engine and task (the median is printed)")
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--data-dir", help="where the Parquet inputs and results live (default: under target/)")
    parser.add_argument("--driver-memory", default="6g", help="Spark driver heap (local mode: the executors too)")
    parser.add_argument("--child", nargs=3, metavar=("ENGINE", "TASK", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        engine, task, directory = args.child
        print(json.dumps(child(engine, task, Path(directory), args.repeat, args.driver_memory)))
        return
    if shutil.which("java") is None:
        raise SystemExit("bench_spark_scale: no java on PATH; Spark needs Java 17")

    directory = data_dir(args)
    generate(directory, args.feature_rows, args.spine_rows, args.entities)
    print(
        f"{args.feature_rows:,} feature rows x {args.spine_rows:,} spine rows, {args.entities:,} entities; "
        f"DuckDB 2 threads, Spark local[2] (driver heap {args.driver_memory}); load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    failed = False
    for task in args.tasks:
        medians = {}
        for engine in ENGINES:
            command = [sys.executable, __file__, "--child", engine, task, str(directory), "--repeat", str(args.repeat), "--driver-memory", args.driver_memory]
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                raise SystemExit(f"{task} on {engine} failed:\n{done.stdout[-2000:]}\n{done.stderr[-5000:]}")
            result = json.loads(done.stdout.strip().splitlines()[-1])
            medians[engine] = statistics.median(result["seconds"])
            runs = ", ".join(f"{s:.1f}" for s in result["seconds"])
            print(f"  {task:10} {engine:6} median {medians[engine]:7.1f} s  (runs: {runs})  Python peak RSS {mib(result['peak_rss'])}")
        problems = compare(directory, task, args.spine_rows)
        if problems:
            failed = True
            print(f"  {task}: the engines DISAGREE:\n    " + "\n    ".join(problems))
        else:
            print(f"  {task}: {args.spine_rows:,} rows equal on every column; Spark / DuckDB = {medians['spark'] / medians['duckdb']:.1f}x")
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
