"""Spark: the profile's session (`method: session`, in this process) or Spark Connect
(`spark.remote` among its server_side_parameters). The session lives as long as the
process, as dbt-spark's does: starting one costs seconds."""

from __future__ import annotations

import threading
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa

from serving.engines import DEFAULT_BATCH_ROWS, Frame, as_arrow, column_not_built, not_built, query_failed
from serving.errors import OfflineStoreError

name = "spark"
_LOCK = threading.Lock()


class SparkSessionWrapper:
    def __init__(self, spark: Any, where: str) -> None:
        self._spark = spark
        self._where = where
        self._views: list[str] = []

    @property
    def spark(self) -> Any:
        """The SparkSession this unit of work runs on."""
        return self._spark

    def upload(self, frame: Frame, name: str) -> str:
        # Temporary views are shared by every user of one SparkSession: a unique name
        # keeps concurrent calls apart. Spark 4 takes the Arrow table as is; a timestamp,
        # zoned or naive, becomes TIMESTAMP (naive ones read in the session's time zone,
        # UTC: the same instant) unless spark.sql.timestampType is TIMESTAMP_NTZ.
        unique = f"{name}_{uuid.uuid4().hex[:12]}"
        with _errors(self._where):
            self._spark.createDataFrame(as_arrow(frame)).createOrReplaceTempView(unique)
        self._views.append(unique)
        return f"`{unique}`"

    def query(self, sql: str) -> pa.Table:
        with _errors(self._where):
            return self._spark.sql(sql).toArrow()

    def stream(self, sql: str, batch_rows: int = DEFAULT_BATCH_ROWS) -> Iterator[pa.RecordBatch]:
        with _errors(self._where):
            frame = self._spark.sql(sql)
            # Planned, not run: the result's Arrow schema (the batches come without one).
            schema = frame.limit(0).toArrow().schema
            pending: list[pa.RecordBatch] = []
            held = 0
            for batch in _arrow_batches(frame, schema):
                pending.append(batch)
                held += batch.num_rows
                while held >= batch_rows:
                    table = pa.Table.from_batches(pending, schema)
                    yield from table.slice(0, batch_rows).combine_chunks().to_batches()
                    rest = table.slice(batch_rows)
                    pending, held = rest.to_batches(), rest.num_rows
            if held:
                yield from pa.Table.from_batches(pending, schema).combine_chunks().to_batches()

    def execute(self, sql: str) -> None:
        with _errors(self._where):
            self._spark.sql(sql)

    def close(self) -> None:
        for view in self._views:
            self._spark.catalog.dropTempView(view)


def _arrow_batches(frame: Any, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    """The result as Arrow record batches, one partition at a time: the driver's JVM holds
    one partition, this process one batch (spark.sql.execution.arrow.maxRecordsPerBatch
    rows). Classic pyspark has no public API for this, so this uses the one toArrow and
    toLocalIterator are built on (pinned: pyspark 4.x); Spark Connect streams batches
    through its client."""
    if hasattr(frame, "_jdf"):
        from pyspark.core.rdd import _local_iterator_from_socket
        from pyspark.serializers import NoOpSerializer

        jvm = frame.sparkSession.sparkContext._jvm
        served = jvm.PythonRDD.toLocalIteratorAndServe(frame._jdf.toArrowBatchRdd(), False)
        for message in _local_iterator_from_socket(served, NoOpSerializer()):
            yield pa.ipc.read_record_batch(pa.py_buffer(message), schema)
        return
    client = frame.sparkSession.client
    for part in client.to_table_as_iterator(frame._plan.to_proto(client), frame._plan.observations):
        if isinstance(part, pa.Table):
            yield from part.cast(schema).to_batches()


class SparkEngine:
    name = name

    def __init__(self, conf: dict[str, str], schema: str) -> None:
        self.conf = conf
        self.schema = schema
        self._spark: Any = None

    def describe(self) -> str:
        remote = self.conf.get("spark.remote")
        return f"Spark Connect {remote}" if remote else f"Spark session ({self.conf.get('spark.master', 'local[*]')})"

    def _session(self) -> Any:
        with _LOCK:
            if self._spark is None:
                try:
                    from pyspark.sql import SparkSession
                except ImportError as error:
                    raise OfflineStoreError("the spark target needs pyspark: pip install 'sql-feature-store[spark]'") from error
                # The process's own session when it has one (dbt-spark's `method: session`
                # started it, or the application did): a second JVM is never started.
                active = SparkSession.getActiveSession()
                if active is not None:
                    self._spark = active
                    self._spark.conf.set("spark.sql.session.timeZone", "UTC")
                    return self._spark
                builder = SparkSession.builder.appName("feature_store")
                remote = self.conf.get("spark.remote")
                if remote:
                    builder = builder.remote(remote)
                else:
                    builder = builder.enableHiveSupport()
                for key, value in self.conf.items():
                    if key != "spark.remote":
                        builder = builder.config(key, value)
                with _errors(self.describe()):
                    self._spark = builder.getOrCreate()
                    self._spark.conf.set("spark.sql.session.timeZone", "UTC")
        return self._spark

    @contextmanager
    def session(self) -> Iterator[SparkSessionWrapper]:
        wrapper = SparkSessionWrapper(self._session(), self.describe())
        try:
            yield wrapper
        finally:
            wrapper.close()

    @contextmanager
    def write_session(self) -> Iterator[SparkSessionWrapper]:
        """Spark has no transactions: each statement commits its files on its own, so
        writers must make a repeated statement harmless (the serving log inserts only
        request ids it does not hold yet)."""
        with self.session() as wrapper:
            yield wrapper


@contextmanager
def _errors(where: str) -> Iterator[None]:
    from pyspark.errors import PySparkException

    try:
        yield
    except PySparkException as error:
        if "TABLE_OR_VIEW_NOT_FOUND" in str(error):
            raise not_built(error, where) from error
        if "UNRESOLVED_COLUMN" in str(error):
            raise column_not_built(error, where) from error
        raise query_failed(error, where) from error


def parameters(target: Any, project_dir: Path) -> dict[str, Any]:
    c = target.credentials
    conf = {str(k): str(v) for k, v in (getattr(c, "server_side_parameters", None) or {}).items()}
    # Relative warehouse and metastore paths are relative to the project, as for dbt.
    for key in ("spark.sql.warehouse.dir",):
        if key in conf and not Path(conf[key]).is_absolute() and "://" not in conf[key]:
            conf[key] = str(project_dir / conf[key])
    secret = any(word in key.lower() for key in conf for word in ("password", "secret", "token"))
    return {"conf": conf, "schema": c.schema, "conf_secrets": secret}


def from_parameters(parameters: dict[str, Any]) -> SparkEngine:
    return SparkEngine(parameters["conf"], parameters["schema"])
