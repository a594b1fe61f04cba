"""Every query Python runs is rendered by dbt: the target's quoting, the dispatch chain with
the project's `dispatch:` config, dbt's own and installed packages' macros, clear errors,
and a cache that makes a repeated call cost no rendering at all."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from project_copies import ROOT, dbt
from serving.dbt_target import read_manifest_json
from serving.errors import FeatureStoreError
from serving.rendering import Renderer

SPEC = {
    "name": "user_features",
    "relation": '"db"."main"."user_features"',
    "entity": ["user_id"],
    "timestamp_column": "event_timestamp",
    "created_timestamp_column": None,
    "ttl": {"text": "1 day", "seconds": 86400},
    "features": [{"name": "total_purchases", "data_type": "bigint", "description": ""}],
}


def renderer(project_dir: Path, target: str | None = None, cache: bool = False) -> Renderer:
    return Renderer(project_dir, read_manifest_json(project_dir)[1], target, cache=cache)


def test_duckdb_quoting_and_relations_follow_the_target(parsed_project: Path) -> None:
    render = renderer(parsed_project)
    assert render.relation(None, "main", "user_features") == '"warehouse"."main"."user_features"'
    sql = render.call("snapshot_sql", SPEC, "2026-02-01 00:00:00")
    assert '__fs_rows.__fs_event_at <= cast(\'2026-02-01 00:00:00\' as timestamp) and __fs_rows."user_id" is not null' in sql
    assert "qualify row_number() over" in sql  # duckdb__point_in_time_snapshot_sql, chosen by dispatch


def test_postgres_quoting_relations_and_implementations(postgres_parsed_project: Path) -> None:
    render = renderer(postgres_parsed_project, "postgres")
    assert render.relation(None, "feature_store", "user_features") == '"postgres"."feature_store"."user_features"'
    sql = render.call("snapshot_sql", SPEC, "2026-02-01 00:00:00")
    assert "qualify" not in sql and "row_number() over" in sql  # default__ implementation
    assert "(cast(\"event_timestamp\" as timestamptz) at time zone 'UTC')" in sql  # postgres__normalize_timestamp


@pytest.fixture(scope="module")
def spark_parsed_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("dbt.adapters.spark")
    pytest.importorskip("pyspark")  # dbt-spark's session method checks for it while parsing
    project = tmp_path_factory.mktemp("spark") / "project"
    shutil.copytree(ROOT / "macros", project / "macros")
    shutil.copy(ROOT / "dbt_project.yml", project / "dbt_project.yml")
    (project / "profiles.yml").write_text(
        "feature_store:\n  target: spark\n  outputs:\n    spark:\n      type: spark\n      method: session\n"
        "      host: localhost\n      schema: features\n"
    )
    dbt(project, "parse")
    return project


def test_spark_quotes_with_backticks(spark_parsed_project: Path) -> None:
    render = renderer(spark_parsed_project)
    assert render.relation(None, "features", "user_features") == "features.user_features"
    sql = render.call("snapshot_sql", SPEC, "2026-02-01 00:00:00")
    assert "__fs_latest.`user_id`," in sql and "`total_purchases`" in sql and '"user_id"' not in sql


# ---- a consumer project: the macros as an installed package, with its own overrides ------

CONSUMER_PROJECT = """
name: consumer
version: "1.0.0"
config-version: 2
profile: consumer
macro-paths: ["macros"]
dispatch:
  - macro_namespace: feature_store
    search_order: [consumer, feature_store]
"""
CONSUMER_PROFILE = """
consumer:
  target: dev
  outputs:
    dev:
      type: duckdb
      path: target/consumer.duckdb
"""
CONSUMER_MACROS = """
{% macro duckdb__timestamp_literal(text) -%}
  cast({{ dbt.string_literal(text) }} as timestamp) /* consumer override, schema {{ target.schema }} */
{%- endmacro %}

{% macro duckdb__interval_literal(duration) -%}
  {{ no_such_thing.seconds }}
{%- endmacro %}
"""


@pytest.fixture(scope="module")
def consumer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = tmp_path_factory.mktemp("consumer") / "project"
    package = project / "dbt_packages" / "feature_store"
    shutil.copytree(ROOT / "macros", package / "macros")
    shutil.copy(ROOT / "dbt_project.yml", package / "dbt_project.yml")
    (project / "macros").mkdir(parents=True)
    (project / "macros" / "overrides.sql").write_text(CONSUMER_MACROS)
    (project / "dbt_project.yml").write_text(CONSUMER_PROJECT)
    (project / "profiles.yml").write_text(CONSUMER_PROFILE)
    dbt(project, "parse")
    return project


def test_project_dispatch_config_and_dbt_macros_are_used(consumer: Path) -> None:
    sql = renderer(consumer).call("snapshot_sql", {**SPEC, "ttl": None}, "2026-02-01 00:00:00")
    # The consumer's override (found through its dispatch: search_order), which calls
    # dbt's own string_literal and reads target.schema; the rest from the package.
    assert "<= cast('2026-02-01 00:00:00' as timestamp) /* consumer override, schema main */" in sql
    assert "qualify row_number() over" in sql


def test_an_undefined_name_is_a_clear_error_naming_the_macro(consumer: Path) -> None:
    with pytest.raises(FeatureStoreError, match=r"'no_such_thing' is undefined \(dbt rendering macro feature_store\.within_ttl for target 'dev', a duckdb target\)"):
        renderer(consumer).call("within_ttl", "a", "b", {"text": "1 day", "seconds": 86400})


def test_an_unknown_macro_is_a_clear_error(parsed_project: Path) -> None:
    with pytest.raises(FeatureStoreError, match=r"no macro named 'no_such_macro' in package 'feature_store'"):
        renderer(parsed_project).call("no_such_macro")


def test_a_macros_own_error_comes_first_then_the_macro(parsed_project: Path) -> None:
    with pytest.raises(FeatureStoreError, match=r"^owner: field is 1 month; expected .* \(dbt rendering macro feature_store\.parse_duration"):
        renderer(parsed_project).call("parse_duration", "1 month", "owner", "field")


# ---- the cache -------------------------------------------------------------------------


def test_a_repeated_call_is_served_from_the_cache_in_memory_and_on_disk(parsed_project: Path, tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(parsed_project, project, ignore=shutil.ignore_patterns("feature_store_render"))
    first = renderer(project, cache=True)
    sql = first.call("snapshot_sql", SPEC, "__AS_OF__")
    assert first.renders == 1
    assert first.call("snapshot_sql", SPEC, "__AS_OF__") == sql and first.renders == 1
    # A new process (a new Renderer) finds it on disk, renders nothing, and is fast.
    second = renderer(project, cache=True)
    started = time.perf_counter()
    assert second.call("snapshot_sql", SPEC, "__AS_OF__") == sql
    assert second.renders == 0 and time.perf_counter() - started < 0.05
    # Another call shape is rendered; so is the same call once the manifest changes.
    assert second.call("snapshot_sql", {**SPEC, "ttl": None}, "__AS_OF__") != sql and second.renders == 1
    (project / "target" / "manifest.json").write_text((project / "target" / "manifest.json").read_text() + " ")
    third = renderer(project, cache=True)
    assert third.call("snapshot_sql", SPEC, "__AS_OF__") == sql and third.renders == 1


def test_the_cache_is_per_target_setting(parsed_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "project"
    shutil.copytree(parsed_project, project, ignore=shutil.ignore_patterns("feature_store_render"))
    assert renderer(project, cache=True).relation(None, "main", "v") == '"warehouse"."main"."v"'
    monkeypatch.setenv("FEATURE_STORE_DUCKDB", str(tmp_path / "elsewhere.duckdb"))
    assert renderer(project, cache=True).relation(None, "main", "v") == '"elsewhere"."main"."v"'
