"""The credentials procedure on loopback: Secrets Manager (moto_server), the host script
`cloudinit/scaleladder-db`, and app consumers that follow the secret.

Shared by tests/integration/test_credentials.py and bench/rotation.py. The script runs
exactly as on a host (a subprocess, secrets read with boto3 through AWS_ENDPOINT_URL);
only the consumers are simulated: each runs one transaction per psql process through
PgBouncer at a steady rate and, every `refresh_s`, re-reads its secret and switches to
the new login once a probe login with it succeeds (a failure-free refresh, what the
hosts' refresh hook does by restarting the app behind a drained target).
"""

from __future__ import annotations

import contextlib
import importlib.machinery
import importlib.util
import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from ladder import credentials as cred
from tests.integration.binaries import missing
from tests.integration.pgcluster import PgBouncer, PgCluster, free_port, wait_until

REGION = "us-east-1"
SCRIPT_TIMEOUT = 300.0


@dataclass
class Aws:
    """A moto_server and the secrets the program would create (logical name -> ARN)."""

    endpoint: str
    arns: dict[str, str] = field(default_factory=dict)
    values: dict[str, dict[str, str]] = field(default_factory=dict)
    """What each secret held when created (the test's view of the program's secrets)."""
    _client: Any = None

    @property
    def env(self) -> dict[str, str]:
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION}

    def client(self) -> Any:
        """One boto3 client, shared by the consumers' threads (low-level clients are
        thread-safe; making one per call costs more CPU than the transactions)."""
        if self._client is None:
            import boto3

            self._client = boto3.client("secretsmanager", region_name=REGION, endpoint_url=self.endpoint,
                                        aws_access_key_id="testing", aws_secret_access_key="testing")
        return self._client

    def create(self, name: str, value: dict[str, str]) -> str:
        self.arns[name] = self.client().create_secret(Name=name, SecretString=json.dumps(value))["ARN"]
        return self.arns[name]

    def get(self, name: str) -> dict[str, str]:
        return json.loads(self.client().get_secret_value(SecretId=self.arns[name])["SecretString"])


@contextlib.contextmanager
def moto_server() -> Iterator[Aws]:
    """moto's Secrets Manager on 127.0.0.1 (the `moto[server]` extra in requirements.txt)."""
    binary = Path(sys.executable).parent / "moto_server"
    if not binary.exists():
        missing(["moto_server"], "moto[server] (pip install -r requirements.txt)")
    port = free_port(["127.0.0.1"])
    proc = subprocess.Popen([str(binary), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)

    def listening() -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    try:
        wait_until("moto_server to listen", listening, 30)
        yield Aws(f"http://127.0.0.1:{port}")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def create_secrets(aws: Aws, cluster: PgCluster) -> dict[str, dict[str, str]]:
    """The four secrets as the program creates them (initial logins, random passwords)."""
    assert cluster.master_password, "an rds_like cluster"
    values = {
        cred.SECRET_MASTER: {"username": cred.MASTER_USER, "password": cluster.master_password},
        cred.SECRET_APP: {"username": cred.INITIAL_APP_RW_LOGIN, "password": secrets.token_urlsafe(24)},
        cred.SECRET_APP_RO: {"username": cred.INITIAL_APP_RO_LOGIN, "password": secrets.token_urlsafe(24)},
        cred.SECRET_PGBOUNCER: {"auth_user": cred.PGBOUNCER_AUTH_USER, "auth_password": secrets.token_urlsafe(24),
                                "admin_user": cred.PGBOUNCER_ADMIN_USER, "admin_password": secrets.token_urlsafe(24),
                                "stats_user": cred.PGBOUNCER_STATS_USER, "stats_password": secrets.token_urlsafe(24)},
    }
    for name, value in values.items():
        assert set(value) == set(cred.SECRET_KEYS[name])
        aws.create(name, value)
    aws.values = values
    return values


def conn_args(cluster: PgCluster) -> list[str]:
    """The script's connection options for the cluster's primary (TLS verified, as on RDS)."""
    assert cluster.tls
    return ["--host", cluster.primary.host, "--port", str(cluster.primary.port), "--dbname", cred.DB_NAME,
            "--sslmode", "verify-full", "--sslrootcert", str(cluster.tls.ca_file)]


def script(aws: Aws, *args: str, background: bool = False) -> Any:
    """Run `scaleladder-db args...` as a host would; the CompletedProcess (or the Popen)."""
    cmd = [sys.executable, str(cred.HOST_SCRIPT), *args]
    env = {**os.environ, **aws.env}
    if background:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                stdin=subprocess.DEVNULL, env=env)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=SCRIPT_TIMEOUT,
                          stdin=subprocess.DEVNULL, env=env)


def bootstrap_args(aws: Aws, cluster: PgCluster) -> list[str]:
    return ["bootstrap", *conn_args(cluster), "--master-secret", aws.arns[cred.SECRET_MASTER],
            "--app-secret", aws.arns[cred.SECRET_APP], "--app-ro-secret", aws.arns[cred.SECRET_APP_RO],
            "--pgbouncer-secret", aws.arns[cred.SECRET_PGBOUNCER], "--sql", str(cred.BOOTSTRAP_SQL),
            "--wait", "30"]


def write_userlist(aws: Aws, path: Path, owner: str | None) -> None:
    """PgBouncer's auth file, written by the script from db-pgbouncer (as a host does)."""
    args = ["pgbouncer-userlist", "--pgbouncer-secret", aws.arns[cred.SECRET_PGBOUNCER], "--output", str(path)]
    done = script(aws, *args, *(["--owner", owner] if owner else []))
    assert done.returncode == 0, done.stdout + done.stderr


def console_passwords(values: dict[str, dict[str, str]]) -> dict[str, str]:
    b = values[cred.SECRET_PGBOUNCER]
    return {b["admin_user"]: b["admin_password"], b["stats_user"]: b["stats_password"]}


def load_script() -> ModuleType:
    """cloudinit/scaleladder-db as a module (it has no .py suffix: it is installed as a command)."""
    name = "scaleladder_db"
    if name in sys.modules:
        return sys.modules[name]
    loader = importlib.machinery.SourceFileLoader(name, str(cred.HOST_SCRIPT))
    spec = importlib.util.spec_from_loader(name, loader)
    assert spec
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the file runs
    loader.exec_module(module)
    return module


# ---------------------------------------------------------------- consumers and the rotation


@dataclass
class Consumer:
    """One app process: a transaction every 1/rate s through PgBouncer `db`, credentials
    from the `secret`, re-read every `refresh_s`."""

    name: str
    aws: Aws
    bouncer: PgBouncer
    secret: str
    db: str
    sql: str
    rate: float
    refresh_s: float
    login: str = ""
    password: str = ""
    transactions: int = 0
    failures: list[str] = field(default_factory=list)
    refreshed_at: list[tuple[float, str]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        value = self.aws.get(self.secret)
        self.login, self.password = value["username"], value["password"]
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=60)

    def _run(self, sql: str, login: str, password: str) -> subprocess.CompletedProcess[str]:
        return self.bouncer.psql(sql, db=self.db, user=login, password=password, connect_timeout=10)

    def _refresh(self) -> None:
        value = self.aws.get(self.secret)
        if value["username"] == self.login and value["password"] == self.password:
            return
        # Failure-free: switch only once the new credential logs in; keep the old meanwhile.
        if self._run("SELECT 1", value["username"], value["password"]).returncode == 0:
            self.login, self.password = value["username"], value["password"]
            self.refreshed_at.append((time.monotonic(), self.login))

    def _loop(self) -> None:
        period = 1.0 / self.rate
        next_tx = next_refresh = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_refresh:
                self._refresh()
                next_refresh = now + self.refresh_s
            done = self._run(self.sql.format(consumer=self.name), self.login, self.password)
            self.transactions += 1
            if done.returncode != 0:
                self.failures.append(f"{self.login}: {done.stderr.strip()}")
            next_tx += period
            self._stop.wait(max(0.0, next_tx - time.monotonic()))


@dataclass(frozen=True)
class RotationRun:
    rotate_code: int
    rotate_output: str
    old_login: str
    new_login: str
    transactions: int
    failures: list[str]
    seconds_to_last_refresh: float | None
    rotation_seconds: float
    consumers: int
    rate: float
    consumers_on_new: int


def rotate_under_load(aws: Aws, cluster: PgCluster, bouncer: PgBouncer, *, secret: str = cred.SECRET_APP,
                      consumers: int = 4, rate: float = 10.0, refresh_s: float = 1.0, min_wait: float = 4.0,
                      max_wait: float = 60.0, warmup: float = 2.0, cooldown: float = 2.0) -> RotationRun:
    """Consumers at `rate` tx/s each, then `scaleladder-db rotate` of `secret` watching
    PgBouncer's clients; consumers keep going `cooldown` s after it returns."""
    rw = secret == cred.SECRET_APP
    db = "app" if rw else "app_ro"
    sql = ("INSERT INTO rotation_log (consumer) VALUES ('{consumer}')" if rw
           else "SELECT count(*) FROM rotation_log")
    old = aws.get(secret)["username"]
    workers = [Consumer(f"c{i}", aws, bouncer, secret, db, sql, rate, refresh_s) for i in range(consumers)]
    for worker in workers:
        worker.start()
    try:
        time.sleep(warmup)
        started = time.monotonic()
        done = script(aws, "rotate", *conn_args(cluster), "--master-secret", aws.arns[cred.SECRET_MASTER],
                      "--secret", aws.arns[secret], "--min-wait", str(min_wait), "--max-wait", str(max_wait),
                      "--watch-pgbouncer", f"{bouncer.host}:{bouncer.port}",
                      "--pgbouncer-secret", aws.arns[cred.SECRET_PGBOUNCER])
        rotation_seconds = time.monotonic() - started
        time.sleep(cooldown)
    finally:
        for worker in workers:
            worker.stop()
    new = aws.get(secret)["username"]
    switches = [t for w in workers for t, login in w.refreshed_at if login == new]
    return RotationRun(
        rotate_code=done.returncode, rotate_output=(done.stdout + done.stderr).strip(), old_login=old,
        new_login=new, transactions=sum(w.transactions for w in workers),
        failures=[f for w in workers for f in w.failures],
        seconds_to_last_refresh=(max(switches) - started) if len(switches) == consumers else None,
        rotation_seconds=rotation_seconds, consumers=consumers, rate=rate,
        consumers_on_new=sum(1 for w in workers if w.login == new))
