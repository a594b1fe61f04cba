"""The HTTP feature server, run as `featurestore serve` and called over real HTTP against a real Redis."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from http_server import request, served
from online_checks import drop_prefix
from serving.embedded_redis import free_port
from serving.http import MAX_BODY_BYTES, feast_response, json_bytes
from serving.online.read import OnlineResponse
from serving.store import FeatureStore

AS_OF = dt.datetime(2026, 2, 10, 12)
UTC = dt.timezone.utc
WINDOWS = "user_purchase_windows"


@pytest.fixture(scope="module")
def module_prefix(redis_url: str) -> Iterator[str]:
    name = f"fstest-http-{uuid.uuid4().hex[:12]}"
    yield name
    drop_prefix(redis_url, name)


@pytest.fixture(scope="module")
def exported(built_project: Path, redis_url: str, module_prefix: str) -> FeatureStore:
    store = FeatureStore(built_project, redis_url=redis_url, redis_prefix=module_prefix)
    store.materialize(as_of=AS_OF, progress=False)
    return store


@pytest.fixture(scope="module")
def server(exported: FeatureStore, built_project: Path, redis_url: str, module_prefix: str) -> Iterator[str]:
    with served(built_project, redis_url, module_prefix) as base:
        yield base


def snapshot_rows(store: FeatureStore, view: str) -> list[dict[str, Any]]:
    return [row for row in store.offline.snapshot(store.get_feature_view(view), AS_OF).to_pylist()]


def instant(text: str | None) -> dt.datetime | None:
    return None if text is None else dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def same_instant(stamp: dt.datetime | None) -> dt.datetime | None:
    return None if stamp is None else stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp


def assert_matches_python_client(answer: dict[str, Any], store: FeatureStore, features: list[str], rows: list[dict[str, Any]], full: bool = False) -> None:
    expected = store.get_online_features(features, rows, full_feature_names=full)
    assert answer["metadata"]["feature_names"] == list(expected.columns)
    assert len(answer["results"]) == len(expected.columns)
    for name, result in zip(expected.columns, answer["results"]):
        assert result["values"] == expected.columns[name], name
        if name in expected.statuses:
            assert result["statuses"] == expected.statuses[name], name
            assert [instant(text) for text in result["event_timestamps"]] == [same_instant(s) for s in expected.event_timestamps[name]], name
            assert all(text is None or text.endswith("Z") for text in result["event_timestamps"])


def test_values_statuses_and_timestamps_equal_the_python_client_in_feasts_shape(server: str, exported: FeatureStore) -> None:
    windows = snapshot_rows(exported, WINDOWS)
    with_null = next(r for r in windows if r["event_timestamp"] is not None and r["stddev_amount_30d"] is None)
    fresh = next(r for r in windows if r["event_timestamp"] is not None and r["stddev_amount_30d"] is not None)
    stale = next(r for r in snapshot_rows(exported, "user_features") if r["event_timestamp"] is None)
    users = [fresh["user_id"], with_null["user_id"], 10**9, stale["user_id"]]
    features = [f"{WINDOWS}:stddev_amount_30d", f"{WINDOWS}:spend_7d", "user_features:total_purchases"]

    status, headers, answer = request(server, "POST", "/get-online-features", {"features": features, "entities": {"user_id": users}})

    assert status == 200 and headers["content-type"] == "application/json"
    # Features come view by view (in order of first reference), each view's in its declared column order.
    assert answer["metadata"]["feature_names"] == ["user_id", "spend_7d", "stddev_amount_30d", "total_purchases"]
    key, spend, stddev, total = answer["results"]
    # Entity columns come first, as in Feast: the keys echoed, present, at the epoch.
    assert key == {"values": users, "statuses": ["present"] * 4, "event_timestamps": ["1970-01-01T00:00:00Z"] * 4}
    assert stddev["statuses"][:3] == ["present", "null", "missing"]
    assert stddev["values"][:3] == [fresh["stddev_amount_30d"], None, None]
    assert instant(stddev["event_timestamps"][0]) == fresh["event_timestamp"].replace(tzinfo=UTC)
    assert stddev["event_timestamps"][2] is None
    assert spend["values"][0] == fresh["spend_7d"]
    assert total["statuses"][3] == "outside_ttl" and total["values"][3] is None and total["event_timestamps"][3] is None
    assert_matches_python_client(answer, exported, features, [{"user_id": user} for user in users])


def test_full_feature_names_and_composite_keys(server: str, exported: FeatureStore) -> None:
    pair = next(r for r in snapshot_rows(exported, "user_category_windows") if r["event_timestamp"] is not None)
    features = ["user_category_windows:category_spend_30d", "user_features:total_purchases"]
    entities = {"category": [pair["category"], "no-such-category"], "user_id": [pair["user_id"], pair["user_id"]]}

    status, _, answer = request(server, "POST", "/get-online-features", {"features": features, "entities": entities, "full_feature_names": True})

    assert status == 200
    assert answer["metadata"]["feature_names"] == ["user_id", "category", "user_category_windows__category_spend_30d", "user_features__total_purchases"]
    assert answer["results"][2]["values"][0] == pair["category_spend_30d"]
    assert answer["results"][2]["statuses"] == ["present", "missing"]
    rows = [{"user_id": user, "category": category} for user, category in zip(entities["user_id"], entities["category"])]
    assert_matches_python_client(answer, exported, features, rows, full=True)


def test_a_feature_service_in_feasts_request_reads_its_pinned_features(server: str, exported: FeatureStore) -> None:
    service = exported.registry.service("purchase_propensity")
    entities = {"user_id": [3, 4], "product_id": [5, 99999]}

    status, _, answer = request(server, "POST", "/get-online-features", {"feature_service": service.name, "entities": entities})

    assert status == 200
    assert answer["metadata"]["feature_names"][:3] == ["user_id", "product_id", "total_purchases"]
    assert "product_purchases_1d" in answer["metadata"]["feature_names"]  # pinned to product_popularity.v1
    rows = [{"user_id": user, "product_id": product} for user, product in zip(entities["user_id"], entities["product_id"])]
    assert_matches_python_client(answer, exported, list(service.features), rows)


def test_a_hundred_entities_and_a_whole_view_match_the_python_client(server: str, exported: FeatureStore) -> None:
    users = sorted({row["user_id"] for row in snapshot_rows(exported, WINDOWS)})[:100]
    features = [f"{WINDOWS}:*", "user_last_purchase:last_amount", "user_last_purchase:hour_of_day_sin"]

    status, _, answer = request(server, "POST", "/get-online-features", {"features": features, "entities": {"user_id": users}})

    assert status == 200 and len(answer["results"]) == 1 + 11 + 2
    assert all(len(result["values"]) == 100 for result in answer["results"])
    assert_matches_python_client(answer, exported, features, [{"user_id": user} for user in users])


def test_no_entities_gives_empty_columns(server: str) -> None:
    status, _, answer = request(server, "POST", "/get-online-features", {"features": ["user_features:total_purchases"], "entities": {"user_id": []}})

    assert status == 200
    assert answer == {
        "metadata": {"feature_names": ["user_id", "total_purchases"]},
        "results": [{"values": [], "statuses": [], "event_timestamps": []}] * 2,
    }


GOOD_FEATURES = ["user_features:total_purchases"]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"{not json", 400, "request body is not valid JSON"),
        (b"", 400, "request body is not valid JSON"),
        (b"[1, 2]", 400, "request body must be a JSON object with features, entities, full_feature_names; got a list"),
        ({"entities": {"user_id": [1]}}, 400, '"features" must be a non-empty list of "view:feature" strings; got null'),
        ({"features": "user_features:total_purchases", "entities": {"user_id": [1]}}, 400, '"features" must be a non-empty list'),
        ({"features": [], "entities": {"user_id": [1]}}, 400, '"features" must be a non-empty list'),
        ({"features": [3], "entities": {"user_id": [1]}}, 400, '"features" must be a non-empty list'),
        ({"features": GOOD_FEATURES}, 400, '"entities" must map each entity key column to a list of values'),
        ({"features": GOOD_FEATURES, "entities": {}}, 400, '"entities" must map each entity key column'),
        ({"features": GOOD_FEATURES, "entities": {"user_id": 5}}, 400, 'entities["user_id"] must be a list of values; got 5'),
        ({"features": GOOD_FEATURES, "entities": {"user_id": [1, 2], "category": ["a"]}}, 400, "entity key lists differ in length: user_id has 2, category has 1"),
        ({"features": GOOD_FEATURES, "entities": {"user_id": [1.5]}}, 400, 'entities["user_id"][0] = 1.5: an entity key value must be a string or a 64-bit integer'),
        ({"features": GOOD_FEATURES, "entities": {"user_id": [True]}}, 400, 'entities["user_id"][0] = true'),
        ({"features": GOOD_FEATURES, "entities": {"user_id": [None]}}, 400, 'entities["user_id"][0] = null'),
        ({"features": GOOD_FEATURES, "entities": {"user_id": [2**70]}}, 400, "a string or a 64-bit integer"),
        ({"features": GOOD_FEATURES, "entities": {"user_id": [1]}, "full_feature_names": "yes"}, 400, '"full_feature_names" must be true or false; got "yes"'),
        ({"feature": GOOD_FEATURES, "entities": {"user_id": [1]}}, 400, "unknown field(s) 'feature'; valid fields: features, entities"),
        ({"feature_service": "svc", "entities": {"user_id": [1]}}, 404, "feature service 'svc' does not exist; feature services (ML exposures with meta.feature_store): purchase_propensity"),
        ({"feature_service": "purchase_propensity", "features": GOOD_FEATURES, "entities": {"user_id": [1]}}, 400, 'give either "features" or "feature_service", not both'),
        ({"features": ["nope:x"], "entities": {"user_id": [1]}}, 404, "feature view 'nope' does not exist; feature views: product_popularity"),
        ({"features": ["user_features:spend"], "entities": {"user_id": [1]}}, 404, "feature 'spend' is not in feature view 'user_features'; its features: total_purchases"),
        ({"features": ["user_features"], "entities": {"user_id": [1]}}, 404, "feature reference 'user_features' is not of the form view:feature"),
        ({"features": GOOD_FEATURES, "entities": {"customer": [1]}}, 400, "missing entity key(s) user_id; unexpected key(s) customer"),
        ({"features": GOOD_FEATURES, "entities": {"user_id": ["7"]}}, 400, "entity row 0: user_id='7' is a str; user_id needs an integer (int, numpy integer or pandas Int64; not bool, float or str)"),
    ],
)
def test_a_bad_request_gets_a_4xx_json_error_naming_the_problem(server: str, body: Any, status: int, message: str) -> None:
    raw = body if isinstance(body, bytes) else None
    got_status, headers, answer = request(server, "POST", "/get-online-features", None if raw is not None else body, raw=raw)

    assert got_status == status, answer
    assert headers["content-type"] == "application/json"
    assert list(answer) == ["error"]
    assert message in answer["error"]


def test_wrong_method_unknown_path_and_oversized_body_get_json_errors(server: str) -> None:
    status, _, answer = request(server, "GET", "/get-online-features")
    assert status == 405 and "GET /get-online-features" in answer["error"]
    status, _, answer = request(server, "GET", "/nope")
    assert status == 404 and answer["error"] == "no endpoint /nope; endpoints: /get-online-features, /health, /feature-views, /metrics"
    status, _, answer = request(server, "POST", "/get-online-features", raw=b" " * (MAX_BODY_BYTES + 1))
    assert status == 413 and f"over the limit of {MAX_BODY_BYTES} bytes" in answer["error"]


def test_concurrent_clients_each_get_their_own_answer(server: str, exported: FeatureStore) -> None:
    users = sorted({row["user_id"] for row in snapshot_rows(exported, WINDOWS)})
    features = [f"{WINDOWS}:spend_30d", "user_features:total_purchases"]
    failures: list[str] = []

    def client(offset: int) -> None:
        for attempt in range(15):
            chosen = users[offset + attempt : offset + attempt + 7]
            status, _, answer = request(server, "POST", "/get-online-features", {"features": features, "entities": {"user_id": chosen}})
            expected = exported.get_online_features(features, [{"user_id": user} for user in chosen])
            if status != 200 or [result["values"] for result in answer["results"]] != list(expected.columns.values()):
                failures.append(f"client {offset} attempt {attempt}: {status} {answer}")

    threads = [threading.Thread(target=client, args=(offset * 20,)) for offset in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_health_reports_redis_and_the_manifest(server: str, exported: FeatureStore) -> None:
    status, _, answer = request(server, "GET", "/health")

    views = exported.list_feature_views()
    assert status == 200
    assert answer == {
        "status": "ok",
        "redis": {"reachable": True},
        "manifest": {"loaded": True, "feature_views": len(views), "online_feature_views": sum(view.online for view in views)},
    }


def test_feature_views_lists_every_view_with_its_features(server: str, exported: FeatureStore) -> None:
    status, _, answer = request(server, "GET", "/feature-views")

    assert status == 200
    listed = {view["name"]: view for view in answer["feature_views"]}
    assert list(listed) == [view.name for view in exported.list_feature_views()]
    user_features = listed["user_features"]
    assert user_features["entity"] == ["user_id"] and user_features["entity_types"] == {"user_id": "bigint"}
    assert (user_features["ttl"], user_features["ttl_seconds"], user_features["online"]) == ("1 day", 86400, True)
    assert [(f["name"], f["type"]) for f in user_features["features"]] == [
        (f.name, f.data_type) for f in exported.get_feature_view("user_features").features
    ]
    assert all(f["description"] for f in user_features["features"])
    assert listed["user_category_windows"]["entity"] == ["user_id", "category"]


def test_feature_views_lists_on_demand_views_apart_with_their_request_fields(server: str) -> None:
    status, _, answer = request(server, "GET", "/feature-views")

    assert status == 200
    assert "purchase_request_features" not in {view["name"] for view in answer["feature_views"]}
    assert answer["on_demand_feature_views"] == [
        {
            "name": "purchase_request_features",
            "description": "The purchase being scored, compared with the user's last 30 days.",
            "sources": ["user_purchase_windows:avg_amount_30d", "user_purchase_windows:max_amount_30d"],
            "request_fields": [{"name": "amount", "type": "double"}],
            "features": [
                {
                    "name": "amount_vs_avg_30d",
                    "type": "double",
                    "description": "The purchase's amount over the user's 30-day average amount; NULL without purchases in 30 days.",
                },
                {
                    "name": "exceeds_max_30d",
                    "type": "boolean",
                    "description": "Whether the purchase is larger than any of the user's last 30 days (true without purchases in 30 days).",
                },
            ],
        }
    ]


def metric_samples(base: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, headers, text = request(base, "GET", "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_count_requests_errors_and_latency(server: str) -> None:
    ok = ("featurestore_http_requests_total", (("method", "POST"), ("route", "/get-online-features"), ("status", "200")))
    bad = ("featurestore_http_requests_total", (("method", "POST"), ("route", "/get-online-features"), ("status", "404")))
    error = ("featurestore_http_errors_total", (("error", "UnknownFeatureError"), ("route", "/get-online-features")))
    latency = ("featurestore_http_request_duration_seconds_count", (("route", "/get-online-features"),))
    before = metric_samples(server)

    for _ in range(3):
        request(server, "POST", "/get-online-features", {"features": GOOD_FEATURES, "entities": {"user_id": [1]}})
    request(server, "POST", "/get-online-features", {"features": ["user_features:nope"], "entities": {"user_id": [1]}})

    after = metric_samples(server)
    assert after[ok] - before.get(ok, 0) == 3
    assert after[bad] - before.get(bad, 0) == 1
    assert after[error] - before.get(error, 0) == 1
    assert after[latency] - before.get(latency, 0) == 4


def test_metrics_show_each_views_snapshot_as_of_age_entities_and_version(server: str, exported: FeatureStore) -> None:
    samples = metric_samples(server)
    statuses = {status.view: status for status in exported.online_status()}
    for view in ("user_features", "user_purchase_windows"):
        label = (("view", view),)
        assert samples[("featurestore_snapshot_as_of_seconds", label)] == AS_OF.replace(tzinfo=UTC).timestamp()
        assert samples[("featurestore_snapshot_entities", label)] == statuses[view].entities > 0
        assert samples[("featurestore_snapshot_version", label)] == statuses[view].version
        age = samples[("featurestore_snapshot_age_seconds", label)]
        assert abs(age - (dt.datetime.now(UTC) - AS_OF.replace(tzinfo=UTC)).total_seconds()) < 60


def test_with_redis_down_health_and_reads_answer_503_naming_the_server(exported: FeatureStore, built_project: Path, module_prefix: str) -> None:
    closed = f"redis://127.0.0.1:{free_port()}/0"
    with served(built_project, closed, module_prefix) as base:
        status, _, health = request(base, "GET", "/health")
        read_status, _, read = request(base, "POST", "/get-online-features", {"features": GOOD_FEATURES, "entities": {"user_id": [1]}})
        views_status, _, _ = request(base, "GET", "/feature-views")

    assert status == 503 and health["status"] == "unavailable" and health["redis"]["reachable"] is False
    assert closed.removesuffix("/0") in health["redis"]["error"]
    assert read_status == 503 and read["error"].startswith(f"cannot reach Redis at {closed}")
    assert views_status == 200


def test_serve_on_a_taken_port_exits_1_with_one_line(server: str, built_project: Path, redis_url: str, module_prefix: str) -> None:
    port = server.rpartition(":")[2]
    env = {**os.environ, "REDIS_URL": redis_url, "FEATURE_STORE_REDIS_PREFIX": module_prefix}

    done = subprocess.run(
        [sys.executable, "-m", "serving", "--project-dir", str(built_project), "serve", "--port", port],
        capture_output=True, text=True, env=env, timeout=60,
    )

    assert done.returncode == 1
    assert done.stderr == f"error: cannot listen on 127.0.0.1:{port}: Address already in use; choose another --host or --port\n"


def test_a_view_never_materialized_answers_503_saying_so(built_project: Path, redis_url: str) -> None:
    empty = f"fstest-http-empty-{uuid.uuid4().hex[:8]}"  # nothing is ever written under it
    with served(built_project, redis_url, empty) as base:
        health_status, _, _ = request(base, "GET", "/health")
        status, _, answer = request(base, "POST", "/get-online-features", {"features": GOOD_FEATURES, "entities": {"user_id": [1]}})

    assert health_status == 200
    assert status == 503
    assert answer["error"].startswith(f"feature view 'user_features' has no online snapshot under prefix '{empty}'")
    assert "run materialize first" in answer["error"]


def test_two_workers_serve_and_add_up_their_metrics(exported: FeatureStore, built_project: Path, redis_url: str, module_prefix: str) -> None:
    users = sorted({row["user_id"] for row in snapshot_rows(exported, WINDOWS)})[:5]
    body = {"features": [f"{WINDOWS}:spend_30d"], "entities": {"user_id": users}}
    expected = exported.get_online_features(body["features"], [{"user_id": user} for user in users]).columns["spend_30d"]
    with served(built_project, redis_url, module_prefix, "--workers", "2") as base:
        answers = [request(base, "POST", "/get-online-features", body) for _ in range(20)]
        samples = metric_samples(base)

    assert all(status == 200 and answer["results"][1]["values"] == expected for status, _, answer in answers)
    ok = ("featurestore_http_requests_total", (("method", "POST"), ("route", "/get-online-features"), ("status", "200")))
    assert samples[ok] == 20


def test_values_become_strict_json_in_feasts_shape() -> None:
    """NaN and infinities as proto3 JSON strings, decimals as strings, times as ISO 8601 (naive = UTC)."""
    values = [float("nan"), float("inf"), float("-inf"), -0.0, 1.5, None]
    others = [Decimal("1.10"), dt.date(2026, 1, 2), dt.datetime(2026, 1, 2, 3, 4, 5, 6),
              dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.timezone(dt.timedelta(hours=2))), dt.timedelta(seconds=90), b"\x00\xff"]
    stamps = [dt.datetime(2026, 1, 2, 3, 4, 5), None, dt.datetime(2026, 1, 2, tzinfo=UTC), None, None, None]
    response = OnlineResponse(
        {"k": [1, 2, 3, 4, 5, 6], "f": values, "g": others, "h": [[float("nan"), 2.0]] * 6},
        {name: ["present"] * 6 for name in "fgh"},
        {name: stamps for name in "fgh"},
    )

    text = json_bytes(feast_response(response)).decode()

    def refuse(token: str) -> None:
        raise AssertionError(f"{token} is not strict JSON")

    stamps_text = ["2026-01-02T03:04:05Z", None, "2026-01-02T00:00:00Z", None, None, None]
    present = ["present"] * 6
    assert json.loads(text, parse_constant=refuse) == {
        "metadata": {"feature_names": ["k", "f", "g", "h"]},
        "results": [
            {"values": [1, 2, 3, 4, 5, 6], "statuses": present, "event_timestamps": ["1970-01-01T00:00:00Z"] * 6},
            {"values": ["NaN", "Infinity", "-Infinity", -0.0, 1.5, None], "statuses": present, "event_timestamps": stamps_text},
            {"values": ["1.10", "2026-01-02", "2026-01-02T03:04:05.000006Z", "2026-01-02T03:04:00+02:00", 90.0, "AP8="], "statuses": present, "event_timestamps": stamps_text},
            {"values": [["NaN", 2.0]] * 6, "statuses": present, "event_timestamps": stamps_text},
        ],
    }
    assert '"values":["NaN","Infinity","-Infinity",-0.0,1.5,null]' in text
    assert json_bytes({"big": 2**70, "when": dt.datetime(2026, 1, 2)}) == b'{"big":1180591620717411303424,"when":"2026-01-02T00:00:00Z"}'
