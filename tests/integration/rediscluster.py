"""A real, local Redis cluster for integration tests.

Starts N `redis-server` processes on free 127.0.0.1 ports in a temporary directory,
configured with the same settings the ElastiCache parameter group uses
(`ladder.redis_settings.parameters("enabled")`), protected by a random password the way
ElastiCache's auth token protects a replication group, joins them with
`redis-cli --cluster create`, and tears everything down afterwards.

Use `RedisCluster` as a context manager, or the module-scoped `redis_cluster` pytest
fixture (import it into a test module). Everything talks to Redis through `redis-cli`;
the project adds no Redis client library.
"""

from __future__ import annotations

import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

_REPO_ROOT = Path(__file__).resolve().parents[2]
if str(_REPO_ROOT) not in sys.path:  # so `ladder` imports however pytest is launched
    sys.path.insert(0, str(_REPO_ROOT))

from ladder.redis_settings import parameters  # noqa: E402
from tests.integration.binaries import missing, which  # noqa: E402  (after the sys.path fix)

CLUSTER_BUS_OFFSET = 10000  # Redis Cluster's bus listens on port + 10000
START_TIMEOUT = 15.0  # seconds for one server to answer PING
CLUSTER_TIMEOUT = 30.0  # seconds for every node to report cluster_state:ok
CLI_TIMEOUT = 20.0  # seconds for any single redis-cli call


class RedisClusterError(RuntimeError):
    """The local cluster could not be started or did not converge."""


def require_redis_binaries() -> tuple[str, str]:
    """Paths of redis-server and redis-cli; fail the test (or skip, if asked to) when missing.

    Integration tests are part of the suite: a missing server is a broken setup, not a
    reason to pass quietly. SCALELADDER_SKIP_INTEGRATION=1 is the explicit opt-out.
    """
    server, cli = which("redis-server"), which("redis-cli")
    if not (server and cli):
        missing([n for n, p in (("redis-server", server), ("redis-cli", cli)) if not p], "Redis")
    return server, cli


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_cluster_ports(count: int, taken: set[int] | None = None) -> list[int]:
    """`count` ports on 127.0.0.1 whose port and cluster-bus port (+10000) are both free."""
    taken = set(taken or ())
    ports: list[int] = []
    for _ in range(200 * count):  # bounded: give up rather than loop forever
        if len(ports) == count:
            return ports
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        bus = port + CLUSTER_BUS_OFFSET
        if port in taken or bus > 65535 or bus in taken:
            continue
        if _port_free(bus):
            ports.append(port)
            taken.update({port, bus})
    if len(ports) == count:
        return ports
    raise RedisClusterError(f"could not find {count} free port pairs on 127.0.0.1")


def _conf_value(value: str) -> str:
    """A redis.conf argument: quoted so empty values and spaces survive the parser."""
    if value == "" or any(c in value for c in ' "\\\t'):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return value


@dataclass
class Node:
    port: int
    dir: Path
    process: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.dir / "redis.log"


@dataclass
class RedisCluster:
    """N redis-server processes joined into a cluster with `replicas` replicas per master."""

    nodes_count: int = 6
    replicas: int = 1
    settings: dict[str, str] = field(default_factory=lambda: parameters("enabled"))
    password: str = field(default_factory=lambda: "test-" + secrets.token_hex(16))
    nodes: list[Node] = field(default_factory=list, init=False)
    tmpdir: Path | None = field(default=None, init=False)

    # ---- lifecycle -------------------------------------------------------------------

    def __enter__(self) -> RedisCluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        self.server_bin, self.cli_bin = require_redis_binaries()
        if self.settings.get("cluster-enabled") != "yes":
            raise RedisClusterError(
                f"parameter group settings do not enable cluster mode: {self.settings!r}"
            )
        self.tmpdir = Path(tempfile.mkdtemp(prefix="scaleladder-redis-"))
        for port in free_cluster_ports(self.nodes_count):
            node = Node(port=port, dir=self.tmpdir / f"node-{port}")
            node.dir.mkdir()
            self.nodes.append(node)
            self._start_node(node)
        for node in self.nodes:
            self._wait_ping(node)
        self._create_cluster()
        self._wait_converged()

    def stop(self) -> None:
        """Stop every server (SIGTERM, then SIGKILL after a bounded wait) and remove files."""
        for node in self.nodes:
            if node.process and node.process.poll() is None:
                node.process.terminate()
        for node in self.nodes:
            if node.process and node.process.poll() is None:
                try:
                    node.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    node.process.kill()
                    node.process.wait(timeout=10)
        self.nodes = []
        if self.tmpdir is not None:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None

    def config_lines(self, node: Node) -> list[str]:
        """redis.conf for one node: test harness settings, then the parameter group's."""
        harness = {
            "port": str(node.port),
            "bind": "127.0.0.1",
            "protected-mode": "yes",
            "daemonize": "no",
            "dir": str(node.dir),
            "logfile": str(node.log),
            "cluster-config-file": "nodes.conf",
            "cluster-node-timeout": "5000",
            "appendonly": "no",
            "save": "",
            # ElastiCache's auth token: clients and replicas must authenticate.
            "requirepass": self.password,
            "masterauth": self.password,
        }
        # Every parameter-group key is applied, empty values included (written quoted):
        # Redis 7.0 accepts e.g. `notify-keyspace-events ""`, so no key is skipped. A key
        # Redis rejected would stop the server, and start() reports its log.
        merged = {**harness, **self.settings}
        return [f"{k} {_conf_value(v)}" for k, v in merged.items()]

    def _start_node(self, node: Node) -> None:
        conf = node.dir / "redis.conf"
        conf.write_text("\n".join(self.config_lines(node)) + "\n")
        node.process = subprocess.Popen(
            [self.server_bin, str(conf)],
            cwd=node.dir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(node.dir / "stderr.log", "wb"),
        )

    def _node_failure(self, node: Node, what: str) -> RedisClusterError:
        logs = []
        for path in (node.dir / "stderr.log", node.log):
            if path.exists():
                logs.append(f"--- {path.name}\n" + path.read_text(errors="replace")[-2000:])
        return RedisClusterError(f"{node.address}: {what}\n" + "\n".join(logs))

    def _wait_ping(self, node: Node) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if node.process.poll() is not None:
                raise self._node_failure(node, f"redis-server exited ({node.process.returncode})")
            if self.cli("PING", port=node.port, cluster=False).stdout.strip() == "PONG":
                return
            time.sleep(0.1)
        raise self._node_failure(node, f"no PONG within {START_TIMEOUT}s")

    def _create_cluster(self) -> None:
        result = subprocess.run(
            [self.cli_bin, "--no-auth-warning", "-a", self.password, "--cluster", "create",
             *(n.address for n in self.nodes),
             "--cluster-replicas", str(self.replicas), "--cluster-yes"],
            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        )
        if result.returncode != 0 or "[OK] All 16384 slots covered" not in result.stdout:
            raise RedisClusterError(
                f"redis-cli --cluster create failed ({result.returncode}):\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-2000:]}"
            )

    def _wait_converged(self) -> None:
        """Every node sees state ok, all slots, all nodes; every replica's link is up."""
        deadline = time.monotonic() + CLUSTER_TIMEOUT
        pending: list[str] = []
        while time.monotonic() < deadline:
            pending = []
            for node in self.nodes:
                info = self.info(node.port, "CLUSTER INFO")
                if (info.get("cluster_state") != "ok"
                        or info.get("cluster_slots_ok") != "16384"
                        or info.get("cluster_known_nodes") != str(self.nodes_count)):
                    pending.append(f"{node.address} cluster {info}")
                    continue
                repl = self.info(node.port, "INFO replication")
                if repl.get("role") == "slave" and repl.get("master_link_status") != "up":
                    pending.append(f"{node.address} replica link {repl.get('master_link_status')}")
            if not pending:
                return
            time.sleep(0.2)
        raise RedisClusterError(
            f"cluster did not converge within {CLUSTER_TIMEOUT}s: " + "; ".join(pending)
        )

    # ---- talking to it ---------------------------------------------------------------

    @property
    def ports(self) -> list[int]:
        return [n.port for n in self.nodes]

    def cli(self, *args: str, port: int | None = None, cluster: bool = True,
            stdin: str | None = None) -> subprocess.CompletedProcess:
        """Run `redis-cli [-c] -p PORT -a PASS ARGS...` (authenticated); never raises on
        Redis error replies — callers assert on stdout (errors appear as `ERR ...` text)."""
        cmd = [self.cli_bin, "-h", "127.0.0.1", "-p", str(port or self.nodes[0].port),
               "--no-auth-warning", "-a", self.password]
        if cluster:
            cmd.append("-c")
        cmd.extend(args)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=CLI_TIMEOUT,
                              input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL)

    def run(self, *args: str, port: int | None = None, cluster: bool = True) -> str:
        """A command's reply as text (stripped), cluster redirects followed by default."""
        return self.cli(*args, port=port, cluster=cluster).stdout.strip()

    def info(self, port: int, command: str = "INFO") -> dict[str, str]:
        """`INFO`-style `key:value` reply (INFO, CLUSTER INFO) as a dict."""
        out = self.run(*command.split(), port=port, cluster=False)
        pairs = (line.split(":", 1) for line in out.splitlines() if ":" in line)
        return {k.strip(): v.strip() for k, v in pairs}

    def config_get(self, port: int, key: str) -> str | None:
        # Not stripped: an empty value is the reply's (blank) second line.
        lines = self.cli("CONFIG", "GET", key, port=port, cluster=False).stdout.splitlines()
        return lines[1] if len(lines) >= 2 and lines[0] == key else None

    def cluster_nodes(self) -> list[dict]:
        """Parsed CLUSTER NODES from the first node: id, port, role, master_id, slots."""
        rows = []
        for line in self.run("CLUSTER", "NODES", cluster=False).splitlines():
            parts = line.split()
            if len(parts) < 8:
                continue
            flags = parts[2].split(",")
            slots: list[tuple[int, int]] = []
            for spec in parts[8:]:
                if spec.startswith("["):  # slot being migrated/imported
                    continue
                lo, _, hi = spec.partition("-")
                slots.append((int(lo), int(hi or lo)))
            rows.append({
                "id": parts[0],
                "port": int(parts[1].split("@")[0].rsplit(":", 1)[1]),
                "role": "master" if "master" in flags else "replica",
                "master_id": None if parts[3] == "-" else parts[3],
                "slots": slots,
            })
        return rows

    def keyslot(self, key: str) -> int:
        return int(self.run("CLUSTER", "KEYSLOT", key, cluster=False))

    def master_port_for_slot(self, slot: int) -> int:
        for row in self.cluster_nodes():
            if row["role"] == "master" and any(lo <= slot <= hi for lo, hi in row["slots"]):
                return row["port"]
        raise RedisClusterError(f"no master serves slot {slot}")


@pytest.fixture(scope="module")
def redis_cluster() -> Iterator[RedisCluster]:
    """A 6-node (3 masters x 1 replica) cluster with the parameter group's settings."""
    with RedisCluster(nodes_count=6, replicas=1) as cluster:
        yield cluster
