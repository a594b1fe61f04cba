"""get_historical_features against a bare DuckDB ASOF JOIN of the same entity frame.

    .venv/bin/python bench/bench_historical.py [--feature-rows 2000000] [--spine-rows 100000]
        [--entities 200000] [--repeat 7]

The data is bench_offline's (seeded; ties on (entity, timestamp), NULL created
timestamps, unknown entities, duplicate spine rows, a 7-day TTL). Two things are timed,
interleaved run by run in one process so that they share the machine's load:

  bare        one DuckDB connection to the warehouse (opened, and the pandas entity frame
              registered, before timing), then `entity asof left join view` on the key
              and `as_of >= event_timestamp`, the four features fetched as Arrow. No TTL,
              no tie-break, no guaranteed row order: the floor of what the rules cost.
  historical  OfflineStore.historical, the code behind get_historical_features, end to
              end: checks, rendering (cached), a read-only session of its own, upload,
              the point-in-time join, the pandas result in the caller's row order.

Printed: wall-clock and CPU-time medians (CPU time is the process's, every DuckDB thread
included, so it moves less with the load of other processes) and historical / bare for
both. Before timing, the historical result is compared row by row with the pandas
reference of bench_offline (sort + drop_duplicates + merge_asof with the TTL).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402
import pyarrow as pa  # noqa: E402

from bench.bench_offline import FEATURES, _load, build_database, compare, feature_relation, historical_runner, pandas_pit  # noqa: E402

# get_historical_features, every rule kept, within this factor of the bare ASOF JOIN.
RATIO_FLOOR = 1.5


def bare_runner(database: Path, rows: int) -> Callable[[], pa.Table]:
    entity_df = _load(database, "select * from spine")
    connection = duckdb.connect(str(database), read_only=True)
    connection.execute("set TimeZone = 'UTC'")
    connection.register("entity_df", entity_df)
    features = ", ".join(f"view.{name}" for name in FEATURES)
    sql = (
        f"select entity_df.*, {features} from entity_df asof left join {feature_relation(rows)} as view"
        " on view.entity_id = entity_df.entity_id and entity_df.as_of >= view.event_timestamp"
    )
    return lambda: connection.sql(sql).to_arrow_table()


def check(database: Path, rows: int, historical: Callable[[], Any]) -> None:
    """The historical result equals the pandas reference on every row and column."""
    reference = pandas_pit(_load(database, f"select * from {feature_relation(rows)}"), _load(database, "select * from spine"))
    expected = pa.Table.from_pandas(reference.drop(columns="fv__event_timestamp"), preserve_index=False)
    compare("historical", rows, pa.Table.from_pandas(historical(), preserve_index=False), expected)


def timed(runs: dict[str, Callable[[], Any]], repeat: int) -> dict[str, tuple[list[float], list[float]]]:
    """(wall seconds, CPU seconds) of each run, the runs taken in turn `repeat` times."""
    seconds: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in runs}
    for _ in range(repeat):
        for name, run in runs.items():
            wall, cpu = time.perf_counter(), time.process_time()
            result = run()
            seconds[name][0].append(time.perf_counter() - wall)
            seconds[name][1].append(time.process_time() - cpu)
            del result
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--feature-rows", type=int, default=2_000_000)
    parser.add_argument("--spine-rows", type=int, default=100_000)
    parser.add_argument("--entities", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"duckdb {duckdb.__version__}; {os.cpu_count()} cores, load average {load}; median of {args.repeat} interleaved runs")
    with tempfile.TemporaryDirectory(prefix="bench_historical_") as scratch:
        database = Path(scratch) / "bench.duckdb"
        build_database(database, [args.feature_rows], args.spine_rows, args.entities)
        runs = {"bare": bare_runner(database, args.feature_rows), "historical": historical_runner(database, args.feature_rows)}
        check(database, args.feature_rows, runs["historical"])
        for run in runs.values():  # warm: the render cache, the OS page cache
            run()
        seconds = timed(runs, args.repeat)

    print(f"{args.feature_rows:,} feature rows x {args.spine_rows:,} entity rows ({args.entities:,} entities)")
    medians = {name: (statistics.median(wall), statistics.median(cpu)) for name, (wall, cpu) in seconds.items()}
    for name, (wall, cpu) in medians.items():
        runs_text = ", ".join(f"{value:.2f}" for value in seconds[name][0])
        print(f"  {name:10s} wall {wall:6.3f} s  cpu {cpu:6.3f} s  (wall runs {runs_text})")
    wall_ratio = medians["historical"][0] / medians["bare"][0]
    cpu_ratio = medians["historical"][1] / medians["bare"][1]
    print(f"  historical / bare: wall {wall_ratio:.2f}x, cpu {cpu_ratio:.2f}x")
    print(f"  floor (<= {RATIO_FLOOR}x the bare ASOF JOIN, wall): {'met' if wall_ratio <= RATIO_FLOOR else 'MISSED'}")
    print("  historical result identical to the pandas reference (every row, every column)")
    print(f"  load average now {', '.join(f'{value:.1f}' for value in os.getloadavg())}")


if __name__ == "__main__":
    main()
