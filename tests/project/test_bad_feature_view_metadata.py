"""A broken feature-view declaration stops `dbt build` before anything is built, with a
message naming the model and the field. Each test breaks a fresh copy of the project."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from project_copies import copy_project, dbt

# The user_features declaration in models/features/features.yml, as the project ships it.
USER_FEATURES_META = """        entity: user_id
        timestamp_column: event_timestamp
        created_timestamp_column: created_timestamp
        ttl: 1 day
"""


# Its key column; user_features is the first model in the file, so this is its user_id.
USER_ID_COLUMN = """  - name: user_id
    data_type: bigint
"""


def build_with(tmp_path: Path, original: str, replacement: str) -> str:
    """dbt build output (whitespace folded) after the first `original` in features.yml is replaced."""
    project = copy_project(tmp_path / "project")
    features_yml = project / "models" / "features" / "features.yml"
    text = features_yml.read_text()
    assert original in text, f"features.yml changed; update the test's copy of {original!r}"
    features_yml.write_text(text.replace(original, replacement, 1))
    result = dbt(project, "build", check=False)
    assert result.returncode != 0, result.stdout[-3000:]
    return re.sub(r"\s+", " ", result.stdout + result.stderr)


def build_with_meta(tmp_path: Path, replacement: str) -> str:
    return build_with(tmp_path, USER_FEATURES_META, replacement)


@pytest.mark.parametrize(
    ("replacement", "message"),
    [
        (
            USER_FEATURES_META + "        colour: blue\n",
            "feature view 'user_features': config.meta.feature_store.colour is not a known field; valid fields: entity,",
        ),
        (
            USER_FEATURES_META.replace("timestamp_column: event_timestamp", "timestamp_column: snapshot_at"),
            "feature view 'user_features': config.meta.feature_store.timestamp_column names column 'snapshot_at',"
            " which is not among the model's columns",
        ),
        (
            USER_FEATURES_META.replace("ttl: 1 day", "ttl: 1 month"),
            "feature view 'user_features': config.meta.feature_store.ttl is 1 month; expected a positive whole number and a unit",
        ),
    ],
    ids=["unknown_key", "missing_timestamp_column", "ttl_in_months"],
)
def test_bad_metadata_fails_the_build_naming_model_and_field(tmp_path: Path, replacement: str, message: str) -> None:
    output = build_with_meta(tmp_path, replacement)
    assert message in output, output[-3000:]
    # Nothing ran: the check happens in on-run-start, before the first model.
    assert "OK created" not in output


def test_malformed_yaml_fails_the_build(tmp_path: Path) -> None:
    output = build_with_meta(tmp_path, USER_FEATURES_META + "        tags: [user, snapshot\n")
    assert "features/features.yml" in output and "Syntax error" in output, output[-3000:]


def assert_refused_before_building(output: str, message: str) -> None:
    assert message in output, output[-3000:]
    assert "OK created" not in output


def test_an_entity_column_without_a_data_type_fails_the_build(tmp_path: Path) -> None:
    output = build_with(tmp_path, USER_ID_COLUMN, "  - name: user_id\n")
    assert_refused_before_building(output, "feature view 'user_features': entity column 'user_id' has no data_type; declare it")


def test_an_online_entity_key_the_online_store_cannot_encode_fails_the_build(tmp_path: Path) -> None:
    output = build_with(tmp_path, USER_ID_COLUMN, USER_ID_COLUMN.replace("bigint", "date"))
    assert_refused_before_building(
        output,
        "feature view 'user_features': entity column 'user_id' is date, which the online store cannot use as a key"
        " (online: true); key types: integer (tinyint, smallint, integer, int, bigint,",
    )


def test_an_entity_that_is_the_timestamp_column_fails_the_build(tmp_path: Path) -> None:
    output = build_with_meta(tmp_path, USER_FEATURES_META.replace("entity: user_id", "entity: [user_id, event_timestamp]"))
    assert_refused_before_building(
        output, "feature view 'user_features': column 'event_timestamp' is both an entity and the timestamp_column;"
    )


def test_online_given_as_1_fails_the_build(tmp_path: Path) -> None:
    online = USER_FEATURES_META + "        online: true\n"
    output = build_with(tmp_path, online, USER_FEATURES_META + "        online: 1\n")
    assert_refused_before_building(output, "feature view 'user_features': config.meta.feature_store.online is 1; expected true or false")
