"""The README's main command end to end, with no REDIS_URL: the embedded server path."""

from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd

from project_copies import copy_project


def test_demo_runs_the_whole_loop_on_an_embedded_redis(tmp_path):
    project_dir = copy_project(tmp_path / "project")
    env = {key: value for key, value in os.environ.items() if key not in ("REDIS_URL", "FEATURE_STORE_DUCKDB")}

    result = subprocess.run(
        [sys.executable, "-m", "serving", "--project-dir", str(project_dir), "demo", "--users", "200"],
        capture_output=True, text=True, env=env, cwd=project_dir,
    )

    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "into embedded Redis (redis://127.0.0.1:" in result.stdout
    assert "online values equal the offline point-in-time values" in result.stdout
    assert result.stdout.rstrip().endswith("True")
    training = pd.read_parquet(project_dir / "target" / "training_set.parquet")
    spine = pd.read_parquet(project_dir / "data" / "sample" / "label_spine.parquet")
    assert training["user_id"].tolist() == spine["user_id"].tolist()
