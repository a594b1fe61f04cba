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


def build_with_meta(tmp_path: Path, replacement: str) -> str:
    project = copy_project(tmp_path / "project")
    features_yml = project / "models" / "features" / "features.yml"
    text = features_yml.read_text()
    assert text.count(USER_FEATURES_META) == 1, "features.yml changed; update USER_FEATURES_META"
    features_yml.write_text(text.replace(USER_FEATURES_META, replacement))
    result = dbt(project, "build", check=False)
    assert result.returncode != 0, result.stdout[-3000:]
    return re.sub(r"\s+", " ", result.stdout + result.stderr)


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
