"""Macros rendered by dbt (serving.rendering.Renderer) and run on real engines.

A test that takes `macros` and `db` runs twice: once with the DuckDB implementations and
once with the portable (`default__`) ones, which DuckDB also runs. A test that takes
`engine` runs on the engines it names with `on_engines` (macro_engines.py): those two, and
PostgreSQL and Spark with their own dispatch, each on a subset of the random seeds sized
for CI."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import duckdb
import pytest

from macro_engines import Engine, duckdb_engine, postgres_engine, spark_engine
from serving.dbt_target import read_manifest_json
from serving.rendering import Renderer


def renderer(project: Path, target: str | None = None, portable: bool = False) -> Renderer:
    return Renderer(project, read_manifest_json(project)[1], target, portable=portable, cache=False)


@pytest.fixture(scope="session", params=["duckdb", "default"])
def macros(request: pytest.FixtureRequest, parsed_project: Path) -> Renderer:
    return renderer(parsed_project, portable=request.param == "default")


@pytest.fixture
def db(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect(str(tmp_path / "macros.duckdb"))
    connection.execute("SET TimeZone='UTC'")
    yield connection
    connection.close()


@pytest.fixture(scope="session")
def postgres_macros(postgres_parsed_project: Path) -> Iterator[Engine]:
    psycopg = pytest.importorskip("psycopg")
    try:
        engines = postgres_engine(renderer(postgres_parsed_project, "postgres"))
        engine = next(engines)
    except psycopg.OperationalError as error:
        pytest.skip(f"no PostgreSQL on 127.0.0.1:5432: {error}")
    yield engine
    engines.close()


@pytest.fixture(scope="session")
def spark_macros(spark: Any, spark_parsed_project: Path) -> Iterator[Engine]:
    engines = spark_engine(spark, renderer(spark_parsed_project, "spark"))
    yield next(engines)
    engines.close()


@pytest.fixture
def engine(request: pytest.FixtureRequest, parsed_project: Path) -> Engine:
    """The engine named by the test's parameter (see macro_engines.on_engines)."""
    if request.param == "postgres":
        return request.getfixturevalue("postgres_macros")
    if request.param == "spark":
        return request.getfixturevalue("spark_macros")
    db = request.getfixturevalue("db")
    return duckdb_engine(request.param, db, renderer(parsed_project, portable=request.param == "default"))
