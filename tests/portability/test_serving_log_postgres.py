"""The serving log's table on PostgreSQL, through the engine seam: created on the first
flush, appended in a transaction, and a repeated batch (a flush that crashed after its
commit) writes nothing twice. Skipped only when no PostgreSQL answers on 127.0.0.1:5432."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import orjson

from postgres_databases import fresh_database
from serving.dbt_target import read_manifest_json
from serving.engines import postgres
from serving.monitoring.serving_log import BATCH_PLACEHOLDER, BATCH_TABLE, decode
from serving.rendering import Renderer

RELATION = '"public"."feature_store_serving_log"'


def _entries() -> list[tuple[bytes, dict[bytes, bytes]]]:
    request = {
        "t": 1_767_225_600_000_000,
        "s": "python",
        "k": {"user_id": [7, 8]},
        "v": [["user_features", 3, "2026-01-01T00:00:00", ["2025-12-31T00:00:00", None],
               [["total_purchases", [5, None]], ["avg_purchase_amount", [2.5, None]]], "pm"]],
    }
    return [(b"1767225600000-0", {b"r": orjson.dumps(request)})]


def test_flush_batches_land_once_with_their_types(postgres_parsed_project: Path) -> None:
    renderer = Renderer(postgres_parsed_project, read_manifest_json(postgres_parsed_project)[1], "postgres", cache=False)
    create = renderer.call("serving_log_create_sql", RELATION)
    insert = renderer.call("serving_log_insert_sql", RELATION, BATCH_PLACEHOLDER).replace(BATCH_PLACEHOLDER, BATCH_TABLE)
    key = renderer.call("json_text_value", "entity_key", "user_id")
    table = decode(_entries(), lambda view: ["user_id"], dt.datetime(2026, 1, 2))
    with fresh_database("fs_serving_log") as database:
        engine = postgres.from_parameters({"host": "127.0.0.1", "port": 5432, "user": "postgres", "password": None, "dbname": database})
        for _ in range(2):  # the second time: the same entries again, as after a crash before XDEL
            with engine.write_session() as session:
                session.execute(create)
                session.upload(table, BATCH_TABLE)
                session.execute(insert)
        with engine.session() as session:
            rows = session.query(
                f"select request_id, row_index, {key} as user_id, feature_ref, status, value_number, event_at, snapshot_as_of "
                f"from {RELATION} order by feature_ref, row_index"
            ).to_pylist()
    assert [(r["feature_ref"], r["user_id"], r["status"], r["value_number"]) for r in rows] == [
        ("user_features:avg_purchase_amount", "7", "present", 2.5),
        ("user_features:avg_purchase_amount", "8", "missing", None),
        ("user_features:total_purchases", "7", "present", 5.0),
        ("user_features:total_purchases", "8", "missing", None),
    ]
    assert {r["request_id"] for r in rows} == {"1767225600000-0"}
    assert rows[0]["event_at"] == dt.datetime(2025, 12, 31) and rows[1]["event_at"] is None
    assert rows[0]["snapshot_as_of"] == dt.datetime(2026, 1, 1)
    assert json.loads(table.column("entity_key")[0].as_py()) == {"user_id": 7}
