"""Every bad input of issue 6, as a user meets it: one line naming the bad value and the
valid ones, and exit 1 for an error the user can fix, 2 for bad usage, 3 for a bug (its
traceback written to a file). In Python, each is a FeatureStoreError subclass.

Offline reads use a dbt-built copy of the project; online reads the Redis at
127.0.0.1:6379 db 13 under a key prefix of their own, deleted afterwards."""

from __future__ import annotations

import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import pytest
import redis

from project_copies import copy_project, dbt
from serving import FeatureStore
from serving.errors import ColumnClashError, EntityKeyError, FeatureStoreError, InputError, RegistryError, UnknownFeatureError

REDIS_URL = "redis://127.0.0.1:6379/13"
AS_OF = "2026-02-01T12:00:00Z"
FEATURE = "user_features:total_purchases"
INTEGER_KEY = "user_id needs an integer (int, numpy integer or pandas Int64; not bool, float or str)"


def featurestore(project_dir: Path, *args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "serving", "--project-dir", str(project_dir), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **env},
    )


def one_error_line(result: subprocess.CompletedProcess[str], code: int = 1) -> str:
    """The single stderr line of a failed run, without its `error: ` head."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0].removeprefix("error: ")


@pytest.fixture(scope="module")
def spine(built_project: Path) -> pd.DataFrame:
    """Ten real (user, time) rows whose user_features are known at that time."""
    spine = pd.read_parquet(built_project / "data" / "sample" / "label_spine.parquet")
    spine = spine.rename(columns={"prediction_time": "event_timestamp"})[["user_id", "event_timestamp"]]
    known = FeatureStore(built_project).get_historical_features(spine, [FEATURE])
    return spine[known["total_purchases"].notna()].head(10).reset_index(drop=True)


@pytest.fixture(scope="module")
def store(built_project: Path) -> Iterator[FeatureStore]:
    prefix = f"fstest-bad-{uuid.uuid4().hex[:12]}"
    yield FeatureStore(built_project, redis_url=REDIS_URL, redis_prefix=prefix)
    client = redis.Redis.from_url(REDIS_URL)
    for key in list(client.scan_iter(match=f"{prefix}:*", count=5000)):
        client.unlink(key)
    client.close()


@pytest.fixture(scope="module")
def online(store: FeatureStore) -> FeatureStore:
    store.materialize(as_of=AS_OF, feature_views=["user_features", "user_category_windows"], progress=False)
    return store


# --- historical: keys -------------------------------------------------------------


def test_a_string_key_for_an_integer_entity_is_refused_naming_row_and_value(store, spine):
    frame = spine.astype({"user_id": object})
    frame.loc[3, "user_id"] = "abc"
    with pytest.raises(EntityKeyError) as raised:
        store.get_historical_features(frame, [FEATURE])
    assert str(raised.value) == f"entity_df row 3: user_id='abc' is a str; {INTEGER_KEY}"


@pytest.mark.parametrize(("bad", "kind"), [(True, "bool"), ("1", "str"), (1.0, "float")])
def test_a_key_of_another_type_never_matches_by_cast_offline_or_online(online, spine, bad, kind):
    frame = pd.DataFrame({"user_id": [bad], "event_timestamp": spine["event_timestamp"][:1]})
    with pytest.raises(EntityKeyError) as offline:
        online.get_historical_features(frame, [FEATURE])
    with pytest.raises(EntityKeyError) as read:
        online.get_online_features([FEATURE], [{"user_id": bad}])
    assert str(offline.value) == f"entity_df row 0: user_id={bad!r} is a {kind}; {INTEGER_KEY}"
    assert str(read.value) == f"entity row 0: user_id={bad!r} is a {kind}; {INTEGER_KEY}"


def test_numpy_and_pandas_integer_keys_are_integers(store, spine):
    expected = store.get_historical_features(spine, [FEATURE])["total_purchases"].tolist()
    for dtype in ("int32", "Int64", "uint16"):
        got = store.get_historical_features(spine.astype({"user_id": dtype}), [FEATURE])
        assert got["total_purchases"].tolist() == expected


def test_a_missing_key_value_is_refused(store, spine):
    frame = spine.astype({"user_id": "Int64"})
    frame.loc[2, "user_id"] = pd.NA
    with pytest.raises(EntityKeyError) as raised:
        store.get_historical_features(frame, [FEATURE])
    assert str(raised.value) == f"entity_df row 2: user_id=<NA> is missing; {INTEGER_KEY}"


# --- historical: timestamps and columns -----------------------------------------------


def test_integer_epoch_timestamps_in_entity_df_are_refused_suggesting_a_unit(store, spine):
    frame = spine.assign(event_timestamp=[1767225600] * len(spine))
    with pytest.raises(InputError) as raised:
        store.get_historical_features(frame, [FEATURE])
    assert str(raised.value) == (
        "entity_df column 'event_timestamp' holds int64 values (1767225600 in entity_df row 0), not timestamps; "
        "if they are epoch times, convert them with pd.to_datetime(entity_df['event_timestamp'], unit='s') (or unit='ms', 'us', 'ns')"
    )


def test_text_timestamps_in_entity_df_are_refused_not_cast(store, spine):
    frame = spine.assign(event_timestamp="2026-01-20")
    with pytest.raises(InputError, match=r"^entity_df column 'event_timestamp' holds str values \('2026-01-20' in entity_df row 0\), not timestamps; convert them with pd\.to_datetime\(entity_df\['event_timestamp'\], format='ISO8601', utc=True\)"):
        store.get_historical_features(frame, [FEATURE])


def test_a_timestamp_column_that_does_not_exist_is_named_with_the_columns(store, spine):
    with pytest.raises(InputError) as raised:
        store.get_historical_features(spine, [FEATURE], timestamp_column="prediction_time")
    assert str(raised.value) == (
        "entity_df has no timestamp column 'prediction_time'; its columns: user_id, event_timestamp "
        "(name the timestamp column with timestamp_column=...)"
    )


def test_the_cli_suggests_its_own_flag_not_the_python_argument(built_project, spine, tmp_path):
    source = tmp_path / "spine.parquet"
    spine.rename(columns={"event_timestamp": "at"}).to_parquet(source)
    result = featurestore(built_project, "historical", "--entities", str(source), "--features", FEATURE, "--out", str(tmp_path / "o.parquet"))
    assert one_error_line(result) == (
        f"{source} has no timestamp column 'event_timestamp'; its columns: user_id, at "
        "(name the timestamp column with --timestamp-column ...)"
    )


def test_entity_df_as_a_list_of_dicts_is_taken_as_a_dataframe(store, spine):
    rows = spine.to_dict("records")
    got = store.get_historical_features(rows, [FEATURE])
    expected = store.get_historical_features(spine, [FEATURE])
    assert isinstance(got, pd.DataFrame)
    assert got["total_purchases"].tolist() == expected["total_purchases"].tolist()
    assert got["user_id"].tolist() == spine["user_id"].tolist()


def test_entity_df_of_another_shape_is_refused(store):
    with pytest.raises(InputError) as raised:
        store.get_historical_features("spine.parquet", [FEATURE])
    assert str(raised.value) == "entity_df must be a pandas DataFrame or a non-empty list of dicts (one per row); got str 'spine.parquet'"


# --- no silent overwrites ---------------------------------------------------------------


def test_a_feature_named_like_an_entity_df_column_is_refused_suggesting_full_feature_names(store, spine):
    frame = spine.assign(total_purchases=-1)
    with pytest.raises(ColumnClashError) as raised:
        store.get_historical_features(frame, [FEATURE])
    assert str(raised.value) == (
        "feature(s) total_purchases would overwrite the entity_df column(s) of the same name; "
        "ask for full_feature_names=True (columns named view__feature), or rename those columns"
    )
    full = store.get_historical_features(frame, [FEATURE], full_feature_names=True)
    assert full["total_purchases"].tolist() == [-1] * len(frame)
    assert full["user_features__total_purchases"].notna().all()


def test_the_cli_suggests_full_feature_names_as_its_flag(built_project, spine, tmp_path):
    source = tmp_path / "spine.parquet"
    spine.assign(total_purchases=-1).to_parquet(source)
    result = featurestore(built_project, "historical", "--entities", str(source), "--features", FEATURE, "--out", str(tmp_path / "o.parquet"))
    assert one_error_line(result) == (
        "feature(s) total_purchases would overwrite the entity_df column(s) of the same name; "
        "ask for --full-feature-names (columns named view__feature), or rename those columns"
    )


def test_a_string_given_as_features_is_one_reference(online, spine):
    as_list = online.get_historical_features(spine, [FEATURE])
    as_string = online.get_historical_features(spine, FEATURE)
    assert as_string.columns.tolist() == as_list.columns.tolist() == ["user_id", "event_timestamp", "total_purchases"]
    assert as_string["total_purchases"].tolist() == as_list["total_purchases"].tolist()
    assert online.get_online_features(FEATURE, [{"user_id": 1}]).to_dict() == online.get_online_features([FEATURE], [{"user_id": 1}]).to_dict()


def test_a_string_given_as_feature_views_to_materialize_is_one_view(store):
    summary = store.materialize(as_of=AS_OF, feature_views="user_features", progress=False)
    assert [export.view for export in summary.views] == ["user_features"]
    assert summary.entities > 0


# --- online entity_rows shapes ----------------------------------------------------------


def test_entity_rows_as_a_dict_of_lists_or_a_dataframe_read_like_a_list_of_dicts(online, spine):
    users = spine["user_id"].tolist()
    features = ["user_category_windows:category_spend_30d", "user_features:total_purchases"]
    categories = ["books", "toys"] * (len(users) // 2)
    rows = [{"user_id": user, "category": category} for user, category in zip(users, categories)]
    expected = online.get_online_features(features, rows).to_dict(include_metadata=True)
    assert any(value is not None for value in expected["total_purchases"])
    by_columns = online.get_online_features(features, {"user_id": users, "category": categories})
    by_frame = online.get_online_features(features, pd.DataFrame({"category": categories, "user_id": np.array(users)}))
    assert by_columns.to_dict(include_metadata=True) == expected
    assert by_frame.to_dict(include_metadata=True) == expected


@pytest.mark.parametrize(
    ("entity_rows", "message"),
    [
        ({"user_id": 7}, "entity_rows['user_id'] must be a list of values (one per entity); got int 7 (one entity is [{'user_id': ...}])"),
        ({"user_id": [1, 2], "category": ["books"]}, "entity_rows' key lists differ in length: user_id has 2, category has 1"),
        (["user_id=1"], "entity row 0 is str 'user_id=1', not a dict of entity keys such as {'user_id': ...}"),
        ("user_id=1", "entity_rows must be a list of dicts (one per entity), a dict of lists (one per key) or a DataFrame; got str 'user_id=1'"),
    ],
    ids=["dict_of_scalars", "lists_of_other_lengths", "list_of_strings", "string"],
)
def test_entity_rows_of_another_shape_are_refused(online, entity_rows, message):
    features = ["user_features:total_purchases"] if "category" not in str(entity_rows) else ["user_category_windows:category_spend_30d"]
    with pytest.raises(InputError) as raised:
        online.get_online_features(features, entity_rows)
    assert str(raised.value) == message


def test_a_dict_of_lists_with_a_wrong_key_names_it(online):
    with pytest.raises(EntityKeyError) as raised:
        online.get_online_features([FEATURE], {"customer": [1]})
    assert str(raised.value) == "entity_rows: missing entity key(s) user_id; unexpected key(s) customer; the requested views need exactly: user_id"


# --- entities files (CSV and Parquet) -----------------------------------------------------


def historical(project: Path, source: Path, out: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return featurestore(project, "historical", "--entities", str(source), "--features", FEATURE, "--out", str(out), *flags)


def test_a_csv_with_a_string_key_for_an_integer_entity_names_the_line_and_value(built_project, spine, tmp_path):
    source = tmp_path / "spine.csv"
    spine.astype({"user_id": object}).assign(user_id=lambda f: f["user_id"].where(f.index != 4, "u-17")).to_csv(source, index=False)
    out = tmp_path / "o.parquet"
    assert one_error_line(historical(built_project, source, out)) == f"{source} line 6: user_id='u-17' is not an integer; user_id is an integer key"
    assert not out.exists()


def test_a_parquet_string_key_for_an_integer_entity_names_the_row(built_project, spine, tmp_path):
    source = tmp_path / "spine.parquet"
    spine.astype({"user_id": str}).to_parquet(source)
    message = one_error_line(historical(built_project, source, tmp_path / "o.parquet"))
    assert message == f"{source} row 1: user_id='{spine['user_id'][0]}' is a str; {INTEGER_KEY}"


def test_csv_epoch_seconds_are_refused_without_a_unit_and_right_with_one(built_project, spine, tmp_path):
    seconds = spine.assign(event_timestamp=spine["event_timestamp"].dt.floor("s"))
    source = tmp_path / "spine.csv"
    epochs = seconds["event_timestamp"].dt.as_unit("s").astype("int64")
    seconds.assign(event_timestamp=epochs).to_csv(source, index=False)
    out = tmp_path / "o.parquet"
    assert one_error_line(historical(built_project, source, out)) == (
        f"{source} line 2: event_timestamp='{epochs[0]}' is an integer, not an ISO 8601 time; if the column holds epoch times, "
        "pass --timestamp-unit (s, ms, us, ns), or --timestamp-format for another layout (e.g. %Y%m%d)"
    )
    assert not out.exists()

    done = historical(built_project, source, out, "--timestamp-unit", "s")
    assert done.returncode == 0, done.stderr
    written = pd.read_parquet(out)
    expected = FeatureStore(built_project).get_historical_features(seconds, [FEATURE])
    assert written["event_timestamp"].tolist() == expected["event_timestamp"].tolist()
    assert written["total_purchases"].tolist() == expected["total_purchases"].tolist()


def test_csv_dates_readable_day_first_or_month_first_are_refused_until_a_format_says(built_project, tmp_path):
    source = tmp_path / "spine.csv"
    source.write_text("user_id,event_timestamp\n13,15/01/2026\n107,10/01/2026\n")
    out = tmp_path / "o.csv"
    assert one_error_line(historical(built_project, source, out)) == (
        f"{source} line 2: event_timestamp='15/01/2026' is not ISO 8601, and dates written this way read day-first or "
        "month-first; pass --timestamp-format %d/%m/%Y (day first) or %m/%d/%Y (month first)"
    )
    assert not out.exists()

    done = historical(built_project, source, out, "--timestamp-format", "%d/%m/%Y")
    assert done.returncode == 0, done.stderr
    assert pd.read_csv(out)["event_timestamp"].tolist() == ["2026-01-15 00:00:00+00:00", "2026-01-10 00:00:00+00:00"]
    wrong_order = historical(built_project, source, out, "--timestamp-format", "%m/%d/%Y")
    assert one_error_line(wrong_order) == f"{source} line 2: event_timestamp='15/01/2026' is not a time in --timestamp-format %m/%d/%Y"


def test_csv_text_that_pandas_would_guess_is_refused(built_project, tmp_path):
    source = tmp_path / "spine.csv"
    source.write_text("user_id,event_timestamp\n13,2026-01-15T10:00:00Z\n107,now\n")
    assert one_error_line(historical(built_project, source, tmp_path / "o.csv")) == (
        f"{source} line 3: event_timestamp='now' is not an ISO 8601 time (e.g. 2024-01-15 or 2024-01-15T10:00:00Z); "
        "pass --timestamp-format (strftime, e.g. %d/%m/%Y %H:%M) for another layout"
    )


def test_csv_iso_timestamps_with_offsets_are_read_as_utc_instants(built_project, spine, tmp_path):
    user, at = int(spine["user_id"][0]), spine["event_timestamp"][0].floor("s")
    shifted = at.tz_convert("Etc/GMT-2").isoformat()  # the same instant at +02:00
    source = tmp_path / "spine.csv"
    source.write_text(f"user_id,event_timestamp,label\n{user},{shifted},NA\n{user},{at.tz_localize(None)},1\n")
    out = tmp_path / "o.parquet"
    done = historical(built_project, source, out)
    assert done.returncode == 0, done.stderr
    written = pd.read_parquet(out)
    expected = FeatureStore(built_project).get_historical_features(pd.DataFrame({"user_id": [user], "event_timestamp": [at]}), [FEATURE])
    assert written["event_timestamp"].tolist() == [at, at]
    assert written["total_purchases"].tolist() == expected["total_purchases"].tolist() * 2


# --- CLI arguments --------------------------------------------------------------------------


def test_an_empty_as_of_is_a_usage_error(built_project):
    result = featurestore(built_project, "materialize", "--as-of", "", REDIS_URL=REDIS_URL, FEATURE_STORE_REDIS_PREFIX="fstest-never-written")
    assert result.returncode == 2
    assert "Error: Invalid value for --as-of: '' is not an ISO 8601 time; e.g. 2026-02-01T12:00:00Z or 2026-02-01" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("as_of", ["", "now", 1767225600])
def test_an_as_of_that_is_no_time_is_refused_in_python(store, as_of):
    with pytest.raises(InputError, match=r"^as_of .* (is not an ISO 8601 time|is a int; pass a datetime)"):
        store.materialize(as_of=as_of, feature_views=["user_features"], progress=False)


def test_out_whose_parent_is_a_file_is_refused_before_any_work(built_project, spine, tmp_path):
    source = tmp_path / "spine.parquet"
    spine.to_parquet(source)
    blocker = tmp_path / "results"
    blocker.write_text("not a folder")
    out = blocker / "training.parquet"
    assert one_error_line(historical(built_project, source, out)) == f"--out {out}: {blocker} is a file, not a folder; choose an output path in a folder"
    assert blocker.read_text() == "not a folder"


@pytest.fixture
def http_server() -> Iterator[int]:
    """A real HTTP server on a free loopback port (what a mistyped Redis port may reach)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("command", [["status"], ["get", FEATURE, "--entity", "user_id=1"], ["materialize", "--as-of", AS_OF]])
def test_a_redis_url_that_reaches_an_http_server_is_named_masked(built_project, http_server, command):
    url = f"redis://:s3cret@127.0.0.1:{http_server}/0"
    message = one_error_line(featurestore(built_project, "--redis-url", url, *command))
    assert message.startswith(f"the server at redis://:***@127.0.0.1:{http_server}/0 does not speak the Redis protocol (")
    assert message.endswith("); check the URL's host and port")
    assert "s3cret" not in message


def test_a_redis_url_with_a_db_the_server_lacks_is_named(built_project):
    message = one_error_line(featurestore(built_project, "--redis-url", "redis://127.0.0.1:6379/99", "status"))
    assert message == (
        "Redis at redis://127.0.0.1:6379/99 has no database 99 (DB index is out of range); "
        "use a db index the server has (0 to 15 unless its `databases` setting says more)"
    )


# --- the project -------------------------------------------------------------------------------


def test_the_cli_outside_a_project_says_so_once_and_leaves_no_logs(built_project, tmp_path):
    elsewhere = tmp_path / "not_a_project"
    elsewhere.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "serving", "list"], capture_output=True, text=True, cwd=elsewhere,
        env={**os.environ, "DBT_PROFILES_DIR": str(built_project)},
    )
    assert one_error_line(result) == (
        f"{elsewhere} is not a dbt project (it has no dbt_project.yml); run featurestore in your project's folder, or pass --project-dir ..."
    )
    assert result.stdout == ""
    assert list(elsewhere.iterdir()) == []


@pytest.mark.parametrize(
    ("manifest", "problem"),
    [("[1, 2]", "it holds a JSON list, not an object"), ('{"nodes": []}', "it lacks the 'metadata' and 'nodes' objects"),
     ('{"metadata": {}, "nodes": {"model.x": 7}}', "its node 'model.x' is not a dbt node")],
    ids=["list", "nodes_a_list", "node_a_number"],
)
def test_a_manifest_of_the_wrong_shape_is_named(tmp_path, manifest, problem):
    project = copy_project(tmp_path / "project")
    (project / "target").mkdir()
    (project / "target" / "manifest.json").write_text(manifest)
    message = one_error_line(featurestore(project, "list"))
    assert message == f"{project / 'target' / 'manifest.json'} is not a dbt manifest: {problem}; delete it and run `dbt parse` to write it again"
    with pytest.raises(RegistryError):
        FeatureStore(project)


# The user_features declaration in models/features/features.yml, as the project ships it.
USER_FEATURES_META = """        entity: user_id
        timestamp_column: event_timestamp
        created_timestamp_column: created_timestamp
        ttl: 1 day
        online: true
"""


def with_meta(tmp_path: Path, replacement: str) -> Path:
    project = copy_project(tmp_path / "project")
    features_yml = project / "models" / "features" / "features.yml"
    text = features_yml.read_text()
    assert USER_FEATURES_META in text, "features.yml changed; update USER_FEATURES_META"
    features_yml.write_text(text.replace(USER_FEATURES_META, replacement, 1))
    return project


def test_a_ttl_beyond_100_years_is_refused_at_validation_naming_the_range(tmp_path):
    project = with_meta(tmp_path, USER_FEATURES_META.replace("ttl: 1 day", "ttl: 999999999 weeks"))
    message = (
        "feature view 'user_features': config.meta.feature_store.ttl is 999999999 weeks; expected a positive whole number "
        "and a unit (second, minute, hour, day or week), at most 36500 days (100 years), for example '1 day', '12 hours' or '90 days'"
    )
    listed = one_error_line(featurestore(project, "list"))
    assert listed == f"{message} (dbt rendering macro feature_store.feature_view_spec for target 'duckdb', a duckdb target)"
    built = dbt(project, "build", check=False)
    assert built.returncode != 0 and message in re.sub(r"\s+", " ", built.stdout)
    assert "OK created" not in built.stdout


@pytest.mark.parametrize(
    ("replacement", "message"),
    [
        (USER_FEATURES_META.replace("online: true", "online: 1"), "config.meta.feature_store.online is 1; expected true or false"),
        (
            USER_FEATURES_META.replace("entity: user_id", "entity: [user_id, event_timestamp]"),
            "column 'event_timestamp' is both an entity and the timestamp_column; an entity key cannot be a time column",
        ),
    ],
    ids=["online_1", "entity_is_the_timestamp"],
)
def test_metadata_dbt_refuses_is_refused_by_the_cli_too(tmp_path, replacement, message):
    project = with_meta(tmp_path, replacement)
    assert one_error_line(featurestore(project, "list")) == (
        f"feature view 'user_features': {message} (dbt rendering macro feature_store.feature_view_spec for target 'duckdb', a duckdb target)"
    )


def test_a_yaml_error_dbt_reports_is_shown_once_in_one_line(tmp_path):
    project = with_meta(tmp_path, USER_FEATURES_META + "        tags: [user, snapshot\n")
    message = one_error_line(featurestore(project, "list"))
    assert message.startswith(f"dbt parse failed in {project}: Parsing Error Error reading feature_store: features/features.yml - Runtime Error Syntax error near line")
    assert message.count("Syntax error") == 1


@pytest.fixture
def built_copy(built_project: Path, tmp_path: Path) -> Path:
    """A copy of the built project (warehouse included) that a test may change."""
    project = tmp_path / "project"
    shutil.copytree(built_project, project, ignore=shutil.ignore_patterns("feature_store_render"))
    return project


def test_a_column_added_to_the_yaml_without_rebuilding_says_to_run_dbt_build(built_copy, spine, tmp_path):
    features_yml = built_copy / "models" / "features" / "features.yml"
    column = "  - name: total_purchases\n"
    text = features_yml.read_text()
    assert column in text
    features_yml.write_text(text.replace(column, "  - name: lifetime_value\n    data_type: double\n    description: New.\n" + column, 1))
    source = tmp_path / "spine.parquet"
    spine.to_parquet(source)
    message = one_error_line(featurestore(built_copy, "historical", "--entities", str(source), "--features", "user_features:*", "--out", str(tmp_path / "o.parquet")))
    assert message.startswith('Binder Error: Referenced column "lifetime_value" not found in FROM clause!')
    assert message.endswith(
        f"in DuckDB file {built_copy / 'target' / 'warehouse.duckdb'}; a column declared in the models' YAML is not in the warehouse: "
        "run `dbt build` to rebuild the changed models"
    )


def test_an_internal_error_exits_3_naming_the_file_that_holds_the_traceback(built_copy):
    """A render cache file garbled by hand is not a user error but a state the code never expects."""
    listed = featurestore(built_copy, "list")
    assert listed.returncode == 0, listed.stderr
    caches = [path for path in (built_copy / "target" / "feature_store_render").rglob("*.json") if path.parent.name != "feature_store_render"]
    assert caches
    for path in caches:
        path.write_text("[]")

    result = featurestore(built_copy, "list")

    assert result.returncode == 3, result.stderr
    match = re.fullmatch(r"internal error \(a bug in featurestore\): TypeError: (.+); the full traceback is in (\S+)\n", result.stderr)
    assert match, result.stderr
    trace = Path(match[2])
    try:
        text = trace.read_text()
        assert "Traceback (most recent call last)" in text and "TypeError" in text and text.startswith("featurestore --project-dir")
    finally:
        trace.unlink()
