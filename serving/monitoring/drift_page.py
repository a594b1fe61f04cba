"""A drift report as one self-contained HTML page: a summary table, then per feature (worst
PSI first) the two distributions as side-by-side bars over the PSI's bins, with the PSI in
the title. Inline SVG and CSS only: no script, no file or network fetch, so it opens
anywhere and can be mailed or attached to a ticket as is."""

from __future__ import annotations

import datetime as dt
import html
from pathlib import Path

from serving.errors import InputError
from serving.monitoring.drift import DriftReport, FeatureDrift, Summary

REFERENCE_COLOUR = "#4c78a8"
CURRENT_COLOUR = "#f58518"
LEVEL_COLOURS = {"stable": "#2e7d32", "moderate": "#ef6c00", "significant": "#c62828", "n/a": "#757575"}
_WIDTH, _HEIGHT, _LEFT, _BOTTOM, _TOP = 640, 270, 44, 70, 32

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; max-width: 1100px; }
h1 { font-size: 22px; margin: 0 0 8px; } h2 { font-size: 16px; margin: 0 0 4px; }
.swatch { display: inline-block; width: 12px; height: 12px; margin-right: 6px; vertical-align: -1px; }
table { border-collapse: collapse; margin: 16px 0 24px; } td, th { padding: 4px 10px; border-bottom: 1px solid #ddd; text-align: right; }
td:first-child, th:first-child { text-align: left; font-family: ui-monospace, monospace; }
.badge { color: #fff; border-radius: 3px; padding: 1px 6px; font-size: 12px; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 12px 16px; margin: 0 0 16px; }
.stats { font-size: 12px; color: #555; font-family: ui-monospace, monospace; white-space: pre; }
"""


def write_html(report: DriftReport, path: str | Path) -> Path:
    """Writes the page (beside the path, then renamed: never half-written); returns the path."""
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(render_html(report), encoding="utf-8")
        partial.replace(path)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise InputError(f"cannot write the drift page {path}: {error.strerror or error}") from error
    return path


def render_html(report: DriftReport) -> str:
    ordered = sorted(report.features, key=lambda f: -1.0 if f.psi is None else f.psi, reverse=True)
    generated = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Feature drift</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>Feature drift</h1>",
        f"<div><span class='swatch' style='background:{REFERENCE_COLOUR}'></span>reference: {_e(report.reference)}</div>",
        f"<div><span class='swatch' style='background:{CURRENT_COLOUR}'></span>current: {_e(report.current)}</div>",
        f"<div class='stats'>generated {generated}; PSI below 0.1 stable, 0.1-0.25 moderate, above 0.25 significant</div>",
        _summary_table(ordered),
        *(_card(drift) for drift in ordered),
        "</body></html>",
    ]
    return "\n".join(parts)


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _badge(drift: FeatureDrift) -> str:
    value = "n/a" if drift.psi is None else f"{drift.psi:.3f}"
    return f"<span class='badge' style='background:{LEVEL_COLOURS[drift.level]}'>PSI {value} {drift.level}</span>"


def _number(value: float | None, percent: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value * 100:.1f}%" if percent else f"{value:.4g}"


def _summary_table(features: list[FeatureDrift]) -> str:
    rows = ["<table><tr><th>feature</th><th>nulls (ref / cur)</th><th>mean (ref / cur)</th><th>median (ref / cur)</th><th>PSI</th></tr>"]
    for drift in features:
        ref, cur = drift.reference, drift.current
        medians = [s.quantiles["p50"] if s.quantiles else None for s in (ref, cur)]
        rows.append(
            f"<tr><td><a href='#{_e(drift.feature)}'>{_e(drift.feature)}</a></td>"
            f"<td>{_number(ref.null_rate, True)} / {_number(cur.null_rate, True)}</td>"
            f"<td>{_number(ref.mean)} / {_number(cur.mean)}</td>"
            f"<td>{_number(medians[0])} / {_number(medians[1])}</td><td>{_badge(drift)}</td></tr>"
        )
    rows.append("</table>")
    return "\n".join(rows)


def _stats_line(name: str, summary: Summary) -> str:
    quantiles = "  ".join(f"{k} {_number(v)}" for k, v in (summary.quantiles or {}).items())
    return f"{name:<9} n {summary.count:<8} nulls {_number(summary.null_rate, True):<7} mean {_number(summary.mean):<10} {quantiles}"


def _card(drift: FeatureDrift) -> str:
    return (
        f"<div class='card' id='{_e(drift.feature)}'><h2>{_e(drift.feature)} &mdash; {_badge(drift)}</h2>"
        f"{_histogram(drift)}"
        f"<div class='stats'>{_e(_stats_line('reference', drift.reference))}\n{_e(_stats_line('current', drift.current))}</div></div>"
    )


def _histogram(drift: FeatureDrift) -> str:
    """Both samples' shares per bin, side by side, as an SVG bar chart."""
    if not drift.bins:
        return "<p>No non-null values on one side: nothing to compare.</p>"
    plot_width, plot_height = _WIDTH - _LEFT - 8, _HEIGHT - _BOTTOM - _TOP
    top = max(max(drift.reference_shares), max(drift.current_shares)) or 1.0
    slot = plot_width / len(drift.bins)
    bar = slot * 0.38
    title = f"{drift.feature}: PSI {'n/a' if drift.psi is None else f'{drift.psi:.3f}'}"
    svg = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{_WIDTH}' height='{_HEIGHT}' role='img' aria-label='{_e(title)}'>"]
    svg.append(f"<title>{_e(title)}</title>")
    svg.append(f"<text x='{_LEFT}' y='16' font-size='13' font-weight='bold'>{_e(title)} ({drift.level})</text>")
    for index, (colour, who) in enumerate(((REFERENCE_COLOUR, "reference"), (CURRENT_COLOUR, "current"))):
        x = _WIDTH - 170 + index * 85
        svg.append(f"<rect x='{x}' y='6' width='10' height='10' fill='{colour}'/><text x='{x + 14}' y='15' font-size='11'>{who}</text>")
    for fraction in (0.0, 0.5, 1.0):
        y = _TOP + plot_height * (1 - fraction)
        svg.append(f"<line x1='{_LEFT}' x2='{_WIDTH - 8}' y1='{y:.1f}' y2='{y:.1f}' stroke='#e0e0e0'/>")
        svg.append(f"<text x='{_LEFT - 4}' y='{y + 4:.1f}' font-size='10' text-anchor='end'>{top * fraction * 100:.3g}%</text>")
    for index, label in enumerate(drift.bins):
        x = _LEFT + slot * index + slot * 0.12
        for offset, share, colour, who in (
            (0.0, drift.reference_shares[index], REFERENCE_COLOUR, "reference"),
            (bar, drift.current_shares[index], CURRENT_COLOUR, "current"),
        ):
            height = plot_height * share / top
            svg.append(
                f"<rect x='{x + offset:.1f}' y='{_TOP + plot_height - height:.1f}' width='{bar:.1f}' height='{height:.1f}' fill='{colour}'>"
                f"<title>{_e(label)}: {who} {share * 100:.1f}%</title></rect>"
            )
        cx, cy = _LEFT + slot * (index + 0.5), _TOP + plot_height + 10
        svg.append(
            f"<text x='{cx:.1f}' y='{cy:.1f}' font-size='10' text-anchor='end' transform='rotate(-35 {cx:.1f} {cy:.1f})'>{_e(label[:24])}</text>"
        )
    svg.append("</svg>")
    return "".join(svg)
