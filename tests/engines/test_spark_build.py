"""`dbt build --target spark` of the example project builds every model, data test and
unit test, and its tables equal DuckDB's build of the same data, value for value.

Then `FeatureStore(target="spark")` serves that build: get_historical_features on the
label spine and materialize + get_online_features equal the DuckDB build's, value for value.

Spark runs inside this process (the profile's `method: session`, local[*], warehouse and
Derby metastore under the copy's target/spark), so the JVM starts once: dbt builds, the
tables are read through the same session, the FeatureStore's engine reuses that session,
and the JVM is stopped before any assertion.
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


def stop_spark() -> int | None:
    """Stops the Spark session and its JVM; returns the JVM's exit code (None: none ran)."""
    from pyspark import SparkContext

    if SparkContext._active_spark_context is not None:
        SparkContext._active_spark_context.stop()
    gateway = SparkContext._gateway
    if gateway is None:
        return None
    gateway.shutdown()
    # The JVM exits when its stdin closes (pyspark's launcher protocol).
    gateway.proc.stdin.close()
    code = gateway.proc.wait(timeout=120)
    SparkContext._gateway = None
    SparkContext._jvm = None
    return code


@pytest.fixture(scope="module")
def spark_build(
    built_project: Path, duckdb_served: tuple[ParityInputs, Served], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """Builds a copy of the project (the DuckDB build's raw files) on Spark, reads every
    compared table, asks a FeatureStore on the spark target what DuckDB's was asked, stops
    the JVM."""
    if shutil.which("java") is None:
        pytest.skip("no java on PATH: Spark needs Java 17")
    from dbt.cli.main import dbtRunner
    from pyspark.sql import SparkSession

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
        patch.setenv("FEATURE_STORE_SPARK_DIR", str(project_dir / "target" / "spark"))
        patch.chdir(project_dir)
        try:
            result = dbtRunner().invoke(arguments)
            if result.exception is not None:
                raise AssertionError(f"dbt build --target spark failed: {result.exception}")
            spark = SparkSession.builder.getOrCreate()
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
        finally:
            exit_code = stop_spark()
    return {
        "project_dir": project_dir,
        "tables": tables,
        "served": served,
        "streamed": streamed,
        "same_session": same_session,
        "jvm_exit_code": exit_code,
    }


@pytest.fixture(scope="module")
def duckdb_reference(built_project: Path) -> dict[str, tuple[list[str], list[tuple]]]:
    return duckdb_tables(built_project)


def test_spark_builds_every_model_data_test_and_unit_test(spark_build: dict[str, Any]) -> None:
    counts = assert_everything_built(spark_build["project_dir"])
    assert counts == {"model": 17, "test": 35, "unit_test": 12}  # product_popularity v1 and v2


def test_the_jvm_is_gone_after_the_build(spark_build: dict[str, Any]) -> None:
    assert spark_build["jvm_exit_code"] is not None


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
