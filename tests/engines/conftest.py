"""Fixtures shared by the engine modules: what the DuckDB build's FeatureStore serves, the
answer every other engine's FeatureStore must give."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine_serving import ParityInputs, Served, parity_inputs, serve, serving_store


@pytest.fixture(scope="session")
def duckdb_served(built_project: Path) -> tuple[ParityInputs, Served]:
    """The questions (spine, features, online entity rows) and DuckDB's answers."""
    reference = serving_store(built_project, None)
    inputs = parity_inputs(reference)
    return inputs, serve(reference, inputs)
