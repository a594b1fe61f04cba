"""Offline benchmark: the DuckDB macros against pandas, on the same data, in the same run.

    .venv/bin/python bench/bench_offline.py [--feature-rows 1000000 10000000]
        [--spine-rows 1000000] [--entities 200000] [--repeat 3]

Two tasks, each at every feature-row count x one spine:
  pit      point_in_time_join_sql (TTL 7 days, created-timestamp tie-break) versus
           sort + drop_duplicates + pandas.merge_asof(direction='backward', tolerance=TTL).
  historical  OfflineStore.historical, the code behind get_historical_features: a pandas
           entity_df in, a pandas DataFrame out, versus the same merge_asof baseline.
  windows  window_aggregates(at='spine'), windows 1/7/30 days, count/sum/avg/max, versus
           prefix sums + searchsorted (count, sum, avg) and np.fmax.reduceat over the
           same slices (max): vectorized numpy, a deliberately strong baseline.

Each (task, engine, size) runs in its own child process, so peak memory is that
engine's alone. Results of both engines are compared row by row before any figure is
printed. Data loading for pandas (reading the DuckDB file into DataFrames) is not timed;
DuckDB reads its file inside the timed query.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from bench.common import Measurement, duckdb_offline_store, mib, project_renderer, report_to_parent, run_child, time_repeatedly  # noqa: E402
from serving.registry import Feature, FeatureView  # noqa: E402

SEED = 20240601
START = np.datetime64("2024-01-01T00:00:00", "us").astype(np.int64)
SPAN_SECONDS = 120 * 86_400
SECOND = 1_000_000
DAY = 86_400 * SECOND
TTL = {"text": "7 days", "seconds": 7 * 86_400}
# The point-in-time join must beat both at 10M feature rows x 1M spine rows.
PIT_FLOOR_SECONDS = 60
PIT_FLOOR_RATIO = 5
# Window aggregates at spine times must be at least this much faster than the numpy baseline.
WINDOWS_FLOOR_RATIO = 3
FEATURES = ["amount", "quantity", "category", "score"]
WINDOWS = {"1d": 1, "7d": 7, "30d": 30}
# name -> (function, column, window); count without a column counts events.
AGGREGATIONS = {
    "count_1d": ("count", None, "1d"),
    "count_7d": ("count", None, "7d"),
    "count_30d": ("count", None, "30d"),
    "amount_sum_1d": ("sum", "amount", "1d"),
    "amount_sum_7d": ("sum", "amount", "7d"),
    "amount_sum_30d": ("sum", "amount", "30d"),
    "amount_avg_7d": ("avg", "amount", "7d"),
    "amount_avg_30d": ("avg", "amount", "30d"),
    "amount_max_7d": ("max", "amount", "7d"),
    "amount_max_30d": ("max", "amount", "30d"),
}


# --- data --------------------------------------------------------------------------


def _timestamps(values: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    return pa.array(values, type=pa.timestamp("us"), mask=null)


def feature_table(rows: int, entities: int, rng: np.random.Generator) -> pa.Table:
    """Events in random order; 5% share (entity, timestamp) with another row so the
    created-timestamp tie-break matters, and created timestamps tie often (whole minutes)."""
    entity = rng.integers(0, entities, rows)
    at = START + rng.integers(0, SPAN_SECONDS, rows) * SECOND
    copies, sources = rng.integers(0, rows, rows // 20), rng.integers(0, rows, rows // 20)
    entity[copies], at[copies] = entity[sources], at[sources]
    created = at + rng.integers(0, 4, rows) * 60 * SECOND
    amount = np.round(rng.lognormal(3.0, 1.0, rows), 2)
    return pa.table(
        {
            "entity_id": entity,
            "event_timestamp": _timestamps(at),
            "created_timestamp": _timestamps(created, rng.random(rows) < 0.01),
            "amount": pa.array(amount, mask=rng.random(rows) < 0.02),
            "quantity": rng.integers(1, 21, rows),
            "category": rng.integers(0, 50, rows),
            "score": rng.normal(0.0, 1.0, rows),
        }
    )


def spine_table(rows: int, entities: int, rng: np.random.Generator) -> pa.Table:
    """Unsorted (entity, as_of) rows: 1% unknown entities, 5% exact duplicates, times
    spread past the last event so TTL and empty windows are exercised."""
    entity = rng.integers(0, entities + entities // 100, rows)
    as_of = START + rng.integers(0, SPAN_SECONDS + 10 * 86_400, rows) * SECOND
    copies, sources = rng.integers(0, rows, rows // 20), rng.integers(0, rows, rows // 20)
    entity[copies], as_of[copies] = entity[sources], as_of[sources]
    return pa.table({"entity_id": entity, "as_of": _timestamps(as_of)})


def build_database(path: Path, feature_rows: list[int], spine_rows: int, entities: int) -> None:
    rng = np.random.default_rng(SEED)
    with duckdb.connect(str(path)) as connection:
        connection.execute("set TimeZone = 'UTC'")
        spine = spine_table(spine_rows, entities, rng)
        connection.execute("create table spine as select * from spine")
        for rows in feature_rows:
            events = feature_table(rows, entities, rng)
            connection.execute(f"create table {feature_relation(rows)} as select * from events")
            del events
        connection.execute("checkpoint")


def feature_relation(rows: int) -> str:
    return f"features_{rows}"


# --- DuckDB: the project's macros -------------------------------------------------------


def pit_view(rows: int) -> dict[str, Any]:
    return {
        "name": "fv",
        "relation": feature_relation(rows),
        "entity": ["entity_id"],
        "timestamp_column": "event_timestamp",
        "created_timestamp_column": "created_timestamp",
        "ttl": TTL,
        "features": [{"name": name} for name in FEATURES],
    }


def pit_sql(rows: int) -> str:
    return project_renderer().call("point_in_time_join_sql", "spine", "as_of", [pit_view(rows)], False, True, None)


def _window_aggregations() -> list[dict[str, Any]]:
    return [
        {"name": name, "function": function, "column": column, "window": f"{WINDOWS[window]} days"}
        for name, (function, column, window) in AGGREGATIONS.items()
    ]


def windows_sql(rows: int) -> str:
    return project_renderer().call(
        "window_aggregates", feature_relation(rows), "entity_id", "event_timestamp", _window_aggregations(),
        at="spine", spine="spine", spine_timestamp="as_of",
    )


def previous_windows_sql(rows: int) -> str:
    """The previous DuckDB plan at a spine, kept for comparison: each entity's events
    grouped into lists, filtered per spine row (window_lists.sql)."""
    macros = project_renderer()
    plan = macros.call("window_plan", "entity_id", _window_aggregations(), "spine", "spine", "as_of")
    inputs = macros.call("window_inputs", feature_relation(rows), plan, "event_timestamp", "spine", "as_of")
    return f"{inputs},\n{macros.call('window_lists', plan)}\n{macros.call('window_output', plan, 'event_timestamp', None)}"


def historical_runner(database: Path, rows: int) -> Callable[[], pd.DataFrame]:
    """get_historical_features' own path: a pandas entity_df in, a pandas DataFrame out."""
    spec = pit_view(rows)
    view = FeatureView(
        name="fv", relation=spec["relation"], entity=("entity_id",), timestamp_column="event_timestamp",
        created_timestamp_column="created_timestamp", ttl=TTL["text"], ttl_seconds=TTL["seconds"], online=False,
        owner=None, tags=(), description="", features=tuple(Feature(name, None, "") for name in FEATURES), spec=spec,
    )
    store = duckdb_offline_store(database)
    entity_df = _load(database, "select * from spine")
    return lambda: store.historical(entity_df, [(view, FEATURES)], "as_of", False)


def duckdb_runner(task: str, database: Path, rows: int, previous: bool = False) -> Callable[[], Any]:
    if task == "historical":
        return historical_runner(database, rows)
    sql = pit_sql(rows) if task == "pit" else previous_windows_sql(rows) if previous else windows_sql(rows)
    connection = duckdb.connect(str(database), read_only=True)
    connection.execute("set TimeZone = 'UTC'")
    return lambda: connection.sql(sql).to_arrow_table()


# --- pandas: the baseline ----------------------------------------------------------------


def _load(database: Path, sql: str) -> pd.DataFrame:
    with duckdb.connect(str(database), read_only=True) as connection:
        return connection.sql(sql).df()


def pandas_pit(events: pd.DataFrame, spine: pd.DataFrame) -> pd.DataFrame:
    """The same rule: per (entity, timestamp) keep the latest created (nulls last), then
    the smallest features; then the latest row at or before as_of, within the TTL."""
    order = ["entity_id", "event_timestamp", "created_timestamp", *FEATURES]
    latest = events.sort_values(order, ascending=[True, True, False] + [True] * len(FEATURES), na_position="last", kind="stable")
    latest = latest.drop_duplicates(["entity_id", "event_timestamp"], keep="first")
    latest = latest.drop(columns="created_timestamp").sort_values("event_timestamp", kind="stable")
    latest["fv__event_timestamp"] = latest["event_timestamp"]
    points = spine.assign(__row=np.arange(len(spine))).sort_values("as_of", kind="stable")
    joined = pd.merge_asof(
        points, latest, left_on="as_of", right_on="event_timestamp", by="entity_id",
        direction="backward", allow_exact_matches=True, tolerance=pd.Timedelta(seconds=TTL["seconds"]),
    )
    joined = joined.sort_values("__row", kind="stable").reset_index(drop=True)
    return joined[["entity_id", "as_of", *FEATURES, "fv__event_timestamp"]]


def _counts_at_or_before(keys: np.ndarray, entity_rank: np.ndarray, at: np.ndarray, span: int) -> np.ndarray:
    """How many events sort at or before (entity, at), by one composite int64 key."""
    return np.searchsorted(keys, entity_rank * span + at, side="right")


def pandas_windows(events: pd.DataFrame, spine: pd.DataFrame) -> pd.DataFrame:
    """(t - w, t] at each spine time, over events sorted by (entity, time): each window
    is the slice [lower, upper) found by searchsorted at t - w and t. Count, sum and
    avg difference prefix sums at the bounds; max reduces each slice."""
    events = events[events["entity_id"].notna() & events["event_timestamp"].notna()]
    entity = events["entity_id"].to_numpy(np.int64)
    at = events["event_timestamp"].to_numpy("datetime64[us]").astype(np.int64)
    order = np.lexsort((at, entity))
    entity, at = entity[order], at[order]
    amount = events["amount"].to_numpy(np.float64)[order]

    known = np.unique(entity)
    base = at.min() - max(WINDOWS.values()) * DAY
    span = int(max(at.max(), spine["as_of"].to_numpy("datetime64[us]").astype(np.int64).max()) - base + 1)
    if span * len(known) >= 2**62:
        raise ValueError(f"composite key overflows: {len(known)} entities x span {span} µs")
    keys = np.searchsorted(known, entity) * span + (at - base)

    point_entity = spine["entity_id"].to_numpy(np.int64)
    point_at = spine["as_of"].to_numpy("datetime64[us]").astype(np.int64) - base
    rank = np.searchsorted(known, point_entity).clip(max=len(known) - 1)
    present = known[rank] == point_entity

    has_amount = ~np.isnan(amount)
    prefix_count = np.concatenate(([0], np.cumsum(has_amount)))
    prefix_sum = np.concatenate(([0.0], np.cumsum(np.where(has_amount, amount, 0.0))))
    upper = _counts_at_or_before(keys, rank, point_at, span)
    out = pd.DataFrame({"entity_id": spine["entity_id"], "as_of": spine["as_of"]})
    for name, (function, _column, window) in AGGREGATIONS.items():
        lower = _counts_at_or_before(keys, rank, point_at - WINDOWS[window] * DAY, span)
        if function == "count":
            out[name] = np.where(present, upper - lower, 0)
        elif function in ("sum", "avg"):
            total = np.where(present, prefix_sum[upper] - prefix_sum[lower], 0.0)
            counted = np.where(present, prefix_count[upper] - prefix_count[lower], 0)
            if function == "sum":
                out[name] = total
            else:
                with np.errstate(invalid="ignore", divide="ignore"):
                    out[name] = np.where(counted > 0, total / counted, np.nan)
        elif function == "max":
            # fmax ignores NaN (a NULL amount); reduceat over interleaved [lower, upper)
            # bounds gives each window's max at the even positions, in C. Sorted by lower
            # bound, the odd (discarded) slices between windows add up to at most one pass;
            # a trailing NaN keeps an upper bound at the very end a valid index.
            by_lower = np.argsort(lower, kind="stable")
            bounds = np.column_stack((lower[by_lower], upper[by_lower])).ravel()
            window_max = np.empty(len(lower))
            window_max[by_lower] = np.fmax.reduceat(np.append(amount, np.nan), bounds)[::2]
            out[name] = np.where(present & (upper > lower), window_max, np.nan)
    return out


def pandas_runner(task: str, database: Path, rows: int) -> Callable[[], pd.DataFrame]:
    spine = _load(database, "select * from spine")
    columns = "entity_id, event_timestamp, amount" if task == "windows" else "*"
    events = _load(database, f"select {columns} from {feature_relation(rows)}")
    if task == "historical":
        return lambda: pandas_pit(events, spine).drop(columns="fv__event_timestamp")
    function = pandas_pit if task == "pit" else pandas_windows
    return lambda: function(events, spine)


def previous_runner(task: str, database: Path, rows: int) -> Callable[[], Any]:
    return duckdb_runner(task, database, rows, previous=True)


RUNNERS = {"duckdb": duckdb_runner, "duckdb_old": previous_runner, "pandas": pandas_runner}
# The previous plan is timed only where it differs from the current one.
ENGINES = {"pit": ["duckdb", "pandas"], "historical": ["duckdb", "pandas"], "windows": ["duckdb", "duckdb_old", "pandas"]}


# --- checking ------------------------------------------------------------------------------


def _values(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """(null mask, values) of a column, timestamps as int64 microseconds."""
    if pa.types.is_timestamp(column.type):
        column = column.cast(pa.timestamp("us")).cast(pa.int64())
    null = column.is_null().to_numpy(zero_copy_only=False)
    if pa.types.is_floating(column.type):
        null |= np.isnan(column.fill_null(0).to_numpy(zero_copy_only=False))
    values = column.cast(pa.float64()).fill_null(0).to_numpy(zero_copy_only=False)
    return null, values


def compare(task: str, size: int, duck: pa.Table, panda: pa.Table) -> None:
    """Raises unless both engines agree on every row and column (floats to 1e-9)."""
    if duck.num_rows != panda.num_rows or duck.column_names != panda.column_names:
        raise AssertionError(
            f"{task} {size}: shapes differ: duckdb {duck.num_rows} rows {duck.column_names}, "
            f"pandas {panda.num_rows} rows {panda.column_names}"
        )
    for name in duck.column_names:
        (duck_null, duck_values), (panda_null, panda_values) = _values(duck[name]), _values(panda[name])
        wrong = (duck_null != panda_null) | (~duck_null & ~np.isclose(duck_values, panda_values, rtol=1e-9, atol=1e-6))
        if wrong.any():
            row = int(np.flatnonzero(wrong)[0])
            raise AssertionError(
                f"{task} {size}: column {name} differs in {int(wrong.sum())} rows; first at row {row}: "
                f"duckdb {duck[name][row]}, pandas {panda[name][row]}"
            )


# --- driver --------------------------------------------------------------------------------------


def child_main(task: str, engine: str, database: Path, rows: int, repeat: int, result_path: Path) -> None:
    run = RUNNERS[engine](task, database, rows)

    def keep(result: Any) -> None:
        table = result if isinstance(result, pa.Table) else pa.Table.from_pandas(result, preserve_index=False)
        pq.write_table(table, result_path)

    report_to_parent(time_repeatedly(run, repeat, keep))


def describe(task: str, rows: int, spine_rows: int, results: dict[str, Measurement]) -> str:
    duck, panda = results["duckdb"], results["pandas"]
    lines = [f"{task:8s} {rows:>11,} feature rows x {spine_rows:,} spine rows"]
    for engine, measured in results.items():
        lines.append(
            f"  {engine:10s} median {measured.median:7.2f} s  (runs {', '.join(f'{s:.2f}' for s in measured.seconds)})"
            f"  {spine_rows / measured.median:>12,.0f} spine rows/s  {rows / measured.median:>12,.0f} feature rows/s"
            f"  peak RSS {mib(measured.peak_rss)} (+{mib(measured.peak_delta)} over inputs loaded)"
        )
    ratio = panda.median / duck.median
    lines.append(f"  duckdb is {ratio:.1f}x faster than pandas")
    if "duckdb_old" in results:
        old = results["duckdb_old"]
        lines.append(
            f"  previous plan (duckdb_old): {panda.median / old.median:.1f}x pandas; the current one is "
            f"{old.median / duck.median:.1f}x faster than it (CPU time, every thread: median "
            f"{duck.cpu_median:.2f} s against {old.cpu_median:.2f} s, {old.cpu_median / duck.cpu_median:.1f}x less)"
        )
    if task == "windows" and rows >= 10_000_000:
        lines.append(f"  floor (>= {WINDOWS_FLOOR_RATIO}x pandas): {'met' if ratio >= WINDOWS_FLOOR_RATIO else 'MISSED'}")
    if task in ("pit", "historical") and rows >= 10_000_000:
        met = duck.median < PIT_FLOOR_SECONDS and ratio >= PIT_FLOOR_RATIO
        lines.append(f"  floor (< {PIT_FLOOR_SECONDS} s and >= {PIT_FLOOR_RATIO}x pandas): {'met' if met else 'MISSED'}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--feature-rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--spine-rows", type=int, default=1_000_000)
    parser.add_argument("--entities", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tasks", nargs="+", choices=["pit", "historical", "windows"], default=["pit", "historical", "windows"])
    parser.add_argument("--child", nargs=6, metavar=("TASK", "ENGINE", "DATABASE", "ROWS", "REPEAT", "RESULT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        task, engine, database, rows, repeat, result = args.child
        child_main(task, engine, Path(database), int(rows), int(repeat), Path(result))
        return

    print(f"duckdb {duckdb.__version__}, pandas {pd.__version__}, numpy {np.__version__}; median of {args.repeat} runs, each engine in its own process")
    with tempfile.TemporaryDirectory(prefix="bench_offline_") as scratch:
        database = Path(scratch) / "bench.duckdb"
        started = time.perf_counter()
        build_database(database, args.feature_rows, args.spine_rows, args.entities)
        print(f"data: {args.entities:,} entities, written to a DuckDB file in {time.perf_counter() - started:.1f} s")
        for task in args.tasks:
            for rows in args.feature_rows:
                results, tables = {}, {}
                for engine in ENGINES[task]:
                    result_path = Path(scratch) / f"{task}_{rows}_{engine}.parquet"
                    results[engine] = run_child(Path(__file__), [task, engine, str(database), str(rows), str(args.repeat), str(result_path)])
                    tables[engine] = pq.read_table(result_path)
                for engine in ENGINES[task]:
                    if engine != "pandas":
                        compare(task, rows, tables[engine], tables["pandas"])
                print(describe(task, rows, args.spine_rows, results) + "\n  results identical (every row, every column)", flush=True)


if __name__ == "__main__":
    main()
