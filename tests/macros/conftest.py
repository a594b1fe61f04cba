"""Macros rendered in Python (serving.macros.MacroSet) and run in a real DuckDB file.

Every test that takes `macros` runs twice: once with the DuckDB implementations and once
with the portable (`default__`) ones, which DuckDB also runs."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import duckdb
import pytest

from serving.macros import MacroSet

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session", params=["duckdb", "default"])
def macros(request: pytest.FixtureRequest) -> MacroSet:
    return MacroSet(ROOT / "macros", adapter=request.param)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect(str(tmp_path / "macros.duckdb"))
    connection.execute("SET TimeZone='UTC'")
    yield connection
    connection.close()
