"""`dbt build --target postgres` of the example project builds every model, data test and
unit test, and its tables equal DuckDB's build of the same data, value for value.

Then `FeatureStore(target="postgres")` serves that build: get_historical_features on the
label spine and materialize + get_online_features equal the DuckDB build's, value for value.

The raw Parquet files reach Postgres through sample_data/load_postgres.py, as a user would
load them. Each run gets its own database (dropped afterwards). Skipped only when no
PostgreSQL answers on 127.0.0.1:5432."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from engine_serving import (
    FLOAT_AGGREGATE_TOLERANCE,
    FLOAT_AGGREGATES,
    ONLINE_VIEWS,
    ParityInputs,
    Served,
    assert_historical_equal,
    assert_online_equal,
    serve,
    serving_store,
)
from engine_tables import KEY_ORDERED, SPINE_ORDERED, assert_everything_built, duckdb_tables, mismatches, ordered_rows
from postgres_databases import fresh_database
from project_copies import copy_project, dbt

psycopg = pytest.importorskip("psycopg")

@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    with fresh_database("fs_engines") as name:
        yield name


@pytest.fixture(scope="module")
def postgres_project(built_project: Path, database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A copy of the project with the DuckDB build's raw files, loaded and built on Postgres."""
    project_dir = copy_project(tmp_path_factory.mktemp("postgres") / "project")
    shutil.copytree(built_project / "data", project_dir / "data")
    saved = os.environ.get("FEATURE_STORE_PG_DBNAME")
    os.environ["FEATURE_STORE_PG_DBNAME"] = database
    try:
        subprocess.run([sys.executable, "sample_data/load_postgres.py"], cwd=project_dir, check=True, capture_output=True, text=True)
        dbt(project_dir, "build", "--target", "postgres")
        yield project_dir
    finally:
        if saved is None:
            del os.environ["FEATURE_STORE_PG_DBNAME"]
        else:
            os.environ["FEATURE_STORE_PG_DBNAME"] = saved


@pytest.fixture(scope="module")
def postgres_tables(postgres_project: Path, database: str) -> dict[str, tuple[list[str], list[tuple]]]:
    with psycopg.connect(f"host=127.0.0.1 port=5432 user=postgres dbname={database}") as connection:
        connection.execute("set TimeZone = 'UTC'")
        tables = {}
        for name in (*SPINE_ORDERED, *KEY_ORDERED):
            cursor = connection.execute(f'select * from feature_store."{name}"')
            tables[name] = ordered_rows(name, [c.name for c in cursor.description], cursor.fetchall())
        return tables


@pytest.fixture(scope="module")
def duckdb_reference(built_project: Path) -> dict[str, tuple[list[str], list[tuple]]]:
    return duckdb_tables(built_project)


def test_postgres_builds_every_model_data_test_and_unit_test(postgres_project: Path) -> None:
    counts = assert_everything_built(postgres_project)
    assert counts == {"model": 17, "test": 35, "unit_test": 12}  # product_popularity v1 and v2


@pytest.mark.parametrize("name", [*SPINE_ORDERED, *KEY_ORDERED])
def test_postgres_tables_equal_duckdb_value_for_value(name: str, postgres_tables: dict, duckdb_reference: dict) -> None:
    expected_columns, expected = duckdb_reference[name]
    columns, actual = postgres_tables[name]
    assert columns == expected_columns
    assert len(expected) > 100
    assert not mismatches(expected, actual, columns)


# ---- Serving from the Postgres build ------------------------------------------------------

# Only the float aggregates differ from DuckDB, in their last bits (see FLOAT_AGGREGATES);
# counts, keys, times, statuses, raw and per-row floats (lag, ln, sin, cos) are identical.
POSTGRES_TOLERANCES = dict.fromkeys(FLOAT_AGGREGATES, FLOAT_AGGREGATE_TOLERANCE)


@pytest.fixture(scope="module")
def postgres_served(postgres_project: Path, duckdb_served: tuple[ParityInputs, Served]) -> Served:
    inputs, _ = duckdb_served
    return serve(serving_store(postgres_project, "postgres"), inputs)


def test_postgres_historical_features_equal_duckdb(postgres_served: Served, duckdb_served: tuple[ParityInputs, Served]) -> None:
    inputs, expected = duckdb_served
    assert_historical_equal(expected, postgres_served, len(inputs.spine), POSTGRES_TOLERANCES)


@pytest.mark.parametrize("view", ONLINE_VIEWS)
def test_postgres_online_values_equal_duckdb(view: str, postgres_served: Served, duckdb_served: tuple[ParityInputs, Served]) -> None:
    assert_online_equal(duckdb_served[1], postgres_served, view, POSTGRES_TOLERANCES)
