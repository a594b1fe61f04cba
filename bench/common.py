"""Measuring one engine at a time, each in its own child process.

A child process per (task, engine, size) keeps peak memory separable: the peak RSS
the kernel reports for a process is exactly that engine's, not whatever ran before
it in the same interpreter.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from serving.offline import OfflineStore
    from serving.rendering import Renderer


def _status_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status; this bench needs Linux")


def rss_bytes() -> int:
    """This process's resident set size now."""
    return _status_bytes("VmRSS")


def peak_rss_bytes() -> int:
    """This process's peak resident set size (VmHWM). Not ru_maxrss: Linux carries that
    across fork and exec, so a child would report its parent's peak."""
    return _status_bytes("VmHWM")


def reset_peak_rss() -> None:
    """Starts VmHWM again from the current RSS (Linux 4.0+), so the peak covers only
    what follows; where that is not allowed, the peak covers the whole process."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


@dataclass(frozen=True)
class Measurement:
    seconds: list[float]
    rss_before: int
    peak_rss: int
    # CPU time of the whole process (every thread) per run: on a loaded machine it moves
    # far less than wall time, so it tells two plans of one engine apart.
    cpu_seconds: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu_seconds)

    @property
    def peak_delta(self) -> int:
        """Peak memory above what the process held once its inputs were loaded."""
        return max(self.peak_rss - self.rss_before, 0)


def time_repeatedly(run: Callable[[], Any], repeat: int, keep_first: Callable[[Any], None]) -> Measurement:
    """Runs `run` `repeat` times; the first result goes to `keep_first` outside the timing."""
    reset_peak_rss()
    rss_before = rss_bytes()
    seconds, cpu_seconds = [], []
    for attempt in range(repeat):
        start, cpu_start = time.perf_counter(), time.process_time()
        result = run()
        seconds.append(time.perf_counter() - start)
        cpu_seconds.append(time.process_time() - cpu_start)
        if attempt == 0:
            keep_first(result)
        del result
    return Measurement(seconds, rss_before, peak_rss_bytes(), cpu_seconds)


def report_to_parent(measurement: Measurement) -> None:
    print(json.dumps({"seconds": measurement.seconds, "rss_before": measurement.rss_before, "peak_rss": measurement.peak_rss, "cpu_seconds": measurement.cpu_seconds}))


def run_child(script: Path, child_args: list[str]) -> Measurement:
    """Runs `script --child ...` and reads the Measurement it prints last."""
    done = subprocess.run([sys.executable, str(script), "--child", *child_args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"child {' '.join(child_args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}")
    data = json.loads(done.stdout.strip().splitlines()[-1])
    return Measurement(data["seconds"], data["rss_before"], data["peak_rss"], data.get("cpu_seconds", []))


def mib(size: int) -> str:
    return f"{size / 2**20:,.0f} MiB"


def project_renderer() -> Renderer:
    """dbt's rendering of the project's macros for its default (DuckDB) target, as
    FeatureStore renders them (parsing the project first when its manifest is stale)."""
    from serving.registry import load_manifest
    from serving.rendering import Renderer

    root = Path(__file__).resolve().parents[1]
    _, manifest_hash = load_manifest(root)
    return Renderer(root, manifest_hash)


def duckdb_offline_store(database: Path) -> OfflineStore:
    """OfflineStore.historical/snapshot, the code behind the API, over a bench's DuckDB file."""
    from serving.engines.duckdb import DuckDBEngine
    from serving.offline import OfflineStore

    return OfflineStore(project_renderer(), lambda: DuckDBEngine(database, {}))
