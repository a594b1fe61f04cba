"""Macros rendered by dbt (serving.rendering.Renderer) and run in a real DuckDB file.

Every test that takes `macros` runs twice: once with the DuckDB implementations and once
with the portable (`default__`) ones, which DuckDB also runs."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import duckdb
import pytest

from serving.dbt_target import read_manifest_json
from serving.rendering import Renderer


@pytest.fixture(scope="session", params=["duckdb", "default"])
def macros(request: pytest.FixtureRequest, parsed_project: Path) -> Renderer:
    _, manifest_hash = read_manifest_json(parsed_project)
    return Renderer(parsed_project, manifest_hash, portable=request.param == "default", cache=False)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect(str(tmp_path / "macros.duckdb"))
    connection.execute("SET TimeZone='UTC'")
    yield connection
    connection.close()
