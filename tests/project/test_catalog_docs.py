"""The catalog in dbt itself: every feature is described (or the build stops), feature
services are checked against their depends_on, and `dbt docs generate` carries each feature
view's feature-store metadata, its versions, and the ML exposures that use them."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from project_copies import copy_project, dbt

# product_popularity_v2's one changed feature, as models/features/features.yml declares it.
DESCRIBED = """    - name: product_purchases_30d
      data_type: bigint
      description: Purchases of the product in the last 30 days.
"""
SERVICE_DEPENDS_ON = "  - ref('product_popularity', v=1)\n"


def project_with(tmp_path: Path, file: str, original: str, replacement: str) -> Path:
    project = copy_project(tmp_path / "project")
    path = project / file
    text = path.read_text()
    assert original in text, f"{file} changed; update the test's copy of {original!r}"
    path.write_text(text.replace(original, replacement, 1))
    return project


def folded(result) -> str:
    return re.sub(r"\s+", " ", result.stdout + result.stderr)


def test_a_feature_without_a_description_stops_the_build_unless_the_project_allows_it(tmp_path: Path) -> None:
    project = project_with(tmp_path, "models/features/features.yml", DESCRIBED, DESCRIBED.replace("      description: Purchases of the product in the last 30 days.\n", ""))

    built = dbt(project, "build", check=False)
    assert built.returncode != 0
    output = folded(built)
    assert ("feature view 'product_popularity.v2': feature column(s) product_purchases_30d have no description; describe every feature "
            "under the model's columns (or set the var feature_store_require_descriptions: false)") in output, output[-3000:]
    assert "OK created" not in output

    # The project setting turns the rule off: the same validation hook then passes.
    allowed = dbt(project, "run-operation", "feature_store.validate_feature_views", "--vars", "{feature_store_require_descriptions: false}", check=False)
    assert allowed.returncode == 0, folded(allowed)[-3000:]


def test_a_feature_service_whose_depends_on_misses_a_view_stops_the_build(tmp_path: Path) -> None:
    project = project_with(tmp_path, "models/services.yml", SERVICE_DEPENDS_ON, "")

    checked = dbt(project, "run-operation", "feature_store.validate_feature_views", check=False)
    assert checked.returncode != 0
    assert ("feature service 'purchase_propensity': it uses feature view 'product_popularity.v1' but its depends_on does not ref() it; "
            "add ref('product_popularity', v=1) to depends_on") in folded(checked)


def test_docs_generate_shows_feature_store_metadata_versions_and_services(built_project: Path, tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(built_project, project, ignore=shutil.ignore_patterns("feature_store_render"))
    dbt(project, "docs", "generate")

    manifest = json.loads((project / "target" / "manifest.json").read_text())
    catalog = json.loads((project / "target" / "catalog.json").read_text())
    views = {node["unique_id"]: node for node in manifest["nodes"].values() if "feature_store" in node["config"]["meta"]}
    assert set(views) == {
        "model.feature_store.user_features", "model.feature_store.user_purchase_windows", "model.feature_store.user_category_windows",
        "model.feature_store.product_popularity.v1", "model.feature_store.product_popularity.v2", "model.feature_store.user_last_purchase",
        "model.feature_store.user_spend_trend",
    }
    # dbt docs shows a node's `meta`: the feature-store metadata is there, for each version too.
    assert views["model.feature_store.user_features"]["meta"]["feature_store"] == {
        "entity": "user_id", "timestamp_column": "event_timestamp", "created_timestamp_column": "created_timestamp", "ttl": "1 day",
        "online": True, "owner": "growth-ml@example.com", "tags": ["user", "snapshot"],
    }
    assert all(node["meta"]["feature_store"]["entity"] for node in views.values())
    assert all(column["description"] for node in views.values() for column in node["columns"].values())
    v1, v2 = views["model.feature_store.product_popularity.v1"], views["model.feature_store.product_popularity.v2"]
    assert (v1["version"], v2["version"], v2["latest_version"]) == (1, 2, 2)
    assert "product_purchases_30d" in catalog["nodes"]["model.feature_store.product_popularity.v2"]["columns"]
    assert "product_purchases_1d" in catalog["nodes"]["model.feature_store.product_popularity.v1"]["columns"]
    # The ML model is in the lineage graph: an exposure whose parents are the views it reads.
    exposure = manifest["exposures"]["exposure.feature_store.purchase_propensity"]
    assert exposure["type"] == "ml" and exposure["config"]["meta"]["feature_store"]["features"]
    assert set(manifest["parent_map"]["exposure.feature_store.purchase_propensity"]) == {
        "model.feature_store.user_features", "model.feature_store.user_purchase_windows", "model.feature_store.product_popularity.v1",
    }
    assert "exposure.feature_store.purchase_propensity" in manifest["child_map"]["model.feature_store.product_popularity.v1"]
    assert (project / "target" / "index.html").exists()


def test_a_training_model_names_a_version_and_full_names_follow_it(parsed_project: Path, tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(parsed_project, project)
    join = ("{{ feature_store.point_in_time_join(spine=ref('stg_label_spine'), spine_timestamp='prediction_time', "
            "feature_views=['product_popularity.v1', 'product_popularity'], full_feature_names=true) }}")

    compiled = dbt(project, "compile", "--inline", join).stdout

    assert 'from "warehouse"."main"."product_popularity" as __fs_source' in compiled
    assert 'from "warehouse"."main"."product_popularity_v2" as __fs_source' in compiled  # no version: the latest
    assert '__fs_match_1."product_purchases_1d" as "product_popularity_v1__product_purchases_1d"' in compiled
    assert '__fs_match_2."product_purchases_30d" as "product_popularity__product_purchases_30d"' in compiled
