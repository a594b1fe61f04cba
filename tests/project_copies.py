"""Shared test support: copy the project, run dbt in the copy, generate its sample data.

tests/ is on sys.path (pyproject.toml), so any test module can `from project_copies import ...`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROJECT_ITEMS = ("dbt_project.yml", "profiles.yml", "models", "macros", "sample_data")


def copy_project(destination: Path) -> Path:
    """The dbt project (no target/, no data/) copied to `destination`."""
    destination.mkdir(parents=True, exist_ok=True)
    for item in PROJECT_ITEMS:
        source = ROOT / item
        if source.is_dir():
            shutil.copytree(source, destination / item, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, destination / item)
    return destination


def copy_built(project: Path, destination: Path) -> Path:
    """A built project copied whole, so a test may run dbt in it or change it without
    touching the shared one. The render caches come along (same manifest, same settings),
    but not the engine's remembered connection: it names the original's warehouse file."""
    shutil.copytree(project, destination, ignore=shutil.ignore_patterns("engine-*.json"))
    assert not list(destination.rglob("engine-*.json"))
    return destination


def dbt(project_dir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Runs the dbt CLI in `project_dir` (its own profiles.yml, its own target/)."""
    env = {key: value for key, value in os.environ.items() if key != "FEATURE_STORE_DUCKDB"}
    result = subprocess.run(
        [str(Path(sys.executable).with_name("dbt")), *args, "--project-dir", str(project_dir), "--profiles-dir", str(project_dir)],
        cwd=project_dir,
        env=env,
        capture_output=True,
        text=True,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"dbt {' '.join(args)} failed:\n{result.stdout[-6000:]}\n{result.stderr[-3000:]}")
    return result


def generate_sample_data(project_dir: Path, *flags: str) -> None:
    subprocess.run(
        [sys.executable, str(project_dir / "sample_data" / "generate.py"), "--out", str(project_dir / "data" / "sample"), *flags],
        check=True,
        capture_output=True,
    )
