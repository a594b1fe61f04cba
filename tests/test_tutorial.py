"""README's tutorial, run exactly as written: every command of its `<!-- tutorial -->` blocks,
in order, in one shell in an empty folder, against a real Redis; each must succeed and
print what the README shows.

A block line `$ command` is a command, the lines after it are its output, and `...` stands
for lines left out. Only what changes from run to run is masked before comparing: clock
times, durations, the Redis URL and key prefix, dbt's count of its own macros."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import redis

from serving.embedded_redis import embedded_redis

README = Path(__file__).resolve().parents[1] / "README.md"
MACHINE_REDIS = "redis://127.0.0.1:6379/13"
EXIT_MARK = "@@tutorial-exit "
VOLATILE = [
    (re.compile(r"\x1b\[[0-9;]*m"), ""),
    (re.compile(r"^\d\d:\d\d:\d\d\s+"), ""),
    (re.compile(r"\d+\.\d+( ?s\b| seconds)"), r"<t>\1"),
    (re.compile(r"\([\d,]+ entities/s\)"), "(<rate> entities/s)"),
    (re.compile(r"^online store: .*"), "online store: <redis>"),
    (re.compile(r"\b\d+ macros\b"), "<n> macros"),
]


@dataclass
class Step:
    command: str
    expected: list[str]


def tutorial_steps(text: str) -> list[Step]:
    blocks = re.findall(r"<!-- tutorial -->\n```console\n(.*?)\n```", text, flags=re.DOTALL)
    steps: list[Step] = []
    for block in blocks:
        for line in block.splitlines():
            if line.startswith("$ "):
                steps.append(Step(line[2:], []))
            else:
                steps[-1].expected.append(line)
    return steps


def normalize(line: str) -> str:
    for pattern, replacement in VOLATILE:
        line = pattern.sub(replacement, line)
    return line.rstrip()


def matches(expected: list[str], actual: list[str]) -> bool:
    """Without `...`, the lines are equal; with it, the shown lines appear in order."""
    wanted = [normalize(line) for line in expected]
    got = [normalize(line) for line in actual]
    if "..." not in wanted:
        return wanted == got
    remaining = iter(got)
    return all(any(line == seen for seen in remaining) for line in wanted if line != "...")


@contextlib.contextmanager
def tutorial_redis() -> Iterator[str]:
    try:
        redis.Redis.from_url(MACHINE_REDIS, socket_connect_timeout=1).ping()
    except redis.RedisError:
        with embedded_redis() as url:
            yield url
        return
    yield MACHINE_REDIS


def run_steps(steps: list[Step], folder: Path, env: dict[str, str]) -> list[tuple[int, list[str]]]:
    """Runs every command in one bash (so `cd` carries over); returns exit code and output lines each."""
    script = "exec 2>&1\nset -o pipefail\n" + "".join(f"{step.command}\necho \"{EXIT_MARK}$?\"\n" for step in steps)
    result = subprocess.run(["bash", "-c", script], cwd=folder, env=env, capture_output=True, text=True, timeout=600)
    outputs: list[tuple[int, list[str]]] = []
    lines: list[str] = []
    for line in result.stdout.splitlines():
        if line.startswith(EXIT_MARK):
            outputs.append((int(line[len(EXIT_MARK):]), lines))
            lines = []
        else:
            lines.append(line)
    return outputs


def test_the_readme_tutorial_runs_as_written(tmp_path: Path) -> None:
    steps = tutorial_steps(README.read_text())
    commands = [step.command.split()[0] for step in steps]
    assert commands.count("featurestore") >= 5 and "dbt" in commands, "the tutorial's blocks were not found"

    prefix = f"fs-tutorial-{uuid.uuid4().hex[:8]}"
    with tutorial_redis() as url:
        env = {key: value for key, value in os.environ.items() if key not in ("FEATURE_STORE_DUCKDB", "DBT_PROFILES_DIR")}
        env |= {
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
            "REDIS_URL": url,
            "FEATURE_STORE_REDIS_PREFIX": prefix,
        }
        try:
            outputs = run_steps(steps, tmp_path, env)
        finally:
            client = redis.Redis.from_url(url)
            keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
            if keys:
                client.delete(*keys)

    assert len(outputs) == len(steps)
    for step, (code, lines) in zip(steps, outputs):
        shown = "\n".join(lines[-40:])
        assert code == 0, f"`{step.command}` exited {code}:\n{shown}"
        assert matches(step.expected, lines), f"`{step.command}` printed:\n{shown}\n\nREADME shows:\n" + "\n".join(step.expected)
    assert (tmp_path / "my_features" / "target" / "warehouse.duckdb").exists()


def test_the_comparison_can_fail() -> None:
    assert not matches(["a", "...", "c"], ["a", "b"])
    assert not matches(["wrote 3 rows"], ["wrote 4 rows"])
    assert matches(["06:31:40  Done. PASS=11", "online store: redis://localhost:6379/0 (key prefix 'fs')"],
                   ["\x1b[0m07:00:01  Done. PASS=11", "online store: redis://127.0.0.1:6379/13 (key prefix 'x')"])

