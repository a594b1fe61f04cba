"""Drift: the statistics against hand-computed values and a brute-force PSI, then the
sources (saved datasets, the serving log table in a real DuckDB warehouse), the HTML page
and the command line."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from serving import FeatureStore
from serving.errors import DatasetError, InputError
from serving.monitoring.drift import EMPTY_SHARE, feature_drift, psi, summarize
from serving.monitoring.drift_page import render_html

FEATURES = ["user_features:total_purchases", "user_features:avg_purchase_amount", "user_purchase_windows:spend_7d"]


def featurestore(project_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "serving", "--project-dir", str(project_dir), *args], capture_output=True, text=True)


# -- the statistics ------------------------------------------------------------------------


def test_psi_of_two_categories_equals_the_hand_computed_value():
    # reference a a b b (shares .5 .5), current a b b b (.25 .75):
    # (.25 - .5) ln(.25/.5) + (.75 - .5) ln(.75/.5) = .17329 + .10137 = 0.274653
    drift = feature_drift("colour", ["a", "a", "b", "b"], ["a", "b", "b", "b"])

    assert drift.bins == ["a", "b"]
    assert drift.psi == pytest.approx(0.274653, abs=1e-6)
    assert drift.level == "significant"


def test_psi_over_reference_deciles_equals_the_hand_computed_value():
    # Reference 0..99: deciles 9.9, 19.8, ..., 89.1, so ten bins of 10% each. Current: half
    # 5s (first bin), half 95s (last bin), the eight bins between empty (floored at 0.0001):
    # 2 (.5 - .1) ln 5 + 8 (.0001 - .1) ln(.0001/.1) = 1.287550 + 5.520678 = 6.808228
    drift = feature_drift("x", np.arange(100), np.array([5] * 50 + [95] * 50))

    assert drift.reference_shares == pytest.approx([0.1] * 10)
    assert drift.current_shares == pytest.approx([0.5] + [0.0] * 8 + [0.5])
    assert drift.psi == pytest.approx(6.808228, abs=1e-6)


def test_identical_samples_have_psi_zero():
    values = np.random.default_rng(1).normal(size=1000)
    assert feature_drift("x", values, values.copy()).psi == 0.0


def test_psi_equals_a_brute_force_count_on_random_data():
    rng = np.random.default_rng(7)
    for _ in range(20):
        reference = rng.integers(0, rng.integers(2, 40), size=rng.integers(5, 400)).astype(float)
        current = rng.integers(0, 40, size=rng.integers(5, 400)).astype(float) + rng.choice([0.0, 0.5])
        bins = int(rng.integers(2, 12))
        edges = sorted(set(np.quantile(reference, [i / bins for i in range(1, bins)]).tolist()))

        def shares(values: np.ndarray) -> list[float]:
            # Bin k holds the values above k edges: (edge[k-1], edge[k]].
            counts = [0] * (len(edges) + 1)
            for value in values:
                counts[sum(1 for edge in edges if value > edge)] += 1
            return [count / len(values) for count in counts]

        expected = sum(
            (max(c, EMPTY_SHARE) - max(r, EMPTY_SHARE)) * math.log(max(c, EMPTY_SHARE) / max(r, EMPTY_SHARE))
            for r, c in zip(shares(reference), shares(current))
        )
        assert feature_drift("x", reference, current, bins).psi == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_summaries_count_nulls_apart_from_the_values():
    summary = summarize([1, 2, None, 3, 4, float("nan"), pd.NA, 10])

    assert summary.count == 8
    assert summary.null_rate == pytest.approx(3 / 8)
    assert summary.mean == pytest.approx(4.0)
    assert summary.quantiles == {k: pytest.approx(v) for k, v in
                                 zip(["p5", "p25", "p50", "p75", "p95"], np.quantile([1, 2, 3, 4, 10], [0.05, 0.25, 0.5, 0.75, 0.95]))}
    assert psi([0.5, 0.5], [0.5, 0.5]) == 0.0


def test_a_sample_of_only_nulls_has_no_psi_and_says_so_on_the_page():
    drift = feature_drift("x", [1.0, 2.0], [None, None])

    assert drift.psi is None and drift.level == "n/a" and drift.current.null_rate == 1.0
    from serving.monitoring.drift import DriftReport

    assert "nothing to compare" in render_html(DriftReport("a", "b", [drift]))


# -- the sources ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def project(built_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the built project with two saved sets, `early` and `late` (the spine's
    first and last 150 rows by time), and a serving log table of six reads."""
    project = shutil.copytree(
        built_project, tmp_path_factory.mktemp("drift") / "project", ignore=shutil.ignore_patterns("engine-*.json")
    )
    spine = pd.read_parquet(project / "data" / "sample" / "label_spine.parquet")
    spine = spine.rename(columns={"prediction_time": "event_timestamp"}).sort_values("event_timestamp", kind="stable")
    store = FeatureStore(project)
    store.get_historical_features(spine.head(150), FEATURES, save_as="early")
    store.get_historical_features(spine.tail(150), FEATURES, save_as="late")
    # The serving log's layout (the skew branch's `featurestore logs flush` writes it).
    log = pd.DataFrame(
        {
            "request_id": ["1-0", "1-0", "2-0", "2-0", "3-0", "3-0"],
            "request_at": pd.to_datetime(["2026-02-01 10:00"] * 2 + ["2026-02-01 11:00"] * 2 + ["2026-02-02 09:00"] * 2),
            "row_index": [0, 1, 0, 1, 0, 1],
            "entity_key": ['{"user_id": 1}', '{"user_id": 2}'] * 3,
            "feature_view": ["user_features"] * 6,
            "feature": ["total_purchases"] * 6,
            "feature_ref": ["user_features:total_purchases"] * 6,
            "status": ["present", "present", "present", "missing", "present", "outside_ttl"],
            "value_number": [2.0, 4.0, 6.0, None, 30.0, None],
            "value_text": [None] * 6,
        }
    )
    with duckdb.connect(str(project / "target" / "warehouse.duckdb")) as connection:
        connection.register("log_frame", log)
        connection.execute("create table main.feature_store_serving_log as select * from log_frame")
    return project


def test_drift_between_two_saved_sets_matches_their_rows(project):
    store = FeatureStore(project)
    early, late = store.get_saved_dataset("early").to_df(), store.get_saved_dataset("late").to_df()

    report = store.feature_drift("dataset:early", "dataset:late")

    assert [f.feature for f in report.features] == FEATURES
    drift = report.feature("user_purchase_windows:spend_7d")
    assert drift.reference.null_rate == pytest.approx(early["spend_7d"].isna().mean())
    assert drift.current.mean == pytest.approx(late["spend_7d"].mean())
    assert drift.current.quantiles["p50"] == pytest.approx(late["spend_7d"].median())
    expected = feature_drift("x", early["spend_7d"].dropna().to_numpy(float), late["spend_7d"].dropna().to_numpy(float)).psi
    assert drift.psi == pytest.approx(expected)
    assert report.reference.startswith("dataset early (150 rows")


def test_drift_of_a_saved_set_against_log_time_ranges(project):
    store = FeatureStore(project)

    against_log = store.feature_drift("dataset:early", "log")
    first_hours = store.feature_drift("log:..2026-02-01T12:00:00Z", "log:2026-02-01T12:00:00Z..")

    assert [f.feature for f in against_log.features] == ["user_features:total_purchases"]
    served = against_log.features[0].current
    assert (served.count, served.null_rate, served.mean) == (6, pytest.approx(2 / 6), pytest.approx(10.5))
    before, after = first_hours.features[0].reference, first_hours.features[0].current
    assert (before.count, before.null_rate, before.mean) == (4, 0.25, pytest.approx(4.0))
    assert (after.count, after.null_rate, after.mean) == (2, 0.5, 30.0)


def test_bad_sources_are_refused_with_the_valid_forms(project):
    store = FeatureStore(project)
    with pytest.raises(DatasetError, match="no saved dataset named 'nope'.*saved datasets: early, late"):
        store.feature_drift("dataset:nope", "dataset:late")
    with pytest.raises(InputError, match="is not one of: dataset:NAME, log, or log:SINCE..UNTIL"):
        store.feature_drift("early", "dataset:late")
    with pytest.raises(InputError, match="SINCE and UNTIL are ISO 8601 times"):
        store.feature_drift("dataset:early", "log:yesterday..")
    with pytest.raises(DatasetError, match="holds no reads from 2030-01-01T00:00:00 to now"):
        store.feature_drift("dataset:early", "log:2030-01-01..")
    with pytest.raises(InputError, match="not in both samples; features in both: user_features:total_purchases"):
        store.feature_drift("dataset:early", "log", features=["user_purchase_windows:spend_7d"])


# -- the page and the command line ---------------------------------------------------------


def test_the_command_line_prints_the_table_and_writes_a_page_of_histograms(project, tmp_path):
    page = tmp_path / "out" / "drift.html"

    result = featurestore(project, "drift", "dataset:early", "dataset:late", "--html", str(page))

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("reference: dataset early") and lines[1].startswith("current:   dataset late")
    assert [line.split()[0] for line in lines[3:]] == FEATURES
    assert result.stderr == f"wrote {page}\n"
    text = page.read_text()
    titles = re.findall(r"<title>([^<]*)</title>", text)
    assert titles[0] == "Feature drift"
    assert {t.split(": PSI")[0] for t in titles[1:] if ": PSI" in t} == set(FEATURES)
    assert text.count("<svg") == 3 and "<script" not in text and "http" not in text.replace("http://www.w3.org/2000/svg", "")


def test_the_command_line_exits_4_above_the_psi_limit_and_1_on_an_unknown_dataset(project, tmp_path):
    above = featurestore(project, "drift", "dataset:early", "dataset:late", "--html", str(tmp_path / "a.html"), "--fail-above", "0")
    unknown = featurestore(project, "drift", "dataset:early", "dataset:nope", "--html", str(tmp_path / "b.html"))

    assert above.returncode == 4, above.stderr
    assert unknown.returncode == 1
    assert unknown.stderr.startswith("error: no saved dataset named 'nope'") and len(unknown.stderr.splitlines()) == 1
    assert not (tmp_path / "b.html").exists()
