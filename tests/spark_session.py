"""One Spark session for the whole pytest run: starting the JVM costs ~20 s, so every Spark
test (the macro tests on Spark, `dbt build --target spark`, serving from that build)
shares the one the first of them starts, and it is stopped when the run ends.

It is started the way the project's `spark` profile target starts it (its
server_side_parameters: local[*], UTC, Hive support with a Derby metastore), with its
warehouse and metastore under the run's temporary directory. dbt-spark's `method:
session` and FeatureStore(target="spark") both find it as the process's active session.

The fixture `spark` is registered for every test by tests/conftest.py; it skips the test
when pyspark or `java` is missing (.ci/run requires both)."""

from __future__ import annotations

import os
import shutil
from typing import Any, Iterator

import pytest

from project_copies import ROOT


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


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The run's SparkSession, started from the project's `spark` profile target."""
    pytest.importorskip("pyspark")
    pytest.importorskip("dbt.adapters.spark")
    if shutil.which("java") is None:
        pytest.skip("no java on PATH: Spark needs Java 17")
    from serving.dbt_target import load_target
    from serving.engines.spark import SparkEngine, parameters

    directory = tmp_path_factory.mktemp("spark_session")
    saved = os.environ.get("FEATURE_STORE_SPARK_DIR")
    os.environ["FEATURE_STORE_SPARK_DIR"] = str(directory)
    try:
        conf = parameters(load_target(ROOT, "spark"), ROOT)["conf"]
    finally:
        if saved is None:
            os.environ.pop("FEATURE_STORE_SPARK_DIR")
        else:
            os.environ["FEATURE_STORE_SPARK_DIR"] = saved
    with SparkEngine(conf, "default").session() as session:
        spark = session.spark
    spark.sparkContext.setLogLevel("ERROR")
    yield spark
    stop_spark()
