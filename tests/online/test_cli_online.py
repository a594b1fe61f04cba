"""`featurestore materialize` and `featurestore get` against a real Redis, as a user runs them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd

from serving.store import FeatureStore

AS_OF = "2026-02-01T12:00:00Z"


def featurestore(project_dir: Path, redis_url: str, prefix: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REDIS_URL": redis_url, "FEATURE_STORE_REDIS_PREFIX": prefix}
    return subprocess.run(
        [sys.executable, "-m", "serving", "--project-dir", str(project_dir), *args], capture_output=True, text=True, env=env
    )


def test_materialize_then_get_prints_the_offline_value_at_as_of(built_project, redis_url, prefix):
    done = featurestore(built_project, redis_url, prefix, "materialize", "--as-of", AS_OF, "--select", "user_purchase_windows")
    assert done.returncode == 0, done.stderr
    assert "materialized 1 view(s)" in done.stdout

    user = int(pd.read_parquet(built_project / "data" / "sample" / "purchases.parquet")["user_id"].iloc[0])
    got = featurestore(
        built_project, redis_url, prefix, "get", "user_purchase_windows:spend_30d", "user_purchase_windows:purchase_count_7d", "--entity", f"user_id={user}"
    )

    assert got.returncode == 0, got.stderr
    printed = json.loads(got.stdout)
    offline = FeatureStore(built_project).get_historical_features(
        pd.DataFrame({"user_id": [user], "event_timestamp": [pd.Timestamp(AS_OF)]}),
        ["user_purchase_windows:spend_30d", "user_purchase_windows:purchase_count_7d"],
    )
    assert printed["user_id"] == [user]
    assert printed["spend_30d"] == [offline["spend_30d"].iloc[0]]
    assert printed["purchase_count_7d"] == [int(offline["purchase_count_7d"].iloc[0])]
    assert printed["spend_30d__status"] == ["present"]


def test_get_with_a_wrong_entity_key_exits_1_naming_the_valid_key(built_project, redis_url, prefix):
    featurestore(built_project, redis_url, prefix, "materialize", "--as-of", AS_OF, "--select", "user_features")

    result = featurestore(built_project, redis_url, prefix, "get", "user_features:total_purchases", "--entity", "customer=3")

    assert result.returncode == 1
    assert "user_id" in result.stderr and "customer" in result.stderr


def test_get_with_a_non_integer_key_value_exits_1(built_project, redis_url, prefix):
    result = featurestore(built_project, redis_url, prefix, "get", "user_features:total_purchases", "--entity", "user_id=abc")

    assert result.returncode == 1
    assert "user_id is an integer; got 'abc'" in result.stderr


def test_materialize_of_an_unknown_view_exits_1_listing_the_online_views(built_project, redis_url, prefix):
    result = featurestore(built_project, redis_url, prefix, "materialize", "--select", "user_featurez")

    assert result.returncode == 1
    assert "'user_featurez'" in result.stderr and "user_features" in result.stderr


def test_materialize_with_redis_down_exits_1_naming_the_url(built_project, prefix):
    result = featurestore(built_project, "redis://:secret@127.0.0.1:1/0", prefix, "materialize", "--as-of", AS_OF)

    assert result.returncode == 1
    assert "127.0.0.1:1" in result.stderr
    assert "secret" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_status_shows_each_online_view_snapshot_and_says_which_redis(built_project, redis_url, prefix):
    before = featurestore(built_project, redis_url, prefix, "status")
    assert before.returncode == 0, before.stderr
    assert "user_features: never materialized" in before.stdout

    done = featurestore(built_project, redis_url, prefix, "materialize", "--as-of", AS_OF, "--select", "user_features")
    assert done.returncode == 0, done.stderr
    assert f"online store: {redis_url} (key prefix '{prefix}')" in done.stderr

    shown = featurestore(built_project, redis_url, prefix, "status", "--json")
    assert shown.returncode == 0, shown.stderr
    statuses = {status["view"]: status for status in json.loads(shown.stdout)}
    served = statuses["user_features"]
    assert served["as_of"] == "2026-02-01T12:00:00"
    exported = int(re.search(r"([\d,]+) entities", done.stdout).group(1).replace(",", ""))
    assert served["entities"] == exported > 0
    assert served["age_seconds"] > 0
    assert statuses["user_purchase_windows"]["version"] is None
    assert "online store:" in shown.stderr


def test_materialize_counts_entities_by_status_and_warns_when_most_are_expired(built_project, redis_url, prefix):
    fresh = featurestore(built_project, redis_url, prefix, "materialize", "--as-of", AS_OF, "--select", "user_features")
    assert fresh.returncode == 0, fresh.stderr
    assert "warning:" not in fresh.stderr

    # user_features holds daily snapshots with a one-day TTL: a year later every entity has expired.
    late = featurestore(built_project, redis_url, prefix, "materialize", "--as-of", "2027-02-01T00:00:00Z", "--select", "user_features")
    assert late.returncode == 0, late.stderr
    entities = int(re.search(r"([\d,]+) entities", late.stdout).group(1).replace(",", ""))
    assert f"user_features: 0 present, {entities:,} outside_ttl" in late.stdout
    assert f"warning: {entities:,} of {entities:,} entities of 'user_features' are outside its TTL" in late.stderr


def purchases_before_as_of(project_dir: Path) -> pd.DataFrame:
    purchases = pd.read_parquet(project_dir / "data" / "sample" / "purchases.parquet")
    return purchases[purchases["event_timestamp"] < pd.Timestamp(AS_OF)].drop_duplicates(["user_id", "category"])


def offline_values(project_dir: Path, keys: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    entity_df = keys.reset_index(drop=True).assign(event_timestamp=pd.Timestamp(AS_OF))
    return FeatureStore(project_dir).get_historical_features(entity_df, features)


def test_get_with_the_same_key_repeated_reads_one_row_per_entity(built_project, redis_url, prefix):
    featurestore(built_project, redis_url, prefix, "materialize", "--as-of", AS_OF, "--select", "user_purchase_windows")
    users = [int(user) for user in purchases_before_as_of(built_project)["user_id"].unique()[:2]]

    got = featurestore(
        built_project, redis_url, prefix, "get", "user_purchase_windows:spend_30d",
        "--entity", f"user_id={users[0]}", "--entity", f"user_id={users[1]}",
    )

    assert got.returncode == 0, got.stderr
    printed = json.loads(got.stdout)
    offline = offline_values(built_project, pd.DataFrame({"user_id": users}), ["user_purchase_windows:spend_30d"])
    assert printed["user_id"] == users
    assert printed["spend_30d"] == offline["spend_30d"].tolist()
    assert printed["spend_30d__status"] == ["present", "present"]


def test_get_with_different_keys_reads_one_composite_row_and_a_repeat_starts_the_next(built_project, redis_url, prefix):
    featurestore(built_project, redis_url, prefix, "materialize", "--as-of", AS_OF, "--select", "user_category_windows")
    pairs = purchases_before_as_of(built_project)[["user_id", "category"]].head(2)
    (user_a, category_a), (user_b, category_b) = [(int(user), str(category)) for user, category in pairs.itertuples(index=False)]
    feature = ["user_category_windows:category_purchases_30d"]
    offline = offline_values(built_project, pairs, feature)["category_purchases_30d"].tolist()

    one = featurestore(built_project, redis_url, prefix, "get", *feature, "--entity", f"user_id={user_a}", "--entity", f"category={category_a}")
    two = featurestore(
        built_project, redis_url, prefix, "get", *feature,
        "--entity", f"user_id={user_a}", "--entity", f"category={category_a}",
        "--entity", f"category={category_b}", "--entity", f"user_id={user_b}",
    )

    assert one.returncode == 0 and two.returncode == 0, one.stderr + two.stderr
    single, double = json.loads(one.stdout), json.loads(two.stdout)
    assert (single["user_id"], single["category"], single["category_purchases_30d"]) == ([user_a], [category_a], offline[:1])
    assert (double["user_id"], double["category"], double["category_purchases_30d"]) == ([user_a, user_b], [category_a, category_b], offline)
    assert double["category_purchases_30d__status"] == ["present", "present"]
