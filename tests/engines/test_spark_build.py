"""`dbt build --target spark` of the example project builds every model, data test and
unit test, and its tables equal DuckDB's build of the same data, value for value.

Then `FeatureStore(target="spark")` serves that build: get_historical_features on the
label spine and materialize + get_online_features equal the DuckDB build's, value for value.

Spark runs inside this process: the run's one SparkSession (`spark`, tests/spark_session.py,
started from the profile's `spark` target, as the macro tests on Spark use it), which
dbt-spark's `method: session` finds and builds in; the tables are read through the same
session and the FeatureStore's engine reuses it. The JVM stops when the test run ends.
Skipped only when there is no `java` on PATH (.ci/run requires one)."""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from engine_serving import (
    FLOAT_AGGREGATE_TOLERANCE,
    FLOAT_AGGREGATES,
    JVM_MATH,
    ONLINE_VIEWS,
    ParityInputs,
    Served,
    assert_historical_equal,
    assert_online_equal,
    serve,
    serving_store,
)
from engine_tables import KEY_ORDERED, SPINE_ORDERED, assert_everything_built, duckdb_tables, mismatches, ordered_rows
from project_copies import copy_project

pytest.importorskip("pyspark")
pytest.importorskip("dbt.adapters.spark")


@pytest.fixture(scope="module")
def spark_build(
    built_project: Path, duckdb_served: tuple[ParityInputs, Served], tmp_path_factory: pytest.TempPathFactory, spark: Any
) -> dict[str, Any]:
    """Builds a copy of the project (the DuckDB build's raw files) on the run's Spark
    session, reads every compared table, asks a FeatureStore on the spark target what
    DuckDB's was asked."""
    from dbt.cli.main import dbtRunner

    project_dir = copy_project(tmp_path_factory.mktemp("spark") / "project")
    shutil.copytree(built_project / "data", project_dir / "data")
    arguments = [
        "build", "--target", "spark", "--project-dir", str(project_dir), "--profiles-dir", str(project_dir),
        # Spark resolves a relative path against the process's working directory.
        "--vars", json.dumps({"raw_data_path": str(project_dir / "data" / "sample")}),
    ]
    tables = {}
    streamed: list[list[int]] = []
    same_session = False
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(project_dir)
        result = dbtRunner().invoke(arguments)
    if result.exception is not None:
        raise AssertionError(f"dbt build --target spark failed: {result.exception}")
    for name in (*SPINE_ORDERED, *KEY_ORDERED):
        table = spark.sql(f"select * from feature_store.`{name}`").toArrow()
        rows = list(zip(*(column.to_pylist() for column in table.columns)))
        tables[name] = ordered_rows(name, table.column_names, rows)
    started = time.perf_counter()
    store = serving_store(project_dir, "spark")
    try:
        served: Served | Exception = serve(store, duckdb_served[0])
        with store.offline.engine.session() as session:
            streamed = [batch.column("id").to_pylist() for batch in session.stream("select id from range(0, 1000, 1, 3)", batch_rows=128)]
            same_session = session.spark is spark
    except Exception as error:  # noqa: BLE001 - failed by the serving tests, not the build tests
        served = error
    serving_seconds = time.perf_counter() - started
    print(f"FeatureStore(target='spark'): historical + materialize + online reads in {serving_seconds:.1f} s", file=sys.stderr)
    return {"project_dir": project_dir, "tables": tables, "served": served, "streamed": streamed, "same_session": same_session}


@pytest.fixture(scope="module")
def duckdb_reference(built_project: Path) -> dict[str, tuple[list[str], list[tuple]]]:
    return duckdb_tables(built_project)


def test_spark_builds_every_model_data_test_and_unit_test(spark_build: dict[str, Any]) -> None:
    counts = assert_everything_built(spark_build["project_dir"])
    assert counts == {"model": 19, "test": 36, "unit_test": 12}  # with product_popularity v1 and v2, the on-demand view and no_serving_skew


@pytest.mark.parametrize("name", [*SPINE_ORDERED, *KEY_ORDERED])
def test_spark_tables_equal_duckdb_value_for_value(name: str, spark_build: dict[str, Any], duckdb_reference: dict) -> None:
    expected_columns, expected = duckdb_reference[name]
    columns, actual = spark_build["tables"][name]
    assert columns == expected_columns
    assert len(expected) > 100
    assert not mismatches(expected, actual, columns)


# ---- Serving from the Spark build ---------------------------------------------------------

# The float aggregates and the JVM's ln, sin and cos may differ from DuckDB in their last
# bits (see FLOAT_AGGREGATES, JVM_MATH); every other column is identical.
SPARK_TOLERANCES = dict.fromkeys(FLOAT_AGGREGATES | JVM_MATH, FLOAT_AGGREGATE_TOLERANCE)


def test_spark_historical_features_equal_duckdb(spark_build: dict[str, Any], duckdb_served: tuple[ParityInputs, Served]) -> None:
    inputs, expected = duckdb_served
    assert_historical_equal(expected, spark_served(spark_build), len(inputs.spine), SPARK_TOLERANCES)


@pytest.mark.parametrize("view", ONLINE_VIEWS)
def test_spark_online_values_equal_duckdb(view: str, spark_build: dict[str, Any], duckdb_served: tuple[ParityInputs, Served]) -> None:
    assert_online_equal(duckdb_served[1], spark_served(spark_build), view, SPARK_TOLERANCES)


def spark_served(spark_build: dict[str, Any]) -> Served:
    served = spark_build["served"]
    if isinstance(served, Exception):
        raise served
    return served


def test_the_feature_store_reuses_the_builds_spark_session(spark_build: dict[str, Any]) -> None:
    spark_served(spark_build)
    assert spark_build["same_session"]


def test_spark_stream_yields_bounded_batches_of_every_row(spark_build: dict[str, Any]) -> None:
    spark_served(spark_build)
    batches = spark_build["streamed"]
    assert max(map(len, batches)) <= 128 and len(batches) >= 8
    assert sorted(i for batch in batches for i in batch) == list(range(1000))
