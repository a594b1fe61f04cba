"""Shared test support: a test-only on-demand view added to a copy of the example project,
with the cases the example does not have: a request field as a denominator (zeros and
NULLs), integer division, text, two source views (one with a 1-day TTL), three request
field types. And random requests over it, to compare offline and online values.

tests/ is on sys.path (pyproject.toml), so `from on_demand_views import ...` works anywhere."""

from __future__ import annotations

import datetime as dt
import math
import random
from pathlib import Path
from typing import Any

import pandas as pd

VIEW = "request_cases"
FEATURES = ["spend_per_unit", "count_ratio", "purchases_plus_units", "label", "over_threshold"]
YAML = """version: 2
models:
- name: request_cases
  config:
    materialized: view
    meta:
      on_demand_feature_view:
        sources:
        - user_purchase_windows:spend_30d
        - user_purchase_windows:purchase_count_7d
        - user_purchase_windows:purchase_count_30d
        - user_features:total_purchases
        request_fields:
        - {name: quantity, data_type: bigint}
        - {name: channel, data_type: varchar}
        - {name: threshold, data_type: double}
  columns:
  - {name: spend_per_unit, data_type: double, config: {meta: {expression: "spend_30d / nullif(quantity, 0)"}}}
  - {name: count_ratio, data_type: bigint, config: {meta: {expression: "purchase_count_7d * 10 / nullif(purchase_count_30d, 0)"}}}
  - {name: purchases_plus_units, data_type: bigint, config: {meta: {expression: "total_purchases + quantity"}}}
  - {name: label, data_type: varchar, config: {meta: {expression: "concat(coalesce(channel, 'none'), ':', cast(purchase_count_7d as varchar))"}}}
  - {name: over_threshold, data_type: boolean, config: {meta: {expression: "spend_30d > threshold"}}}
"""


def add_request_cases(project_dir: Path) -> None:
    """Adds the test view to a project copy (FeatureStore parses the project again)."""
    folder = project_dir / "models" / "features"
    (folder / "request_cases.yml").write_text(YAML)
    (folder / "request_cases.sql").write_text("{{ feature_store.on_demand_view() }}\n")


def random_requests(seed: int, count: int, users: int) -> list[dict[str, Any]]:
    """Entity rows: known and unknown users, request values with zeros, NULLs and negatives."""
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        rows.append({
            "user_id": rng.randint(1, users + 20),
            "quantity": rng.choice([None, 0, 0, 1, 2, 3, 7, -4, rng.randint(-1000, 1000)]),
            "channel": rng.choice([None, "web", "app", "store"]),
            "threshold": rng.choice([None, 0.0, rng.uniform(-10, 500), float(rng.randint(0, 300))]),
            "amount": rng.choice([None, 0.0, rng.uniform(0, 400)]),
        })
    return rows


def plain(value: Any) -> Any:
    """None for NULL, NA and NaN; Python scalars for numpy ones."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return value.item() if hasattr(value, "item") and not isinstance(value, (str, bytes)) else value


def offline_values(store: Any, rows: list[dict[str, Any]], features: list[str], as_of: dt.datetime) -> dict[str, list[Any]]:
    frame = pd.DataFrame(rows)
    frame["quantity"] = frame["quantity"].astype("Int64")
    frame["event_timestamp"] = pd.Timestamp(as_of, tz="UTC")
    result = store.get_historical_features(frame, features)
    names = [feature.split(":")[1] for feature in features]
    return {name: [plain(value) for value in result[name]] for name in names}


def online_values(store: Any, rows: list[dict[str, Any]], features: list[str], request_fields: list[str]) -> dict[str, list[Any]]:
    entity_rows = [{key: row[key] for key in ["user_id", *request_fields]} for row in rows]
    response = store.get_online_features(features, entity_rows).to_dict()
    names = [feature.split(":")[1] for feature in features]
    return {name: [plain(value) for value in response[name]] for name in names}
