"""A SQL-first feature store: features are dbt models, the manifest is the registry."""

from serving.errors import (
    EntityKeyError,
    FeatureStoreError,
    OfflineStoreError,
    OnlineStoreError,
    RegistryError,
    UnknownFeatureError,
)
from serving.registry import Feature, FeatureService, FeatureView, OnDemandView, RequestField
from serving.store import FeatureStore

__all__ = [
    "EntityKeyError",
    "Feature",
    "FeatureStore",
    "FeatureService",
    "FeatureStoreError",
    "FeatureView",
    "OnDemandView",
    "OfflineStoreError",
    "OnlineStoreError",
    "RegistryError",
    "RequestField",
    "UnknownFeatureError",
]
