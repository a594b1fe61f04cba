"""The main job on sample data: generate → dbt build → training set → materialize → online reads.

Runs in one process so the throwaway Redis it starts (when no REDIS_URL is given) lives
exactly as long as the job.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path

import pandas as pd

from serving.embedded_redis import embedded_redis
from serving.errors import FeatureStoreError
from serving.store import FeatureStore

DEMO_FEATURES = [
    "user_features:total_purchases",
    "user_features:avg_purchase_amount",
    "user_purchase_windows:purchase_count_7d",
    "user_purchase_windows:spend_30d",
    "user_spend_trend:spend_7d_vs_90d_ratio",
    "user_last_purchase:hour_of_day_sin",
]


def _step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def _run(command: list[str], cwd: Path) -> None:
    if subprocess.run(command, cwd=cwd).returncode != 0:
        raise FeatureStoreError(f"`{' '.join(command)}` failed in {cwd}")


def _same(online: list, offline: list) -> bool:
    """Equal value for value; a missing value is None online and NA or NaN offline."""
    return len(online) == len(offline) and all(
        (pd.isna(a) and pd.isna(b)) if pd.isna(a) or pd.isna(b) else a == b for a, b in zip(online, offline)
    )


def run_demo(project_dir: Path, redis_url: str | None, users: int = 2000) -> None:
    project_dir = project_dir.resolve()
    sample = project_dir / "data" / "sample"
    bin_dir = Path(sys.executable).parent

    _step(f"sample data ({users} users) -> {sample}")
    _run([sys.executable, str(project_dir / "sample_data" / "generate.py"), "--out", str(sample), "--users", str(users)], project_dir)

    _step("dbt build: feature views, training sets, tests")
    _run([str(bin_dir / "dbt"), "build", "--project-dir", str(project_dir), "--profiles-dir", str(project_dir)], project_dir)

    with contextlib.nullcontext(redis_url) if redis_url else embedded_redis() as url:
        store = FeatureStore(project_dir=project_dir, redis_url=url)
        print(f"\nfeature views: {', '.join(view.name for view in store.list_feature_views())}")

        _step("training set from Python (get_historical_features on the label spine)")
        spine = pd.read_parquet(sample / "label_spine.parquet").rename(columns={"prediction_time": "event_timestamp"})
        training = store.get_historical_features(spine, DEMO_FEATURES)
        out = project_dir / "target" / "training_set.parquet"
        training.to_parquet(out, index=False)
        print(f"{len(training)} rows (spine: {len(spine)}) x {len(training.columns)} columns -> {out}")
        print(training.head(5).to_string())

        as_of = pd.read_parquet(sample / "purchases.parquet", columns=["event_timestamp"])["event_timestamp"].max()
        _step(f"materialize online views as of {as_of} into {'embedded Redis' if not redis_url else 'Redis'} ({url})")
        print(store.materialize(as_of=as_of.to_pydatetime()))

        _step("online features for a few users")
        users_to_show = [{"user_id": int(user)} for user in spine["user_id"].drop_duplicates().head(5)]
        online = store.get_online_features(DEMO_FEATURES, users_to_show).to_df()
        print(online.to_string())

        offline = store.get_historical_features(
            pd.DataFrame({"user_id": [row["user_id"] for row in users_to_show], "event_timestamp": as_of}), DEMO_FEATURES
        )
        names = [reference.split(":")[1] for reference in DEMO_FEATURES]
        same = all(_same(online[name].tolist(), offline[name].tolist()) for name in names)
        print(f"\nonline values equal the offline point-in-time values at {as_of}: {same}")
        if not same:
            raise FeatureStoreError("online and offline values differ; this is a bug")
