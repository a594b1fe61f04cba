"""Shared fixtures: a throwaway copy of the project, built with dbt into its own DuckDB file."""

from __future__ import annotations

from pathlib import Path

import pytest

from project_copies import copy_project, dbt, generate_sample_data
from spark_session import spark  # noqa: F401 - the run's one SparkSession, for every Spark test


@pytest.fixture(scope="session")
def built_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the project with small sample data, after a successful `dbt build`.

    Read-only for tests: its warehouse is target/warehouse.duckdb inside the copy."""
    project_dir = copy_project(tmp_path_factory.mktemp("built") / "project")
    generate_sample_data(project_dir, "--users", "300", "--days", "40", "--spine-per-user", "2")
    dbt(project_dir, "build")
    return project_dir


@pytest.fixture(scope="session")
def parsed_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the project after `dbt parse` (a manifest, no warehouse). Read-only for tests."""
    project_dir = copy_project(tmp_path_factory.mktemp("parsed") / "project")
    dbt(project_dir, "parse")
    return project_dir


@pytest.fixture(scope="session")
def postgres_parsed_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the project parsed for its `postgres` target (needs dbt-postgres)."""
    pytest.importorskip("dbt.adapters.postgres")
    project_dir = copy_project(tmp_path_factory.mktemp("parsed_pg") / "project")
    dbt(project_dir, "parse", "--target", "postgres")
    return project_dir


@pytest.fixture(scope="session")
def spark_parsed_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the project parsed for its `spark` target (needs dbt-spark and pyspark,
    which its session method checks for while parsing; no JVM starts)."""
    pytest.importorskip("dbt.adapters.spark")
    pytest.importorskip("pyspark")
    project_dir = copy_project(tmp_path_factory.mktemp("parsed_spark") / "project")
    dbt(project_dir, "parse", "--target", "spark")
    return project_dir
