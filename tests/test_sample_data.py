"""The demo's sample data lives in data/sample, apart from user data, and no command
replaces a file it did not write."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd

from project_copies import ROOT

GENERATE = ROOT / "sample_data" / "generate.py"
SMALL = ["--users", "20", "--days", "15", "--products", "10"]
TABLES = {"users", "products", "purchases", "user_features", "label_spine"}


def generate(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(GENERATE), *SMALL, *args], cwd=cwd, capture_output=True, text=True)


def test_the_generator_writes_to_data_sample_by_default(tmp_path: Path) -> None:
    result = generate(tmp_path)

    assert result.returncode == 0, result.stderr
    assert {path.stem for path in (tmp_path / "data" / "sample").glob("*.parquet")} == TABLES
    assert not (tmp_path / "data" / "raw").exists()
    assert result.stdout.strip().endswith("to data/sample")


def test_the_project_reads_sample_data_from_data_sample() -> None:
    project = (ROOT / "dbt_project.yml").read_text()
    assert re.search(r"^  raw_data_path: data/sample$", project, re.MULTILINE)
    assert "data/raw" not in project
    assert "var('raw_data_path')" in (ROOT / "models" / "staging" / "sources.yml").read_text()


def test_a_file_the_generator_did_not_write_is_never_replaced(tmp_path: Path) -> None:
    out = tmp_path / "data"
    out.mkdir()
    theirs = out / "user_features.parquet"
    pd.DataFrame({"user_id": [1, 2, 3], "total_purchases": [5, 6, 7]}).to_parquet(theirs, index=False)
    before = theirs.read_bytes()

    result = generate(tmp_path, "--out", str(out))

    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: {theirs} exists and was not written by this generator; nothing was written. "
        "Move it away or choose another folder with --out"
    ]
    assert theirs.read_bytes() == before
    assert sorted(path.name for path in out.iterdir()) == ["user_features.parquet"], "nothing else is written"


def test_the_generator_replaces_its_own_files(tmp_path: Path) -> None:
    out = tmp_path / "sample"
    assert generate(tmp_path, "--out", str(out), "--seed", "1").returncode == 0
    first = pd.read_parquet(out / "purchases.parquet")

    result = generate(tmp_path, "--out", str(out), "--seed", "2")

    assert result.returncode == 0, result.stderr
    assert not pd.read_parquet(out / "purchases.parquet").equals(first)
    assert not list(out.glob("*.partial"))


def test_the_postgres_loader_reads_data_sample_by_default(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "sample_data" / "load_postgres.py")], cwd=tmp_path, capture_output=True, text=True
    )

    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: no .parquet files in data/sample; generate them with python sample_data/generate.py --out data/sample"
    )
