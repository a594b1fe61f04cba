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
    AS_OF,
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
    assert counts == {"model": 19, "test": 36, "unit_test": 12}  # with product_popularity v1 and v2, the on-demand view and no_serving_skew


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


def test_a_saved_training_set_reads_back_and_verifies_equal_on_postgres(
    postgres_project: Path, duckdb_served: tuple[ParityInputs, Served]
) -> None:
    from serving.datasets import table_hash

    inputs, _ = duckdb_served
    store = serving_store(postgres_project, "postgres")
    returned = store.get_historical_features(inputs.spine, inputs.features, full_feature_names=True, save_as="pg_parity")

    assert table_hash(store.get_saved_dataset("pg_parity").to_df()) == table_hash(returned)
    verification = store.verify_saved_dataset("pg_parity")
    assert (verification.status, verification.rows) == ("equal", len(inputs.spine))


# ---- On-demand views on Postgres ----------------------------------------------------------


def test_postgres_on_demand_values_are_equal_online_and_offline(postgres_project: Path, tmp_path: Path) -> None:
    """Postgres computes the expressions in the point-in-time query; DuckDB computes them in
    process, set to divide integers as Postgres does (count_ratio is bigint / bigint)."""
    from on_demand_views import FEATURES, VIEW, add_request_cases, offline_values, online_values, random_requests
    from online.online_checks import drop_prefix

    project = tmp_path / "project"
    shutil.copytree(postgres_project, project, ignore=shutil.ignore_patterns("logs", "feature_store_render"))
    add_request_cases(project)
    store = serving_store(project, "postgres")
    assert store.registry.on_demand_views[VIEW].settings == {"integer_division": True}
    features = [f"{VIEW}:{name}" for name in FEATURES]
    rows = random_requests(11, 150, users=300)
    try:
        store.materialize(as_of=AS_OF, progress=False)
        offline = offline_values(store, rows, features, AS_OF)
        online = online_values(store, rows, features, ["quantity", "channel", "threshold"])
    finally:
        drop_prefix(store.redis_url, store.redis_prefix)
    assert online == offline
    assert any(value is not None and value not in (0, 10) for value in offline["count_ratio"])
    assert None in offline["spend_per_unit"]
