"""The engine seam: each verb (upload, query, stream) on a real DuckDB file and a real
PostgreSQL, with connection details read from the dbt profile."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Iterator

import duckdb
import pandas as pd
import pyarrow as pa
import pytest

from serving.dbt_target import load_target
from serving.engines import open_engine
from serving.errors import OfflineStoreError

UTC = dt.timezone.utc
FRAME = pd.DataFrame(
    {
        "user_id": pd.array([1, 2, None, 4], dtype="Int64"),
        "name": ["a", None, "c", "d"],
        "score": [0.5, float("nan"), -1.25, 1e300],
        "at": pd.to_datetime(["2026-01-01 00:00:00", "2026-01-02 12:30:00.000001", None, "2026-03-01"], format="mixed"),
        "at_utc": pd.to_datetime(["2026-01-01 02:00:00+02:00", None, "2026-01-03T00:00:00Z", "2026-03-01T00:00:00Z"], utc=True, format="mixed"),
    }
)


def assert_round_trip(table: pa.Table) -> None:
    """FRAME as it comes back: keys, NULLs, exact floats, microseconds, UTC instants."""
    assert table.schema.field("user_id").type == pa.int64()
    assert table.schema.field("at").type == pa.timestamp("us")
    assert pa.types.is_timestamp(table.schema.field("at_utc").type) and table.schema.field("at_utc").type.tz is not None
    rows = table.to_pylist()
    assert [row["user_id"] for row in rows] == [1, 2, None, 4]
    assert [row["name"] for row in rows] == ["a", None, "c", "d"]
    assert rows[3]["score"] == 1e300 and rows[2]["score"] == -1.25 and rows[1]["score"] is None
    assert rows[1]["at"] == dt.datetime(2026, 1, 2, 12, 30, 0, 1) and rows[2]["at"] is None
    assert rows[0]["at_utc"] == dt.datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def duckdb_engine(parsed_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The profile's DuckDB target, pointed at a file of this test's own."""
    path = tmp_path / "engine_test.duckdb"
    with duckdb.connect(str(path)) as connection:
        connection.execute("create table events as select range as id, range * 10 as value from range(1000)")
    monkeypatch.setenv("FEATURE_STORE_DUCKDB", str(path))
    return open_engine(load_target(parsed_project, "duckdb"), parsed_project)


def test_duckdb_engine_reads_the_profiles_file(duckdb_engine, tmp_path: Path) -> None:
    assert duckdb_engine.path == tmp_path / "engine_test.duckdb"
    assert duckdb_engine.describe() == f"DuckDB file {tmp_path / 'engine_test.duckdb'}"


def test_duckdb_upload_then_query_round_trips_every_type(duckdb_engine) -> None:
    with duckdb_engine.session() as session:
        relation = session.upload(FRAME, "__fs_test_frame")
        table = session.query(f"select * from {relation}")
    assert relation == '"__fs_test_frame"'
    assert_round_trip(table)


def test_duckdb_upload_joins_the_warehouse_tables(duckdb_engine) -> None:
    with duckdb_engine.session() as session:
        relation = session.upload(pa.table({"id": [3, 999, 5000]}), "__fs_keys")
        table = session.query(f"select k.id, e.value from {relation} k left join events e using (id) order by k.id")
    assert table.to_pylist() == [{"id": 3, "value": 30}, {"id": 999, "value": 9990}, {"id": 5000, "value": None}]


def test_duckdb_stream_yields_bounded_batches_of_every_row(duckdb_engine) -> None:
    with duckdb_engine.session() as session:
        batches = list(session.stream("select id, value from events order by id", batch_rows=128))
    assert max(batch.num_rows for batch in batches) <= 128 and len(batches) >= 8
    assert [row["id"] for batch in batches for row in batch.to_pylist()] == list(range(1000))


def test_duckdb_missing_relation_is_an_offline_store_error_naming_the_file(duckdb_engine) -> None:
    with pytest.raises(OfflineStoreError, match=r"no_such_view.*engine_test\.duckdb; has `dbt build` built every feature view"):
        with duckdb_engine.session() as session:
            session.query("select * from no_such_view")


def test_duckdb_missing_file_says_to_build(parsed_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEATURE_STORE_DUCKDB", str(tmp_path / "nowhere.duckdb"))
    engine = open_engine(load_target(parsed_project, "duckdb"), parsed_project)
    with pytest.raises(OfflineStoreError, match=r"no warehouse at .*nowhere\.duckdb; run `dbt build` first"):
        with engine.session():
            pass


# ---- PostgreSQL -------------------------------------------------------------------------


@pytest.fixture
def postgres_engine(postgres_parsed_project: Path) -> Iterator:
    psycopg = pytest.importorskip("psycopg")
    engine = open_engine(load_target(postgres_parsed_project, "postgres"), postgres_parsed_project)
    schema = f"fs_engine_{uuid.uuid4().hex[:8]}"
    try:
        admin = psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3", autocommit=True)
    except psycopg.OperationalError as error:
        pytest.skip(f"no PostgreSQL on 127.0.0.1:5432: {error}")
    admin.execute(f"create schema {schema}")
    admin.execute(f"create table {schema}.events as select i as id, i * 10 as value from generate_series(0, 999) as i")
    engine.test_schema = schema
    yield engine
    admin.execute(f"drop schema {schema} cascade")
    admin.close()


def test_postgres_engine_reads_the_profiles_connection(postgres_engine) -> None:
    assert postgres_engine.describe() == "PostgreSQL postgres@127.0.0.1:5432/postgres"


def test_postgres_upload_then_query_round_trips_every_type(postgres_engine) -> None:
    with postgres_engine.session() as session:
        relation = session.upload(FRAME, "__fs_test_frame")
        table = session.query(f"select * from {relation}")
    assert_round_trip(table)


def test_postgres_upload_joins_the_warehouse_tables(postgres_engine) -> None:
    schema = postgres_engine.test_schema
    with postgres_engine.session() as session:
        relation = session.upload(pa.table({"id": [3, 999, 5000]}), "__fs_keys")
        table = session.query(f"select k.id, e.value from {relation} k left join {schema}.events e using (id) order by k.id")
    assert table.to_pylist() == [{"id": 3, "value": 30}, {"id": 999, "value": 9990}, {"id": 5000, "value": None}]


def test_postgres_stream_yields_bounded_batches_of_every_row(postgres_engine) -> None:
    schema = postgres_engine.test_schema
    with postgres_engine.session() as session:
        batches = list(session.stream(f"select id, value from {schema}.events order by id", batch_rows=128))
    assert max(batch.num_rows for batch in batches) <= 128 and len(batches) == 8
    assert [row["id"] for batch in batches for row in batch.to_pylist()] == list(range(1000))


def test_postgres_missing_relation_is_an_offline_store_error(postgres_engine) -> None:
    with pytest.raises(OfflineStoreError, match=r'relation "no_such_view" does not exist in PostgreSQL postgres@127\.0\.0\.1:5432/postgres'):
        with postgres_engine.session() as session:
            session.query("select * from no_such_view")


def test_postgres_unreachable_server_names_it() -> None:
    pytest.importorskip("psycopg")
    from serving.engines.postgres import PostgresEngine

    engine = PostgresEngine({"host": "127.0.0.1", "port": 1, "user": "postgres", "dbname": "test", "connect_timeout": 2})
    with pytest.raises(OfflineStoreError, match=r"cannot connect to PostgreSQL postgres@127\.0\.0\.1:1/test"):
        with engine.session():
            pass


def test_connection_parameters_are_remembered_per_setting_never_with_a_password(
    parsed_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json
    import shutil

    from serving.engines import open_target_engine

    project = tmp_path / "project"
    shutil.copytree(parsed_project, project, ignore=shutil.ignore_patterns("feature_store_render"))
    monkeypatch.setenv("FEATURE_STORE_DUCKDB", str(tmp_path / "a.duckdb"))
    assert open_target_engine(project, None).path == tmp_path / "a.duckdb"
    saved = [json.loads(p.read_text()) for p in (project / "target" / "feature_store_render").glob("engine-*.json")]
    assert saved == [{"type": "duckdb", "parameters": {"path": str(tmp_path / "a.duckdb"), "settings": {"TimeZone": "UTC"}}}]
    # Another value of a variable the profile reads is another setting: read afresh.
    monkeypatch.setenv("FEATURE_STORE_DUCKDB", str(tmp_path / "b.duckdb"))
    assert open_target_engine(project, None).path == tmp_path / "b.duckdb"
