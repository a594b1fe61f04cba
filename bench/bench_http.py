"""HTTP feature server speed, beside the in-process client and a bare endpoint, same run.

    .venv/bin/python bench/bench_http.py [--users 2000] [--reads 2000] [--duration 10] [--workers 1 2]

Builds a copy of the project with sample data (`dbt build`), materializes it into $REDIS_URL
(else a private embedded redis-server) and runs `featurestore serve` exactly as a user
does. Beside it runs the bare endpoint: the same uvicorn and Starlette, one route that
reads the body and returns a fixed JSON answer of the same bytes, so what remains is
our own cost (parsing, the store, serializing, metrics).

Latency: one keep-alive client (http.client), requests interleaved across the three
targets so they share the machine's load. Throughput: `wrk` with 16 keep-alive
connections (Debian package `wrk`; skipped with a note when it is absent).

Floor: 100 entities x 10 features p50 <= 2 ms over loopback.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from bench_online import percentiles, timed  # noqa: E402
from http_server import running, served  # noqa: E402
from project_copies import copy_project, dbt, generate_sample_data  # noqa: E402
from serving.embedded_redis import free_port, redis_url_or_embedded  # noqa: E402
from serving.http import feast_response, json_bytes  # noqa: E402
from serving.store import FeatureStore  # noqa: E402

SINGLE = [f"user_purchase_windows:{name}" for name in (
    "purchase_count_7d", "purchase_count_30d", "purchase_count_90d", "spend_7d", "spend_30d",
    "spend_90d", "avg_amount_30d", "max_amount_30d", "stddev_amount_30d", "distinct_categories_30d",
)]
# 100 entities x 10 features over 2 views, as bench_online reads them.
TWO_VIEWS = SINGLE[:5] + [f"user_last_purchase:{name}" for name in (
    "last_amount", "previous_amount", "avg_amount_last_3", "last_amount_log", "hour_of_day_sin",
)]
BARE_DIR_ENV = "BENCH_HTTP_BARE_DIR"


def bare_app() -> Any:
    """The baseline server: Starlette with one route per size that returns fixed bytes."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    folder = Path(os.environ[BARE_DIR_ENV])
    answers = {name: (folder / f"{name}.json").read_bytes() for name in ("bare-1", "bare-100")}

    def route(name: str) -> Route:
        async def endpoint(request: Request) -> Response:
            await request.body()
            return Response(answers[name], media_type="application/json")

        return Route(f"/{name}", endpoint, methods=["POST"])

    async def health(request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    return Starlette(routes=[route("bare-1"), route("bare-100"), Route("/health", health)])


def build_project(folder: Path, users: int) -> Path:
    project = copy_project(folder / "project")
    generate_sample_data(project, "--users", str(users))
    dbt(project, "build")
    return project


class KeepAlive:
    """One persistent connection, the way a model server talks to the feature server."""

    def __init__(self, base: str) -> None:
        host, _, port = base.removeprefix("http://").partition(":")
        self.connection = http.client.HTTPConnection(host, int(port))
        self.headers = {"Content-Type": "application/json"}

    def post(self, path: str, body: bytes) -> bytes:
        self.connection.request("POST", path, body, self.headers)
        response = self.connection.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"POST {path}: {response.status} {data[:300]!r}")
        return data


def check_same(answer: bytes, store: FeatureStore, request: dict[str, Any]) -> None:
    """The server's values equal the in-process client's before any figure is printed."""
    parsed = json.loads(answer)
    rows = [dict(zip(request["entities"], values)) for values in zip(*request["entities"].values())]
    expected = store.get_online_features(request["features"], rows, full_feature_names=request.get("full_feature_names", False))
    got = {name: result["values"] for name, result in zip(parsed["metadata"]["feature_names"], parsed["results"])}
    if got != expected.columns:
        raise AssertionError(f"HTTP answer differs from get_online_features for {request}")


def wrk_throughput(base: str, path: str, bodies: list[bytes], duration: int, folder: Path) -> dict[str, float]:
    script = folder / "post.lua"
    entries = ",\n".join(f"[==[{body.decode()}]==]" for body in bodies)
    script.write_text(
        f"local bodies = {{\n{entries}\n}}\nlocal n = 0\n"
        "local headers = {['Content-Type'] = 'application/json'}\n"
        f"request = function()\n  n = n % #bodies + 1\n  return wrk.format('POST', '{path}', headers, bodies[n])\nend\n"
    )
    done = subprocess.run(
        ["wrk", "-t2", "-c16", f"-d{duration}s", "--latency", "-s", str(script), base], capture_output=True, text=True, check=True
    )
    out = done.stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk saw errors against {base}{path}:\n{out}")
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", out, re.MULTILINE))
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), "p50": _ms(latency["50"]), "p99": _ms(latency["99"])}


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=2000, help="sample users (the project's generator)")
    parser.add_argument("--reads", type=int, default=2000, help="timed requests per target and size")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="server worker counts for the throughput runs")
    args, _ = parser.parse_known_args()  # `./dev bench` passes every script the same flags

    with tempfile.TemporaryDirectory() as tmp, redis_url_or_embedded() as url:
        folder = Path(tmp)
        project = build_project(folder, args.users)
        prefix = f"fsbench-http-{uuid.uuid4().hex[:8]}"
        try:
            run(project, url, prefix, folder, args)
        finally:
            client = redis.Redis.from_url(url)
            for key in client.scan_iter(match=f"{prefix}:*", count=10_000):
                client.unlink(key)
            client.close()


def materialize_sample(store: FeatureStore) -> list[int]:
    """Materializes the sample project as of its last purchase; returns the users it holds."""
    project = store.project_dir
    as_of = pd.read_parquet(project / "data" / "sample" / "purchases.parquet", columns=["event_timestamp"])["event_timestamp"].max()
    print(f"redis: {store.redis_url.split('@')[-1]}; {store.materialize(as_of=as_of.to_pydatetime(), progress=False)}")
    print(f"load average before the runs: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (other processes' load skews every figure)")
    return sorted(store.offline.snapshot(store.get_feature_view("user_purchase_windows"), as_of.to_pydatetime()).column("user_id").to_pylist())


def run(project: Path, url: str, prefix: str, folder: Path, args: argparse.Namespace) -> None:
    store = FeatureStore(project, redis_url=url, redis_prefix=prefix)
    users = materialize_sample(store)
    rng = random.Random(1)
    singles = [{"features": SINGLE, "entities": {"user_id": [rng.choice(users)]}} for _ in range(200)]
    hundreds = [{"features": TWO_VIEWS, "entities": {"user_id": rng.sample(users, 100)}, "full_feature_names": True} for _ in range(200)]
    single_bodies = [json.dumps(request).encode() for request in singles]
    hundred_bodies = [json.dumps(request).encode() for request in hundreds]
    for name, request in (("bare-1", singles[0]), ("bare-100", hundreds[0])):
        rows = [dict(zip(request["entities"], values)) for values in zip(*request["entities"].values())]
        answer = store.get_online_features(request["features"], rows, full_feature_names=request.get("full_feature_names", False))
        (folder / f"{name}.json").write_bytes(json_bytes(feast_response(answer)))

    latency = measure_latency(project, url, prefix, folder, store, singles, hundreds, single_bodies, hundred_bodies, args.reads)
    print_latency(latency)
    if shutil.which("wrk") is None:
        print("\nthroughput: skipped, `wrk` is not installed (apt-get install -y wrk)")
        return
    print(f"\nthroughput: wrk, 2 threads, 16 keep-alive connections, {args.duration} s per run (median request latency under load)")
    print(f"{'server':34} {'request':24} {'requests/s':>11} {'entities/s':>11} {'p50':>8} {'p99':>8}")
    for workers in args.workers:
        with served(project, url, prefix, "--workers", str(workers)) as ours, bare_server(folder, workers) as bare:
            for label, base, path, bodies, entities in (
                ("featurestore serve", ours, "/get-online-features", single_bodies, 1),
                ("bare endpoint", bare, "/bare-1", single_bodies, 1),
                ("featurestore serve", ours, "/get-online-features", hundred_bodies, 100),
                ("bare endpoint", bare, "/bare-100", hundred_bodies, 100),
            ):
                result = wrk_throughput(base, path, bodies[:50], args.duration, folder)
                print(
                    f"{label + f' ({workers} worker' + ('s)' if workers > 1 else ')'):34} {f'{entities} x 10 features':24} "
                    f"{result['rps']:11,.0f} {result['rps'] * entities:11,.0f} {result['p50']:6.2f}ms {result['p99']:6.2f}ms"
                )


def bare_server(folder: Path, workers: int) -> Any:
    port = free_port()
    command = [
        sys.executable, "-m", "uvicorn", "--factory", "bench_http:bare_app", "--app-dir", str(ROOT / "bench"),
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers), "--no-access-log", "--log-level", "warning",
    ]
    return running(command, port, {BARE_DIR_ENV: str(folder)})


def measure_latency(
    project: Path, url: str, prefix: str, folder: Path, store: FeatureStore,
    singles: list[dict[str, Any]], hundreds: list[dict[str, Any]], single_bodies: list[bytes], hundred_bodies: list[bytes], reads: int,
) -> dict[str, list[float]]:
    with served(project, url, prefix) as ours, bare_server(folder, 1) as bare:
        ours_client, bare_client = KeepAlive(ours), KeepAlive(bare)
        for request, body in ((singles[0], single_bodies[0]), (hundreds[0], hundred_bodies[0]), (hundreds[1], hundred_bodies[1])):
            check_same(ours_client.post("/get-online-features", body), store, request)
        rows_1 = [[{"user_id": r["entities"]["user_id"][0]}] for r in singles]
        rows_100 = [[{"user_id": user} for user in r["entities"]["user_id"]] for r in hundreds]
        counter = {"n": 0}

        def cycling(action: Callable[[int], Any]) -> Callable[[], Any]:
            def step() -> Any:
                counter["n"] += 1
                return action(counter["n"] // 3 % 200)
            return step

        samples_1 = timed([
            cycling(lambda i: store.get_online_features(SINGLE, rows_1[i])),
            cycling(lambda i: bare_client.post("/bare-1", single_bodies[i])),
            cycling(lambda i: ours_client.post("/get-online-features", single_bodies[i])),
        ], reads)
        samples_100 = timed([
            cycling(lambda i: store.get_online_features(TWO_VIEWS, rows_100[i], full_feature_names=True)),
            cycling(lambda i: bare_client.post("/bare-100", hundred_bodies[i])),
            cycling(lambda i: ours_client.post("/get-online-features", hundred_bodies[i])),
        ], reads)
    names = ("in-process", "bare", "http")
    return {f"{name} {size}": samples for size, group in ((1, samples_1), (100, samples_100)) for name, samples in zip(names, group)}


def print_latency(latency: dict[str, list[float]]) -> None:
    print(f"\n{'latency over loopback (one keep-alive client)':56} {'p50':>9} {'p99':>9}")
    labels = {
        "in-process": "in-process get_online_features",
        "bare": "bare endpoint (uvicorn + Starlette, fixed bytes)",
        "http": "POST /get-online-features",
    }
    for size, what in ((1, "1 entity x 10 features"), (100, "100 entities x 10 features, 2 views")):
        print(f"{what}:")
        figures = {name: percentiles(latency[f"{name} {size}"]) for name in labels}
        for name, label in labels.items():
            p50, p99 = figures[name]
            print(f"  {label:54} {p50 * 1e6:7.0f}µs {p99 * 1e6:7.0f}µs")
        ours, bare, inproc = figures["http"][0], figures["bare"][0], figures["in-process"][0]
        print(f"  our overhead over bare HTTP + in-process read (p50): {(ours - bare - inproc) * 1e6:.0f}µs")
        if size == 100:
            print(f"floor: 100 entities p50 <= 2 ms: {'ok' if ours <= 2e-3 else 'MISSED'} ({ours * 1e3:.2f} ms)")


if __name__ == "__main__":
    main()
