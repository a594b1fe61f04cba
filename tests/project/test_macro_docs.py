"""macros/macros.yml documents every public macro, and dbt agrees its arguments match the
macro definitions (names, order, count and type syntax, via the validate_macro_args flag)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from project_copies import copy_project, dbt

ADAPTER_IMPLEMENTATION = re.compile(r"^[a-z]+__")
# Building blocks of the join and window macros, not called from models.
INTERNAL_PREFIXES = ("pit_", "window_plan", "window_inputs", "window_output", "window_aggregate_call", "window_list", "window_stacked", "window_buckets", "cumulative_plan", "category_literal", "time_zone_name", "spine_",
                     "skew_", "serving_skew_empty")


def test_every_public_macro_is_documented_with_matching_arguments(tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project")
    with (project / "dbt_project.yml").open("a") as config:
        config.write("\nflags:\n  validate_macro_args: true\n")

    output = dbt(project, "parse").stdout

    for warning in ("does not match the jinja definition", "has an invalid type"):
        assert warning not in output, output[-3000:]
    macros = {
        macro["name"]: macro
        for macro in json.loads((project / "target" / "manifest.json").read_text())["macros"].values()
        if macro["package_name"] == "feature_store"
    }
    public = [name for name in macros if not ADAPTER_IMPLEMENTATION.match(name) and not name.startswith(INTERNAL_PREFIXES)]
    assert {"point_in_time_join", "window_aggregates", "parse_duration", "scale_zscore", "test_no_future_features"} <= set(public)
    undocumented = [name for name in public if not macros[name]["description"]]
    assert not undocumented, f"add these to macros/macros.yml: {undocumented}"
    for name in public:
        for argument in macros[name]["arguments"]:
            assert argument["type"] and argument["description"], f"{name}.{argument['name']} needs a type and a description"
