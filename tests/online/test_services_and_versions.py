"""Feature services (ML exposures) and feature view versions (dbt model versions), online and
offline, against real Redis (one node and a cluster) and the built DuckDB warehouse.

The example project versions product_popularity: v1 has product_purchases_1d, v2 (the latest)
replaces it with product_purchases_30d; the service purchase_propensity pins v1."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import pytest

from online_checks import assert_online_equals_offline
from serving.errors import InputError, UnknownFeatureError
from serving.store import FeatureStore

AS_OF = dt.datetime(2026, 2, 10, 12)
SERVICE = "purchase_propensity"


@pytest.fixture
def exported(store: FeatureStore) -> FeatureStore:
    store.materialize(as_of=AS_OF, feature_views=["product_popularity.v1", "product_popularity.v2", "user_features", "user_purchase_windows"], progress=False)
    return store


def products(store: FeatureStore, count: int = 25) -> list[dict[str, Any]]:
    rows = store.offline.snapshot(store.get_feature_view("product_popularity.v1"), AS_OF).to_pylist()
    return [{"product_id": row["product_id"]} for row in rows if row["event_timestamp"] is not None][:count] + [{"product_id": 10**9}]


def test_two_versions_coexist_online_under_names_of_their_own(exported: FeatureStore, raw: Any, prefix: str) -> None:
    pointers = {name.decode() for name in raw.hgetall(f"{prefix}:{{{prefix}}}:current")}
    assert {"product_popularity.v1", "product_popularity.v2"} <= pointers
    rows = products(exported)
    assert_online_equals_offline(exported, "product_popularity.v1", rows, AS_OF)
    assert_online_equals_offline(exported, "product_popularity.v2", rows, AS_OF)
    both = exported.get_online_features(
        ["product_popularity.v1:product_purchases_1d", "product_popularity:product_purchases_30d"], rows
    ).to_dict()
    assert any(count for count in both["product_purchases_1d"] if count) and any(count for count in both["product_purchases_30d"] if count)
    # 30 days hold at least the purchases of one day.
    assert all(new >= old for old, new in zip(both["product_purchases_1d"][:-1], both["product_purchases_30d"][:-1]))


def test_a_reference_without_a_version_means_the_latest(exported: FeatureStore) -> None:
    rows = products(exported)
    latest = exported.get_online_features(["product_popularity:product_buyers_7d"], rows, full_feature_names=True).to_dict()
    pinned = exported.get_online_features(["product_popularity.v2:product_buyers_7d"], rows, full_feature_names=True).to_dict()
    # Full feature names follow the reference as written: product_popularity__, product_popularity_v2__.
    assert latest["product_popularity__product_buyers_7d"] == pinned["product_popularity_v2__product_buyers_7d"]
    assert exported.get_feature_view("product_popularity").name == "product_popularity.v2"
    # Both spellings of the latest version name one view, exported once.
    again = exported.materialize(as_of=AS_OF, feature_views=["product_popularity", "product_popularity.v2"], progress=False)
    assert [view.view for view in again.views] == ["product_popularity.v2"]
    with pytest.raises(UnknownFeatureError, match=r"feature 'product_purchases_1d' is not in feature view 'product_popularity.v2'"):
        exported.get_online_features(["product_popularity:product_purchases_1d"], rows)


def test_both_versions_side_by_side_offline_with_full_feature_names(exported: FeatureStore) -> None:
    rows = products(exported)
    entity_df = pd.DataFrame(rows).assign(event_timestamp=pd.Timestamp(AS_OF))
    frame = exported.get_historical_features(
        entity_df, ["product_popularity.v1:product_buyers_7d", "product_popularity.v2:product_buyers_7d"], full_feature_names=True
    )
    assert frame["product_popularity_v1__product_buyers_7d"].tolist() == frame["product_popularity_v2__product_buyers_7d"].tolist()
    online = exported.get_online_features(["product_popularity.v1:product_buyers_7d"], rows).to_dict()
    assert online["product_buyers_7d"][:-1] == frame["product_popularity_v1__product_buyers_7d"].tolist()[:-1]


def test_a_feature_service_reads_its_pinned_features_online_and_offline(exported: FeatureStore) -> None:
    service = exported.get_feature_service(SERVICE)
    assert exported.list_feature_services() == [service]
    assert service.views == ("user_features", "user_purchase_windows", "product_popularity.v1")
    users = exported.offline.snapshot(exported.get_feature_view("user_features"), AS_OF).to_pylist()[:20]
    rows = [{"user_id": user["user_id"], **product} for user, product in zip(users, products(exported, 20))]

    by_service = exported.get_online_features(feature_service=SERVICE, entity_rows=rows).to_dict(include_metadata=True)
    by_list = exported.get_online_features(list(service.features), rows).to_dict(include_metadata=True)
    assert by_service == by_list
    assert list(by_service)[:8] == ["user_id", "product_id", "total_purchases", "avg_purchase_amount", "purchase_count_7d",
                                    "spend_30d", "product_purchases_1d", "product_buyers_7d"]

    entity_df = pd.DataFrame(rows).assign(event_timestamp=pd.Timestamp(AS_OF))
    offline = exported.get_historical_features(entity_df, feature_service=SERVICE)
    pd.testing.assert_frame_equal(offline, exported.get_historical_features(entity_df, list(service.features)))
    assert offline["product_purchases_1d"].tolist() == by_service["product_purchases_1d"]
    # Feast's form: the service object in place of the feature list.
    assert exported.get_online_features(service, rows).to_dict(include_metadata=True) == by_service


def test_unknown_services_and_versions_and_ambiguous_requests_are_refused_in_one_line(exported: FeatureStore) -> None:
    rows = [{"user_id": 1, "product_id": 1}]
    with pytest.raises(UnknownFeatureError, match=r"^feature service 'nope' does not exist; feature services \(ML exposures with meta.feature_store\): purchase_propensity$"):
        exported.get_online_features(feature_service="nope", entity_rows=rows)
    with pytest.raises(UnknownFeatureError, match=r"^feature view 'product_popularity' has no version 'v7'; its versions: product_popularity.v1, product_popularity.v2$"):
        exported.get_online_features(["product_popularity.v7:product_buyers_7d"], rows)
    with pytest.raises(UnknownFeatureError, match=r"^feature view 'user_features' has no versions \(its model declares none\); name it 'user_features'$"):
        exported.get_online_features(["user_features.v2:total_purchases"], rows)
    with pytest.raises(InputError, match=r"^pass either features or feature_service=..., not both$"):
        exported.get_historical_features(pd.DataFrame(rows).assign(event_timestamp=pd.Timestamp(AS_OF)), ["user_features:total_purchases"], feature_service=SERVICE)
    with pytest.raises(UnknownFeatureError, match=r"no online feature view named 'product_popularity.v9'"):
        exported.materialize(as_of=AS_OF, feature_views="product_popularity.v9")
