"""`featurestore init` and the project used as a dbt package by the repository it makes.

The repository is made by the CLI as a user would, then `dbt deps` and `dbt build` run in
it: it must build only its own models (none of this project's examples), its tests must
pass, the package's hooks must validate its feature views, and FeatureStore must serve it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from postgres_databases import fresh_database
from project_copies import ROOT, copy_project, dbt
from serving.scaffold import label_spine, project_name, user_features
from serving.store import FeatureStore

TTL = pd.Timedelta(days=1)
FEATURES = ["total_purchases", "avg_purchase_amount", "days_since_last_purchase"]


def featurestore(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "FEATURE_STORE_DUCKDB"}
    return subprocess.run([sys.executable, "-m", "serving", *args], cwd=cwd, env=env, capture_output=True, text=True)


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository made by `featurestore init`, after `dbt deps` and `dbt build`."""
    parent = tmp_path_factory.mktemp("init")
    result = featurestore("init", "my_repo", cwd=parent)
    assert result.returncode == 0, result.stderr
    directory = parent / "my_repo"
    dbt(directory, "deps")
    dbt(directory, "build")
    return directory


def manifest(directory: Path) -> dict:
    return json.loads((directory / "target" / "manifest.json").read_text())


# --- init -------------------------------------------------------------------------------


def test_init_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    target = tmp_path / "mine"
    target.mkdir()
    (target / "notes.txt").write_text("keep me")

    result = featurestore("init", "mine", cwd=tmp_path)

    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "error: mine is not empty; give a new or empty folder, so that no file of yours is overwritten"
    ]
    assert [path.name for path in target.iterdir()] == ["notes.txt"]
    assert (target / "notes.txt").read_text() == "keep me"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["mine"], "no staging folder is left behind"


@pytest.mark.parametrize(
    ("make", "argument", "message"),
    [
        (lambda root: (root / "taken").write_text("x"), "taken", "error: taken is a file; give a new or empty folder"),
        (lambda root: None, "no/such/repo", "error: the parent folder of no/such/repo does not exist; create {root}/no/such first"),
        (lambda root: None, "x" * 250, "error: cannot create " + "x" * 250 + ": File name too long"),
    ],
    ids=["a file", "a missing parent", "a name too long"],
)
def test_init_refuses_other_bad_targets_in_one_line(tmp_path: Path, make, argument: str, message: str) -> None:
    make(tmp_path)
    before = sorted(path.name for path in tmp_path.iterdir())

    result = featurestore("init", argument, cwd=tmp_path)

    assert result.returncode == 1
    assert result.stderr.splitlines() == [message.format(root=tmp_path)]
    assert sorted(path.name for path in tmp_path.iterdir()) == before


def test_init_accepts_an_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()

    result = featurestore("init", "empty", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert (tmp_path / "empty" / "data" / "user_features.parquet").exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["empty"]


def test_the_data_is_written_as_pandas_writes_it(repository: Path) -> None:
    schema = pq.read_schema(repository / "data" / "user_features.parquet")

    assert [(field.name, field.type) for field in schema] == [
        ("user_id", pa.int64()),
        ("event_timestamp", pa.timestamp("us")),
        ("total_purchases", pa.int64()),
        ("avg_purchase_amount", pa.float64()),
        ("days_since_last_purchase", pa.int64()),
    ]
    assert schema.field("event_timestamp").type.tz is None


def test_the_feature_view_declares_the_pandas_types_and_no_created_timestamp(repository: Path) -> None:
    node = manifest(repository)["nodes"]["model.my_repo.user_features"]

    assert {name: column["data_type"] for name, column in node["columns"].items()} == {
        "user_id": "bigint",
        "event_timestamp": "timestamp",
        "total_purchases": "bigint",
        "avg_purchase_amount": "double",
        "days_since_last_purchase": "bigint",
    }
    assert node["config"]["meta"]["feature_store"] == {
        "entity": "user_id", "timestamp_column": "event_timestamp", "ttl": "1 day", "online": True, "tags": ["user", "snapshot"],
    }


def test_the_data_is_the_same_on_every_init() -> None:
    first, second = user_features(), user_features()
    pd.testing.assert_frame_equal(first, second)
    pd.testing.assert_frame_equal(label_spine(first), label_spine(second))
    assert not first.duplicated(["user_id", "event_timestamp"]).any()


@pytest.mark.parametrize(
    ("folder", "name"),
    [("my_features", "my_features"), ("My Features-2", "my_features_2"), ("2026", "features_2026"), ("feature_store", "feature_store_repo")],
)
def test_the_dbt_project_name_comes_from_the_folder(folder: str, name: str) -> None:
    assert project_name(Path("/somewhere") / folder) == name


def test_the_repository_uses_this_project_as_a_local_package_with_dispatch(repository: Path) -> None:
    packages = (repository / "packages.yml").read_text()
    project = (repository / "dbt_project.yml").read_text()

    assert f"  - local: {ROOT}\n" in packages
    assert "  - macro_namespace: dbt\n    search_order: [my_repo, feature_store, dbt]\n" in project
    assert (repository / "dbt_packages" / "feature_store" / "dbt_project.yml").exists()


# --- the project as a dbt package -------------------------------------------------------


def test_the_repository_builds_only_its_own_models(repository: Path) -> None:
    built = manifest(repository)
    nodes = built["nodes"].values()

    assert sorted(node["unique_id"] for node in nodes if node["resource_type"] == "model") == [
        "model.my_repo.training_set",
        "model.my_repo.user_features",
    ]
    assert sorted(built["sources"]) == ["source.my_repo.files.label_spine", "source.my_repo.files.user_features"]
    assert built["unit_tests"] == {}
    assert {node["package_name"] for node in nodes if node["resource_type"] == "test"} == {"my_repo"}
    hooks = sorted(node["name"] for node in nodes if node["resource_type"] == "operation")
    assert hooks == [f"feature_store-on-run-start-{index}" for index in range(3)], "the package's hooks run in the consumer"
    with duckdb.connect(str(repository / "target" / "warehouse.duckdb"), read_only=True) as connection:
        tables = connection.sql("select table_schema, table_name from information_schema.tables order by all").fetchall()
    assert tables == [("main", "training_set"), ("main", "user_features")]


def test_dbt_test_passes_in_the_repository(repository: Path) -> None:
    result = dbt(repository, "test")

    # Six data tests, and the package's three on-run-start hooks.
    assert "Done. PASS=9 WARN=0 ERROR=0 SKIP=0 NO-OP=0 TOTAL=9" in result.stdout
    assert "6 data tests" in result.stdout


def test_the_package_validates_the_repositorys_feature_views(repository: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(repository, broken, symlinks=True, ignore=shutil.ignore_patterns("target"))
    yml = broken / "models" / "user_features.yml"
    yml.write_text(yml.read_text().replace("ttl: 1 day", "ttl: 1 fortnight"))

    result = dbt(broken, "build", check=False)

    assert result.returncode != 0
    assert "feature view 'user_features': config.meta.feature_store.ttl" in result.stdout
    assert "fortnight" in result.stdout


def test_the_package_installs_from_git_too(repository: Path, tmp_path: Path) -> None:
    """dbt deps clones a git package (it symlinks a local one): the same layout works."""
    origin = copy_project(tmp_path / "origin")
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]
    for command in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-q", "-m", "package"], ["tag", "v0"]):
        subprocess.run([*git, *command], cwd=origin, check=True, capture_output=True)
    consumer = tmp_path / "consumer"
    shutil.copytree(repository, consumer, ignore=shutil.ignore_patterns("target", "dbt_packages", "package-lock.yml"))
    (consumer / "packages.yml").write_text(f'packages:\n  - git: "file://{origin}"\n    revision: v0\n')

    dbt(consumer, "deps")
    dbt(consumer, "build")

    installed = consumer / "dbt_packages" / "feature_store"
    assert installed.is_dir() and not installed.is_symlink()
    models = sorted(node["unique_id"] for node in manifest(consumer)["nodes"].values() if node["resource_type"] == "model")
    assert models == ["model.my_repo.training_set", "model.my_repo.user_features"]


def test_a_users_own_file_in_place_of_the_example_builds_and_serves(repository: Path, tmp_path: Path) -> None:
    """Step 2 of the tutorial: the user's own file, as pandas 2 writes it (nanoseconds)."""
    own = tmp_path / "own"
    shutil.copytree(repository, own, symlinks=True, ignore=shutil.ignore_patterns("target"))
    frame = pd.DataFrame({
        "user_id": np.array([1001, 1001, 1002], dtype="int64"),
        "event_timestamp": pd.to_datetime(["2025-06-01 00:00", "2025-06-02 00:00", "2025-06-02 00:00"]).astype("datetime64[ns]"),
        "total_purchases": np.array([4, 5, 1], dtype="int64"),
        "avg_purchase_amount": [10.5, 11.0, 99.99],
        "days_since_last_purchase": np.array([0, 1, 30], dtype="int64"),
    })
    frame.to_parquet(own / "data" / "user_features.parquet", index=False)
    assert pq.read_schema(own / "data" / "user_features.parquet").field("event_timestamp").type == pa.timestamp("ns")

    dbt(own, "build")
    result = FeatureStore(project_dir=own).get_historical_features(
        pd.DataFrame({"user_id": [1001, 1002, 1001], "event_timestamp": pd.to_datetime(["2025-06-02 12:00", "2025-06-02 12:00", "2025-06-05 00:00"])}),
        ["user_features:total_purchases", "user_features:avg_purchase_amount"],
    )

    assert result["total_purchases"].tolist() == [5, 1, pd.NA]
    assert result["avg_purchase_amount"].tolist()[:2] == [11.0, 99.99]


def brute_force(snapshots: pd.DataFrame, user: int, at: pd.Timestamp) -> dict[str, object]:
    """The as-of rule by hand: the user's latest snapshot with at - ttl <= time <= at."""
    rows = snapshots[(snapshots["user_id"] == user) & (snapshots["event_timestamp"] <= at) & (snapshots["event_timestamp"] >= at - TTL)]
    if rows.empty:
        return {feature: None for feature in FEATURES}
    latest = rows.loc[rows["event_timestamp"].idxmax()]
    return {feature: latest[feature].item() for feature in FEATURES}


def test_feature_store_serves_the_repository(repository: Path) -> None:
    snapshots = pd.read_parquet(repository / "data" / "user_features.parquet")
    rng = np.random.default_rng(3)
    users = rng.integers(1, 52, size=300)  # 51 is an unknown user
    times = pd.Timestamp("2025-12-31") + pd.to_timedelta(rng.integers(0, 33 * 86_400, size=300), unit="s")
    times = times.where(rng.random(300) > 0.2, pd.Timestamp("2026-01-05") + pd.to_timedelta(rng.integers(0, 3, size=300), unit="D"))
    entity_df = pd.DataFrame({"user_id": users.astype("int64"), "event_timestamp": times})

    store = FeatureStore(project_dir=repository)
    result = store.get_historical_features(entity_df, [f"user_features:{feature}" for feature in FEATURES])

    assert [view.name for view in store.list_feature_views()] == ["user_features"]
    got = [{feature: (None if pd.isna(row[feature]) else row[feature]) for feature in FEATURES} for _, row in result.iterrows()]
    expected = [brute_force(snapshots, user, at) for user, at in zip(users, times)]
    assert got == expected
    assert sum(row["total_purchases"] is None for row in expected) > 10, "some rows fall outside the ttl or have no user"


def test_the_training_set_is_point_in_time_correct(repository: Path) -> None:
    snapshots = pd.read_parquet(repository / "data" / "user_features.parquet")
    spine = pd.read_parquet(repository / "data" / "label_spine.parquet")
    with duckdb.connect(str(repository / "target" / "warehouse.duckdb"), read_only=True) as connection:
        training = connection.sql("select * from training_set").df()

    assert training["user_id"].tolist() == spine["user_id"].tolist()
    expected = [brute_force(snapshots, user, at)["total_purchases"] for user, at in zip(spine["user_id"], spine["prediction_time"])]
    assert [None if pd.isna(value) else int(value) for value in training["total_purchases"]] == expected


@pytest.fixture
def postgres_database() -> Iterator[str]:
    with fresh_database("fs_init") as name:
        yield name


def test_the_dispatch_config_gives_dbt_the_packages_contract_macros(repository: Path, tmp_path: Path, postgres_database: str) -> None:
    """On Postgres, dbt's contract check casts NULL to each YAML type as written (`double`
    does not exist there) unless the package's override, found through `dispatch:`,
    translates it first."""
    copy = tmp_path / "on_postgres"
    shutil.copytree(repository, copy, symlinks=True, ignore=shutil.ignore_patterns("target"))
    with (copy / "profiles.yml").open("a") as profiles:
        profiles.write(
            "    postgres:\n      type: postgres\n      host: 127.0.0.1\n      port: 5432\n      user: postgres\n"
            f"      password: ''\n      dbname: {postgres_database}\n      schema: features\n      threads: 2\n"
        )
    env = os.environ | {"FEATURE_STORE_PG_DBNAME": postgres_database}
    load = [sys.executable, str(ROOT / "sample_data" / "load_postgres.py"), "--raw", "data", "--schema", "files"]
    subprocess.run(load, cwd=copy, env=env, check=True, capture_output=True)

    built = dbt(copy, "build", "--target", "postgres")
    assert "Done. PASS=11 WARN=0 ERROR=0" in built.stdout

    project = copy / "dbt_project.yml"
    project.write_text(project.read_text().replace("  - macro_namespace: dbt\n", "  - macro_namespace: not_dbt\n"))
    without = dbt(copy, "build", "--target", "postgres", "--select", "user_features", check=False)
    assert without.returncode != 0
    assert 'type "double" does not exist' in without.stdout
