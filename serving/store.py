"""FeatureStore: the one entry point, with Feast's names and shapes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import pandas as pd

from serving.errors import EntityKeyError
from serving.macros import MacroSet
from serving.offline import OfflineStore, warehouse_path
from serving.registry import FeatureView, Registry


class FeatureStore:
    """Feature views declared in a dbt project, served offline (DuckDB) and online (Redis).

    >>> store = FeatureStore(project_dir=".")
    >>> store.list_feature_views()
    """

    def __init__(self, project_dir: str | os.PathLike[str] = ".", redis_url: str | None = None) -> None:
        self.project_dir = Path(project_dir).resolve()
        self.redis_url = redis_url
        self._macros = MacroSet(self.project_dir / "macros")
        self.registry = Registry.from_project(self.project_dir, self._macros)
        self.offline = OfflineStore(warehouse_path(self.project_dir), self._macros)

    def list_feature_views(self) -> list[FeatureView]:
        return list(self.registry.views.values())

    def get_feature_view(self, name: str) -> FeatureView:
        return self.registry.view(name)

    def get_historical_features(
        self,
        entity_df: pd.DataFrame,
        features: Sequence[str],
        full_feature_names: bool = False,
        timestamp_column: str | None = None,
    ) -> pd.DataFrame:
        """entity_df's rows, in order and with their columns, plus each feature as it was
        known at the row's timestamp (`event_timestamp`, or the only datetime column)."""
        views = self.registry.resolve(features)
        column = timestamp_column or _timestamp_column(entity_df)
        return self.offline.historical(entity_df, views, column, full_feature_names)


def _timestamp_column(entity_df: pd.DataFrame) -> str:
    if "event_timestamp" in entity_df.columns:
        return "event_timestamp"
    candidates = [c for c in entity_df.columns if pd.api.types.is_datetime64_any_dtype(entity_df[c])]
    if len(candidates) == 1:
        return str(candidates[0])
    raise EntityKeyError(
        "entity_df needs an event_timestamp column (or exactly one datetime column, or timestamp_column=...); "
        f"its columns: {', '.join(map(str, entity_df.columns))}"
    )
