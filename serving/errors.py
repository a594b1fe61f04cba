"""The feature store's exceptions. Each message names the bad value and the valid ones.

A message that suggests an argument spells it as a Python caller writes it
(`timestamp_column=...`, `full_feature_names=True`); the CLI shows its own flag instead
(serving.cli.cli_message)."""


class FeatureStoreError(Exception):
    """Base class: anything the user can fix (bad metadata, unknown feature, bad key...)."""


class RegistryError(FeatureStoreError):
    """The dbt manifest is missing, unreadable, or declares a feature view badly."""


class UnknownFeatureError(FeatureStoreError):
    """A feature reference names a view or feature that does not exist."""


class EntityKeyError(FeatureStoreError):
    """An entity row has a missing, extra or wrongly typed key."""


class InputError(FeatureStoreError):
    """An argument or input file has the wrong shape: entity_df or entity_rows that are not
    tables, a timestamp column that is missing or holds no timestamps, an output path
    that cannot be written."""


class MissingRequestFieldError(InputError):
    """The entity rows or entity_df lack a request field a requested on-demand view needs
    (a saved dataset's verify reads this as its definition having changed)."""


class ColumnClashError(FeatureStoreError):
    """Two outputs would share a column name (a feature and an entity_df column, or
    features of two views), so one would silently replace the other."""


class OnlineStoreError(FeatureStoreError):
    """Redis is unreachable or holds no snapshot for a view."""


class OfflineStoreError(FeatureStoreError):
    """The DuckDB warehouse is missing, locked or lacks a feature table."""


class MissingRelationError(OfflineStoreError):
    """A table or view the query names does not exist in the warehouse."""


class DatasetError(FeatureStoreError):
    """A saved training set is unknown, badly named, or its stored rows no longer match its lineage."""
