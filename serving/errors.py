"""The feature store's exceptions. Each message names the bad value and the valid ones."""


class FeatureStoreError(Exception):
    """Base class: anything the user can fix (bad metadata, unknown feature, bad key...)."""


class RegistryError(FeatureStoreError):
    """The dbt manifest is missing, unreadable, or declares a feature view badly."""


class UnknownFeatureError(FeatureStoreError):
    """A feature reference names a view or feature that does not exist."""


class EntityKeyError(FeatureStoreError):
    """An entity row has a missing, extra or wrongly typed key."""


class OnlineStoreError(FeatureStoreError):
    """Redis is unreachable or holds no snapshot for a view."""


class OfflineStoreError(FeatureStoreError):
    """The DuckDB warehouse is missing, locked or lacks a feature table."""
