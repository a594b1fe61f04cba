"""A real `featurestore serve` in a child process, and a plain HTTP client for it.

Shared by the HTTP tests and bench/bench_http.py (tests/ is on sys.path for both)."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

from serving.embedded_redis import free_port

START_TIMEOUT_SECONDS = 60.0


@contextlib.contextmanager
def served(project_dir: Path, redis_url: str, prefix: str, *flags: str) -> Iterator[str]:
    """Runs `featurestore serve` on a free loopback port until the block ends; yields its base URL."""
    port = free_port()
    command = [sys.executable, "-m", "serving", "--project-dir", str(project_dir), "serve", "--port", str(port), *flags]
    with running(command, port, {"REDIS_URL": redis_url, "FEATURE_STORE_REDIS_PREFIX": prefix}) as base:
        yield base


@contextlib.contextmanager
def running(command: list[str], port: int, env: dict[str, str]) -> Iterator[str]:
    """Runs a server `command` that listens on `port` and answers GET /health; yields its base
    URL once it answers. Stopped with SIGTERM (a graceful shutdown), killed if it lingers."""
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(command, env={**os.environ, **env}, stdout=output, stderr=subprocess.STDOUT)
        try:
            _wait_until_answering(process, port, output)
            yield f"http://127.0.0.1:{port}"
        finally:
            stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_answering(process: subprocess.Popen[bytes], port: int, output: Any) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output.seek(0)
            raise RuntimeError(f"{' '.join(map(str, process.args))} exited with {process.returncode}:\n{output.read().decode(errors='replace')[-3000:]}")
        with contextlib.suppress(OSError):
            status, _, _ = request(f"http://127.0.0.1:{port}", "GET", "/health")
            if status in (200, 503):
                return
        time.sleep(0.05)
    output.seek(0)
    raise RuntimeError(f"server did not answer on port {port} within {START_TIMEOUT_SECONDS:.0f} s:\n{output.read().decode(errors='replace')[-3000:]}")


def request(base: str, method: str, path: str, body: Any = None, raw: bytes | None = None) -> tuple[int, dict[str, str], Any]:
    """One request on a new connection: (status, headers, JSON body or text). `body` is sent as
    JSON; `raw` as given."""
    host, _, port = base.removeprefix("http://").partition(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        payload = raw if raw is not None else None if body is None else json.dumps(body).encode()
        connection.request(method, path, body=payload, headers={"Content-Type": "application/json"} if payload is not None else {})
        response = connection.getresponse()
        data = response.read()
        headers = {name.lower(): value for name, value in response.getheaders()}
    finally:
        connection.close()
    if headers.get("content-type", "").startswith("application/json"):
        return response.status, headers, json.loads(data)
    return response.status, headers, data.decode()
