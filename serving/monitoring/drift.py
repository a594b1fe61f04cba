"""Drift between two samples of each feature: null rate, mean, quantiles and the population
stability index (PSI).

PSI = sum over bins of (current share - reference share) * ln(current share / reference share).
Numbers are binned at the reference's deciles (fewer bins when values repeat), with the
outer bins open-ended, so every value of either sample falls in one; text values are
binned by category. A bin empty on one side counts as 0.0001 of it (the usual floor; ln 0
is undefined). Nulls are left out of the PSI and shown as the null rate. Rule of thumb:
below 0.1 stable, 0.1 to 0.25 moderate, above 0.25 a significant shift.

Pure statistics: samples come in as plain sequences (serving.monitoring.drift_sources
reads them from saved datasets and the serving log).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
DEFAULT_BINS = 10
EMPTY_SHARE = 1e-4
MODERATE_PSI = 0.1
SIGNIFICANT_PSI = 0.25


@dataclass(frozen=True)
class Summary:
    """One sample of one feature: values counted, the share of nulls, and for numbers their
    mean and quantiles (QUANTILES; None for text or when every value is null)."""

    count: int
    null_rate: float | None
    mean: float | None
    quantiles: dict[str, float] | None

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "null_rate": self.null_rate, "mean": self.mean, "quantiles": self.quantiles}


@dataclass(frozen=True)
class FeatureDrift:
    """One feature in both samples: summaries, the PSI bins with each sample's shares, the PSI."""

    feature: str
    reference: Summary
    current: Summary
    psi: float | None
    bins: list[str] = field(default_factory=list)
    reference_shares: list[float] = field(default_factory=list)
    current_shares: list[float] = field(default_factory=list)

    @property
    def level(self) -> str:
        if self.psi is None:
            return "n/a"
        if self.psi >= SIGNIFICANT_PSI:
            return "significant"
        return "moderate" if self.psi >= MODERATE_PSI else "stable"

    def to_dict(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "psi": self.psi,
            "level": self.level,
            "reference": self.reference.to_dict(),
            "current": self.current.to_dict(),
            "bins": self.bins,
            "reference_shares": self.reference_shares,
            "current_shares": self.current_shares,
        }


@dataclass
class DriftReport:
    """Every compared feature, with what the two samples were."""

    reference: str
    current: str
    features: list[FeatureDrift]

    def feature(self, name: str) -> FeatureDrift:
        return next(drift for drift in self.features if drift.feature == name)

    def to_dict(self) -> dict[str, Any]:
        return {"reference": self.reference, "current": self.current, "features": [f.to_dict() for f in self.features]}

    def to_text(self) -> str:
        lines = [f"reference: {self.reference}", f"current:   {self.current}"]
        width = max([len("feature"), *(len(f.feature) for f in self.features)])
        lines.append(f"{'feature':<{width}}  {'nulls':>13}  {'mean':>21}  {'median':>21}  {'PSI':>7}")
        for drift in self.features:
            ref, cur = drift.reference, drift.current
            psi = "n/a" if drift.psi is None else f"{drift.psi:.3f}"
            lines.append(
                f"{drift.feature:<{width}}  {_pair(ref.null_rate, cur.null_rate, percent=True):>13}  "
                f"{_pair(ref.mean, cur.mean):>21}  {_pair(_median(ref), _median(cur)):>21}  {psi:>7}  {drift.level}"
            )
        return "\n".join(lines)


def _median(summary: Summary) -> float | None:
    return summary.quantiles["p50"] if summary.quantiles else None


def _pair(before: float | None, after: float | None, percent: bool = False) -> str:
    def show(value: float | None) -> str:
        if value is None:
            return "-"
        return f"{value * 100:.1f}%" if percent else f"{value:.4g}"

    return f"{show(before)} -> {show(after)}"


def _split(values: Sequence[Any]) -> tuple[np.ndarray | list[str], int]:
    """The non-null values (floats, or strings when any value is not a number) and the null count."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "fiub":
        numbers = values.astype(np.float64)
        present_numbers = numbers[~np.isnan(numbers)]
        return present_numbers, len(numbers) - len(present_numbers)
    present = [v for v in values if not _is_null(v)]
    nulls = len(values) - len(present)
    try:
        if not any(isinstance(v, str) for v in present):
            return np.asarray([float(v) for v in present], dtype=np.float64), nulls
    except (TypeError, ValueError):
        pass  # timestamps and other values are compared as text categories
    return [str(v) for v in present], nulls


def _is_null(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN, pd.NA and NaT are not equal to themselves
    except (TypeError, ValueError):
        return True  # pd.NA's comparison raises: it is missing


def summarize(values: Sequence[Any]) -> Summary:
    present, nulls = _split(values)
    total = len(values)
    null_rate = nulls / total if total else None
    if isinstance(present, list) or len(present) == 0:
        return Summary(total, null_rate, None, None)
    quantiles = np.quantile(present, QUANTILES)
    return Summary(
        total,
        null_rate,
        float(np.mean(present)),
        {f"p{round(q * 100)}": float(v) for q, v in zip(QUANTILES, quantiles)},
    )


def psi(reference_shares: Sequence[float], current_shares: Sequence[float]) -> float:
    """The PSI of two share vectors over the same bins (empty bins floored at EMPTY_SHARE)."""
    total = 0.0
    for ref, cur in zip(reference_shares, current_shares):
        ref, cur = max(ref, EMPTY_SHARE), max(cur, EMPTY_SHARE)
        total += (cur - ref) * math.log(cur / ref)
    return total


def _numeric_bins(reference: np.ndarray, current: np.ndarray, bins: int) -> tuple[list[str], list[float], list[float]]:
    edges = np.unique(np.quantile(reference, np.arange(1, bins) / bins))
    # Bin i holds (edge[i-1], edge[i]]: values equal to an edge go below it.
    def shares(values: np.ndarray) -> list[float]:
        counts = np.bincount(np.searchsorted(edges, values, side="left"), minlength=len(edges) + 1)
        return (counts / len(values)).tolist()

    labels = [f"<= {edges[0]:.4g}"] if len(edges) else ["all"]
    labels += [f"{low:.4g} - {high:.4g}" for low, high in zip(edges[:-1], edges[1:])]
    if len(edges):
        labels.append(f"> {edges[-1]:.4g}")
    return labels, shares(reference), shares(current)


def _category_bins(reference: list[str], current: list[str]) -> tuple[list[str], list[float], list[float]]:
    categories = sorted(set(reference) | set(current))
    def shares(values: list[str]) -> list[float]:
        counts = {category: 0 for category in categories}
        for value in values:
            counts[value] += 1
        return [counts[category] / len(values) for category in categories]

    return categories, shares(reference), shares(current)


def feature_drift(feature: str, reference: Sequence[Any], current: Sequence[Any], bins: int = DEFAULT_BINS) -> FeatureDrift:
    """Summaries and PSI of one feature's reference and current samples (nulls allowed)."""
    ref_values, _ = _split(reference)
    cur_values, _ = _split(current)
    summaries = summarize(reference), summarize(current)
    if len(ref_values) == 0 or len(cur_values) == 0:
        return FeatureDrift(feature, *summaries, None)
    if isinstance(ref_values, list) or isinstance(cur_values, list):
        labels, ref_shares, cur_shares = _category_bins([str(v) for v in ref_values], [str(v) for v in cur_values])
    else:
        labels, ref_shares, cur_shares = _numeric_bins(ref_values, cur_values, bins)
    return FeatureDrift(feature, *summaries, psi(ref_shares, cur_shares), labels, ref_shares, cur_shares)


def drift_report(
    reference: dict[str, Sequence[Any]],
    current: dict[str, Sequence[Any]],
    reference_label: str,
    current_label: str,
    bins: int = DEFAULT_BINS,
) -> DriftReport:
    """Drift of every feature present in both samples, in the reference's order."""
    shared = [name for name in reference if name in current]
    return DriftReport(reference_label, current_label, [feature_drift(name, reference[name], current[name], bins) for name in shared])
