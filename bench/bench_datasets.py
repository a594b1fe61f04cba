"""What saving and verifying a training set costs, against get_historical_features alone.

    .venv/bin/python bench/bench_datasets.py [--users 2000] [--spine-rows 200000] [--repeat 3]

Builds a copy of the project on sample data (`dbt build`), draws a spine of --spine-rows
rows from its label spine (seeded, with replacement), and times, interleaved so the runs
share the machine's load: get_historical_features (the baseline), the same with
save_as= (join + lineage + writing the set into the DuckDB warehouse), verify_saved_dataset
(reading the set back, the join again, the comparison), and feature_drift between two
saved sets. Before any figure is printed, the saved set is checked to read back equal to
the returned one and to verify equal.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from project_copies import copy_project, dbt, generate_sample_data  # noqa: E402
from serving.datasets import table_hash  # noqa: E402
from serving.store import FeatureStore  # noqa: E402

FEATURES = [
    *(f"user_purchase_windows:{name}" for name in ("purchase_count_7d", "purchase_count_30d", "spend_7d", "spend_30d", "avg_amount_30d")),
    *(f"user_features:{name}" for name in ("total_purchases", "avg_purchase_amount", "days_since_last_purchase")),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--spine-rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-datasets-") as folder:
        project = copy_project(Path(folder) / "project")
        generate_sample_data(project, "--users", str(args.users))
        dbt(project, "build")
        store = FeatureStore(project)
        import pandas as pd

        labels = pd.read_parquet(project / "data" / "sample" / "label_spine.parquet")
        spine = labels.sample(args.spine_rows, replace=True, random_state=7).reset_index(drop=True)
        spine = spine.rename(columns={"prediction_time": "event_timestamp"})

        returned = store.get_historical_features(spine, FEATURES, save_as="bench_set")
        assert table_hash(store.get_saved_dataset("bench_set").to_df()) == table_hash(returned), "saved set reads back different"
        assert store.verify_saved_dataset("bench_set").equal, "saved set does not verify equal"
        store.get_historical_features(spine.head(args.spine_rows // 2), FEATURES, save_as="bench_half")

        tasks: dict[str, Callable[[], Any]] = {
            "get_historical_features": lambda: store.get_historical_features(spine, FEATURES),
            "  with save_as=": lambda: store.get_historical_features(spine, FEATURES, save_as="bench_set"),
            "verify_saved_dataset": lambda: store.verify_saved_dataset("bench_set"),
            "feature_drift, 2 saved sets": lambda: store.feature_drift("dataset:bench_set", "dataset:bench_half"),
        }
        seconds: dict[str, list[float]] = {name: [] for name in tasks}
        for _ in range(args.repeat):
            for name, task in tasks.items():
                start = time.perf_counter()
                task()
                seconds[name].append(time.perf_counter() - start)

    baseline = statistics.median(seconds["get_historical_features"])
    print(f"{args.spine_rows} spine rows x {len(FEATURES)} features, {args.users} sample users, medians of {args.repeat}")
    for name, values in seconds.items():
        median = statistics.median(values)
        print(f"{name:<30} {median:8.2f} s   {median / baseline:5.2f}x get_historical_features")


if __name__ == "__main__":
    main()
