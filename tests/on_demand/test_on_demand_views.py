"""On-demand views: one SQL text, computed by the warehouse for training and by DuckDB in
process for serving, give equal values on random requests; missing and unknown request
fields are refused with one line naming them, from Python, the CLI and HTTP."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Iterator

import pandas as pd
import pytest

from http_server import request, served
from on_demand_views import FEATURES, VIEW, add_request_cases, offline_values, online_values, random_requests
from online.online_checks import drop_prefix
from serving.errors import EntityKeyError, InputError, UnknownFeatureError
from serving.store import FeatureStore

REDIS_URL = "redis://127.0.0.1:6379/13"
AS_OF = dt.datetime(2026, 2, 8, 6, 0)
EXAMPLE = ["purchase_request_features:amount_vs_avg_30d", "purchase_request_features:exceeds_max_30d"]


@pytest.fixture(scope="module")
def project(built_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built example project plus the test view request_cases (its sources are built)."""
    copy = tmp_path_factory.mktemp("on_demand") / "project"
    shutil.copytree(built_project, copy, ignore=shutil.ignore_patterns("logs"))
    add_request_cases(copy)
    return copy


@pytest.fixture(scope="module")
def store(project: Path) -> Iterator[FeatureStore]:
    store = FeatureStore(project, redis_url=REDIS_URL, redis_prefix=f"fs-on-demand-{uuid.uuid4().hex[:12]}")
    store.materialize(as_of=AS_OF, progress=False)
    yield store
    drop_prefix(store.redis_url, store.redis_prefix)


def test_the_registry_reads_on_demand_views_from_the_manifest(store: FeatureStore) -> None:
    view = store.registry.on_demand_views["purchase_request_features"]
    assert view.sources == (("user_purchase_windows", ("avg_amount_30d", "max_amount_30d")),)
    assert [(f.name, f.data_type) for f in view.request_fields] == [("amount", "double")]
    assert [(f.name, f.data_type) for f in view.features] == [("amount_vs_avg_30d", "double"), ("exceeds_max_30d", "boolean")]
    assert "amount / nullif(avg_amount_30d, 0)" in view.sql
    assert "purchase_request_features" not in store.registry.views  # not a feature view: nothing to export


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_online_values_equal_offline_values_on_random_requests(store: FeatureStore, seed: int) -> None:
    rows = random_requests(seed, 150, users=300)
    features = [f"{VIEW}:{name}" for name in FEATURES]
    offline = offline_values(store, rows, features, AS_OF)
    online = online_values(store, rows, features, ["quantity", "channel", "threshold"])
    assert online == offline
    # The cases the property is about actually occur.
    assert any(row["quantity"] == 0 for row in rows) and None in offline["spend_per_unit"]
    assert any(value is not None for value in offline["spend_per_unit"])
    assert any(value is not None and value not in (0, 10) for value in offline["count_ratio"])
    assert None in offline["purchases_plus_units"]  # unknown users, and users outside user_features' TTL
    assert {type(value) for value in offline["label"]} == {str}


def test_the_example_view_is_equal_online_and_offline(store: FeatureStore) -> None:
    rows = random_requests(7, 120, users=300)
    offline = offline_values(store, rows, EXAMPLE, AS_OF)
    online = online_values(store, rows, EXAMPLE, ["amount"])
    assert online == offline
    assert None in offline["amount_vs_avg_30d"] and any(v is not None for v in offline["amount_vs_avg_30d"])


def test_feature_views_and_on_demand_views_mix_in_request_order(store: FeatureStore) -> None:
    features = ["purchase_request_features:amount_vs_avg_30d", "user_features:total_purchases", "user_purchase_windows:avg_amount_30d"]
    rows = [{"user_id": 3, "amount": 12.5}, {"user_id": 10**9, "amount": 1.0}]
    response = store.get_online_features(features, rows, full_feature_names=True)
    assert list(response.columns) == [
        "user_id", "purchase_request_features__amount_vs_avg_30d", "user_features__total_purchases", "user_purchase_windows__avg_amount_30d"
    ]
    average = response.columns["user_purchase_windows__avg_amount_30d"][0]
    assert response.columns["purchase_request_features__amount_vs_avg_30d"][0] == pytest.approx(12.5 / average)
    assert response.statuses["purchase_request_features__amount_vs_avg_30d"] == ["present", "null"]
    historical = store.get_historical_features(
        pd.DataFrame({"user_id": [3, 10**9], "amount": [12.5, 1.0], "event_timestamp": pd.Timestamp(AS_OF, tz="UTC")}), features, full_feature_names=True
    )
    assert list(historical.columns) == ["user_id", "amount", "event_timestamp", *list(response.columns)[1:]]


def test_a_missing_request_field_is_named_online_and_offline(store: FeatureStore) -> None:
    with pytest.raises(InputError, match=r"the entity rows lack request field\(s\) amount; on-demand view 'purchase_request_features' needs amount \(double\)"):
        store.get_online_features(EXAMPLE, [{"user_id": 1}])
    frame = pd.DataFrame({"user_id": [1], "event_timestamp": pd.Timestamp(AS_OF, tz="UTC")})
    with pytest.raises(InputError, match=r"entity_df lacks request field\(s\) amount; on-demand view 'purchase_request_features' needs amount"):
        store.get_historical_features(frame, EXAMPLE)


def test_unknown_fields_and_features_are_named(store: FeatureStore) -> None:
    with pytest.raises(EntityKeyError, match=r"unexpected key\(s\) amonut"):
        store.get_online_features(EXAMPLE, [{"user_id": 1, "amount": 1.0, "amonut": 2.0}])
    with pytest.raises(UnknownFeatureError, match=r"feature 'ratio' is not in on-demand view 'purchase_request_features'; its features: amount_vs_avg_30d, exceeds_max_30d"):
        store.get_online_features(["purchase_request_features:ratio"], [{"user_id": 1, "amount": 1.0}])
    with pytest.raises(InputError, match=r"entity row 1: amount='12' does not fit double; request field amount of on-demand view 'purchase_request_features' needs a number"):
        store.get_online_features(EXAMPLE, [{"user_id": 1, "amount": 1.0}, {"user_id": 2, "amount": "12"}])


def featurestore(project: Path, store: FeatureStore, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REDIS_URL": REDIS_URL, "FEATURE_STORE_REDIS_PREFIX": store.redis_prefix}
    return subprocess.run([sys.executable, "-m", "serving", "--project-dir", str(project), *args], capture_output=True, text=True, env=env)


def test_the_cli_takes_request_fields_as_entities(project: Path, store: FeatureStore) -> None:
    result = featurestore(project, store, "get", *EXAMPLE, "--entity", "user_id=3", "--entity", "amount=12.5", "--entity", "user_id=4", "--entity", "amount=null")
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    expected = store.get_online_features(EXAMPLE, [{"user_id": 3, "amount": 12.5}, {"user_id": 4, "amount": None}]).to_dict()
    assert printed["amount_vs_avg_30d"] == expected["amount_vs_avg_30d"]
    assert printed["amount_vs_avg_30d__status"][1] == "null"
    missing = featurestore(project, store, "get", *EXAMPLE, "--entity", "user_id=3")
    assert missing.returncode == 1
    assert missing.stderr.strip() == (
        "error: the entity rows lack request field(s) amount; on-demand view 'purchase_request_features' needs amount (double)"
    )
    listed = featurestore(project, store, "list")
    assert "purchase_request_features  (on demand: reads user_purchase_windows; request fields: amount double)" in listed.stdout
    bad = featurestore(project, store, "get", *EXAMPLE, "--entity", "user_id=3", "--entity", "amount=lots")
    assert bad.returncode == 1
    assert bad.stderr.strip() == "error: request field amount is double; got 'lots', which is not a number (or null)"


def test_the_cli_reads_request_fields_from_the_entities_file(project: Path, store: FeatureStore, tmp_path: Path) -> None:
    entities = tmp_path / "entities.csv"
    entities.write_text("user_id,event_timestamp,amount\n3,2026-02-08T06:00:00Z,12.5\n4,2026-02-08T06:00:00Z,\n")
    out = tmp_path / "training.csv"
    result = featurestore(project, store, "historical", "--entities", str(entities), "--features", ",".join(EXAMPLE), "--out", str(out))
    assert result.returncode == 0, result.stderr
    written = pd.read_csv(out)
    frame = pd.DataFrame({"user_id": [3, 4], "event_timestamp": pd.Timestamp(AS_OF, tz="UTC"), "amount": [12.5, None]})
    expected = store.get_historical_features(frame, EXAMPLE)
    assert written["amount_vs_avg_30d"].tolist()[:1] == expected["amount_vs_avg_30d"].tolist()[:1]
    assert pd.isna(written["amount_vs_avg_30d"][1])


def test_http_takes_request_fields_beside_the_keys(project: Path, store: FeatureStore) -> None:
    with served(project, REDIS_URL, store.redis_prefix) as base:
        status, _, body = request(base, "POST", "/get-online-features", {"features": EXAMPLE, "entities": {"user_id": [3, 4], "amount": [12.5, None]}})
        assert status == 200, body
        expected = store.get_online_features(EXAMPLE, [{"user_id": 3, "amount": 12.5}, {"user_id": 4, "amount": None}]).to_dict()
        assert body["metadata"]["feature_names"] == ["user_id", "amount_vs_avg_30d", "exceeds_max_30d"]
        assert body["results"][1]["values"] == expected["amount_vs_avg_30d"]
        status, _, body = request(base, "POST", "/get-online-features", {"features": EXAMPLE, "entities": {"user_id": [3]}})
        assert status == 400
        assert body == {"error": "the entity rows lack request field(s) amount; on-demand view 'purchase_request_features' needs amount (double)"}


@pytest.mark.parametrize("seed", [1, 2])
def test_json_and_list_transports_compute_the_same(store: FeatureStore, seed: int) -> None:
    """Online reads send a view's inputs to DuckDB as JSON to a prepared statement; lists JSON
    cannot carry (NaN, infinities, integers beyond 64 bits) go as list parameters instead.
    Both give the same values, quotes and NULLs included, and both paths are taken."""
    from serving.engines.duckdb import InProcessSQL

    view = store.registry.on_demand_views[VIEW]
    assert view.json_sql is not None and "from_json($1::varchar" in view.json_sql
    by_json = InProcessSQL(view.sql, view.settings, json_sql=view.json_sql)
    by_lists = InProcessSQL(view.sql, view.settings)
    rng = random.Random(seed)
    samples = {
        "double": lambda: rng.choice([None, 0.0, -1.5, rng.uniform(-1e6, 1e6), float("nan"), float("inf"), -float("inf")]),
        "bigint": lambda: rng.choice([None, 0, 3, -7, rng.randint(-(2**40), 2**40)]),
        "varchar": lambda: rng.choice([None, "", "web", "it's", 'say "hi"', "back\\slash", "null", "née ✓"]),
    }
    kinds = {"json": 0, "lists": 0}
    for _ in range(40):
        inputs = [[samples.get(input_["data_type"], samples["bigint"])() for _ in range(rng.randint(0, 12))] for input_ in view.spec["inputs"]]
        size = min(map(len, inputs))
        inputs = [values[:size] for values in inputs]
        kinds["json" if by_json._prepared_call(inputs) else "lists"] += 1
        assert repr(by_json.evaluate(inputs)) == repr(by_lists.evaluate(inputs)), inputs
    assert kinds["json"] and kinds["lists"]
