"""A real, local PostgreSQL primary with streaming replicas, and PgBouncer in front of it.

The shape of phase 3 on loopback: a primary on 127.0.0.1 and replicas on 127.0.0.2,
127.0.0.3 ... (all of 127/8 is loopback on Linux), every server on the same port as RDS
instances share 5432, each cloned from the primary with `pg_basebackup -R`. With
`tls=True` the servers present a certificate signed by a throwaway CA made with
openssl and accept TCP logins only over TLS (`hostssl`), like RDS with
`rds.force_ssl`. A role and database `app` exist; the role's password is random.

PgBouncer runs the config rendered by `ladder.pgbouncer`, with an auth file holding
the `app` role's SCRAM secret (copied from pg_authid, the way a host can store it
instead of the plain password) and plain passwords for the console users.

PostgreSQL refuses to run as root: when the tests run as root, servers and PgBouncer
run as the `postgres` user in a temporary directory it owns. Clients (psql, pgbench)
run as whoever runs the tests. Entry points: `pg_cluster(...)` and
`running_pgbouncer(...)` context managers; `ConnectionSampler` to watch server
connections during a load; `run_pgbench` to make one.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

_REPO_ROOT = Path(__file__).resolve().parents[2]
if str(_REPO_ROOT) not in sys.path:  # so `ladder` imports however pytest is launched
    sys.path.insert(0, str(_REPO_ROOT))

from ladder import credentials  # noqa: E402
from ladder import pgbouncer as pgb  # noqa: E402
from tests.integration.binaries import missing, which  # noqa: E402  (after the sys.path fix)

SERVICE_USER = "postgres"  # runs the servers when the tests run as root
APP_USER = "app"
ADMIN_USER = "pgbouncer_admin"
STATS_USER = "pgbouncer_stats"
START_TIMEOUT = 60.0  # seconds for a server or PgBouncer to accept connections
REPLAY_TIMEOUT = 30.0  # seconds for replicas to replay a given WAL position
CMD_TIMEOUT = 60.0  # seconds for any single client command
POLL = 0.05  # seconds between checks in bounded waits

PG_SERVER_BINARIES = ("initdb", "pg_ctl", "postgres", "pg_basebackup")
CLIENT_BINARIES = ("psql", "pgbench", "pgbouncer", "openssl")


class PgClusterError(RuntimeError):
    """A local server could not be started or did not reach the expected state."""


# ---------------------------------------------------------------- binaries and users


def _pg_bindir() -> Path | None:
    """Where initdb lives: $SCALELADDER_PG_BINDIR, else the newest Debian-style
    /usr/lib/postgresql/N/bin (not on PATH there), else PATH."""
    if os.environ.get("SCALELADDER_PG_BINDIR"):
        return Path(os.environ["SCALELADDER_PG_BINDIR"])
    debian = [Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin") if (Path(p) / "initdb").exists()]
    if debian:
        return max(debian, key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@dataclass(frozen=True)
class Binaries:
    bindir: Path
    psql: str
    pgbench: str
    pgbouncer: str
    openssl: str

    def pg(self, name: str) -> str:
        return str(self.bindir / name)


def require_binaries() -> Binaries:
    """PostgreSQL, PgBouncer and openssl; fail the test (or skip, if asked to) when missing.

    Integration tests are part of the suite: a missing server is a broken setup, not a
    reason to pass quietly. SCALELADDER_SKIP_INTEGRATION=1 is the explicit opt-out.
    """
    bindir = _pg_bindir()
    # Debian installs pgbouncer in /usr/sbin, often not on a non-root PATH.
    found = {name: which(name) for name in CLIENT_BINARIES}
    absent = [n for n, p in found.items() if not p]
    absent += [n for n in PG_SERVER_BINARIES if not bindir or not (bindir / n).exists()]
    if absent or not bindir:
        missing(absent, "PostgreSQL and PgBouncer")
    return Binaries(bindir, psql=str(found["psql"]), pgbench=str(found["pgbench"]),
                    pgbouncer=str(found["pgbouncer"]), openssl=str(found["openssl"]))


def installed_pgbouncer_version(bins: Binaries) -> str:
    """`"1.18"` for PgBouncer 1.18.0: the version to render the config for."""
    out = subprocess.run([bins.pgbouncer, "--version"], capture_output=True, text=True,
                         timeout=CMD_TIMEOUT, check=True).stdout
    match = re.search(r"PgBouncer (\d+)\.(\d+)", out)
    if not match:
        raise PgClusterError(f"cannot read the PgBouncer version from {out!r}")
    return f"{match[1]}.{match[2]}"


def _as_service_user() -> dict[str, Any]:
    """subprocess kwargs that drop root to the service user (PostgreSQL refuses root)."""
    if os.geteuid() != 0:
        return {}
    return {"user": SERVICE_USER, "group": pwd.getpwnam(SERVICE_USER).pw_gid, "extra_groups": []}


def _give_to_service_user(path: Path) -> None:
    if os.geteuid() == 0:
        entry = pwd.getpwnam(SERVICE_USER)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def _write(path: Path, text: str, mode: int = 0o644) -> Path:
    path.write_text(text)
    path.chmod(mode)
    _give_to_service_user(path)
    return path


def _run(cmd: list[str], *, service: bool = False, env: Mapping[str, str] | None = None,
         check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=CMD_TIMEOUT,
                          stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})},
                          cwd="/", **(_as_service_user() if service else {}))
    if check and done.returncode != 0:
        raise PgClusterError(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()}")
    return done


def free_port(hosts: list[str]) -> int:
    """A TCP port free on every address in `hosts` (servers share one port, as on RDS)."""
    for _ in range(200):  # bounded: give up rather than loop forever
        with socket.socket() as s:
            s.bind((hosts[0], 0))
            port = s.getsockname()[1]
        if all(_port_free(h, port) for h in hosts):
            return port
    raise PgClusterError(f"no port free on all of {hosts}")


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def wait_until(what: str, check: Any, timeout: float) -> Any:
    """Poll `check()` until it returns something truthy; raise PgClusterError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise PgClusterError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(POLL)


# ---------------------------------------------------------------- TLS


@dataclass(frozen=True)
class Tls:
    ca_file: Path
    cert_file: Path
    key_file: Path


def make_tls(bins: Binaries, workdir: Path, hosts: list[str], name: str = "scaleladder-test") -> Tls:
    """A throwaway CA and a server certificate for `hosts` (IP SANs), signed by it."""
    workdir.mkdir(parents=True, exist_ok=True)
    _give_to_service_user(workdir)
    ca_key, ca, key, csr, cert = (workdir / n for n in ("ca.key", "ca.crt", "server.key", "server.csr", "server.crt"))
    ext = _write(workdir / "san.ext", "subjectAltName=" + ",".join(f"IP:{h}" for h in hosts) + "\n")
    openssl = bins.openssl
    _run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
          f"/CN={name} CA", "-keyout", str(ca_key), "-out", str(ca)])
    _run([openssl, "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={hosts[0]}",
          "-keyout", str(key), "-out", str(csr)])
    _run([openssl, "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
          "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(cert)])
    for path in (ca, cert, key):
        path.chmod(0o600 if path == key else 0o644)
        _give_to_service_user(path)
    return Tls(ca, cert, key)


# ---------------------------------------------------------------- PostgreSQL servers


@dataclass
class PgServer:
    """One running PostgreSQL server: TCP on host:port, Unix socket in its own dir."""

    bins: Binaries
    name: str
    host: str
    port: int
    datadir: Path
    sockdir: Path

    @property
    def log(self) -> Path:
        return self.datadir.parent / f"{self.name}.log"

    def start(self) -> None:
        opts = (f"-c listen_addresses={self.host} -c port={self.port} "
                f"-c unix_socket_directories={self.sockdir}")
        done = _run([self.bins.pg("pg_ctl"), "start", "-w", "-t", str(int(START_TIMEOUT)),
                     "-D", str(self.datadir), "-l", str(self.log), "-o", opts],
                    service=True, check=False)
        if done.returncode != 0:
            raise PgClusterError(f"{self.name} did not start: {done.stderr.strip()}\n{self.log_tail()}")

    def stop(self) -> None:
        if (self.datadir / "postmaster.pid").exists():
            _run([self.bins.pg("pg_ctl"), "stop", "-w", "-m", "fast", "-D", str(self.datadir)],
                 service=True, check=False)

    def log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text().splitlines()[-lines:])
        return ""

    def psql(self, sql: str, *, db: str = "postgres", user: str = "postgres") -> str:
        """Run `sql` as a superuser over the Unix socket (trust); tuples only, `|`-separated."""
        done = _run([self.bins.psql, "-X", "-qAt", "-v", "ON_ERROR_STOP=1", "-h", str(self.sockdir),
                     "-p", str(self.port), "-U", user, "-d", db, "-c", sql])
        return done.stdout.strip()


def server_connections_sql(user: str, dbname: str) -> str:
    """Client backends of `user` on `dbname`: PgBouncer's server connections of one pool."""
    return ("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
            f"AND usename = '{user}' AND datname = '{dbname}'")


def server_connections(server: PgServer, user: str = APP_USER, dbname: str = "app") -> int:
    """How many connections `user` holds on `dbname` of `server` right now."""
    return int(server.psql(server_connections_sql(user, dbname)))


def _postgresql_conf(tls: Tls | None, max_connections: int) -> str:
    lines = [
        f"max_connections = {max_connections}",
        "wal_level = replica",
        "max_wal_senders = 10",
        "hot_standby = on",
        "hot_standby_feedback = on",  # replica reads never cancelled by vacuum on the primary
        "password_encryption = 'scram-sha-256'",
        "fsync = off",  # throwaway cluster: durability buys nothing, speed helps
        "synchronous_commit = off",
        "full_page_writes = off",
        "log_min_messages = warning",
    ]
    if tls:
        lines += ["ssl = on", f"ssl_cert_file = '{tls.cert_file}'", f"ssl_key_file = '{tls.key_file}'"]
    return "\n".join(lines) + "\n"


def _pg_hba(tls: bool) -> str:
    """Superuser and replication over the Unix socket only; `app` over TCP with SCRAM
    (and, with TLS, only over TLS: a plain-TCP login is refused, as under rds.force_ssl)."""
    tcp = "hostssl" if tls else "host"
    return ("local all all trust\n"
            "local replication all trust\n"
            f"{tcp} all all 127.0.0.0/8 scram-sha-256\n")


@dataclass
class PgCluster:
    """A primary, its streaming replicas and the `app` role and database."""

    bins: Binaries
    workdir: Path
    primary: PgServer
    replicas: list[PgServer]
    tls: Tls | None
    app_password: str
    dbname: str = "app"
    master_password: str | None = None
    """Set when the cluster was made RDS-like (`rds_like=True`): see `_init_rds_like`."""

    @property
    def servers(self) -> list[PgServer]:
        return [self.primary, *self.replicas]

    def app_scram_secret(self) -> str:
        """The `app` role's stored SCRAM verifier: what a PgBouncer auth file may hold."""
        return self.primary.psql(f"SELECT rolpassword FROM pg_authid WHERE rolname = '{APP_USER}'")

    def wait_replayed(self, timeout: float = REPLAY_TIMEOUT) -> str:
        """Block until every replica has replayed the primary's current WAL position."""
        lsn = self.primary.psql("SELECT pg_current_wal_lsn()")
        for replica in self.replicas:
            wait_until(f"{replica.name} to replay {lsn}", lambda r=replica: r.psql(
                f"SELECT pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn") == "t", timeout)
        return lsn


def _init_primary(bins: Binaries, server: PgServer, tls: Tls | None,
                  max_connections: int, password: str | None) -> None:
    _run([bins.pg("initdb"), "-D", str(server.datadir), "-U", "postgres", "-E", "UTF8",
          "--locale=C", "--auth-local=trust", "--auth-host=scram-sha-256"], service=True)
    with (server.datadir / "postgresql.conf").open("a") as conf:
        conf.write(_postgresql_conf(tls, max_connections))
    _write(server.datadir / "pg_hba.conf", _pg_hba(tls is not None), 0o600)
    server.start()
    if password is None:
        return
    server.psql(f"CREATE ROLE {APP_USER} LOGIN PASSWORD '{password}'")
    server.psql(f"CREATE DATABASE app OWNER {APP_USER}")


def _init_rds_like(server: PgServer, master_password: str) -> None:
    """RDS's shape: the master is not a superuser but a CREATEROLE/CREATEDB member of an
    `rds_superuser` group and owns the app database; only the bootstrap makes app roles."""
    server.psql("CREATE ROLE rds_superuser NOLOGIN")
    server.psql(f"CREATE ROLE {credentials.MASTER_USER} LOGIN CREATEROLE CREATEDB IN ROLE rds_superuser "
                f"PASSWORD '{master_password}'")
    server.psql(f"CREATE DATABASE {credentials.DB_NAME} OWNER {credentials.MASTER_USER}")


def _clone_replica(bins: Binaries, primary: PgServer, replica: PgServer) -> None:
    _run([bins.pg("pg_basebackup"), "-D", str(replica.datadir), "-R", "-X", "stream", "-c", "fast",
          "-h", str(primary.sockdir), "-p", str(primary.port), "-U", "postgres"], service=True)
    replica.start()


def _wait_streaming(primary: PgServer, count: int) -> None:
    wait_until(f"{count} replicas streaming from the primary", lambda: primary.psql(
        "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'") == str(count), START_TIMEOUT)


def _server(bins: Binaries, workdir: Path, name: str, host: str, port: int) -> PgServer:
    sockdir = workdir / f"{name}.sock"
    sockdir.mkdir()
    _give_to_service_user(sockdir)
    return PgServer(bins, name, host, port, workdir / name, sockdir)


def service_workdir(prefix: str) -> Path:
    """A fresh temporary directory the service user owns (pytest's tmp_path is root-only)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    _give_to_service_user(path)
    return path


@contextlib.contextmanager
def pg_cluster(replicas: int = 2, *, tls: bool = True, max_connections: int = 500,
               rds_like: bool = False) -> Iterator[PgCluster]:
    """Start a primary on 127.0.0.1 and `replicas` streaming replicas on 127.0.0.2.. ; stop all after.

    `rds_like`: no `app` role; the non-superuser master owns the app database instead."""
    bins = require_binaries()
    workdir = service_workdir("scaleladder-pg-")
    hosts = [f"127.0.0.{i + 1}" for i in range(replicas + 1)]
    names = ["primary", *(f"replica{i + 1}" for i in range(replicas))]
    servers: list[PgServer] = []
    try:
        port = free_port(hosts)
        servers = [_server(bins, workdir, name, host, port) for name, host in zip(names, hosts)]
        cluster = PgCluster(bins, workdir, servers[0], servers[1:],
                            make_tls(bins, workdir / "tls", hosts) if tls else None, secrets.token_hex(16))
        if rds_like:
            cluster.master_password = secrets.token_hex(16)
            _init_primary(bins, cluster.primary, cluster.tls, max_connections, None)
            _init_rds_like(cluster.primary, cluster.master_password)
        else:
            _init_primary(bins, cluster.primary, cluster.tls, max_connections, cluster.app_password)
        for replica in cluster.replicas:
            _clone_replica(bins, cluster.primary, replica)
        _wait_streaming(cluster.primary, replicas)
        yield cluster
    finally:
        for server in reversed(servers):
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


# ---------------------------------------------------------------- PgBouncer


def quote_userlist(value: str) -> str:
    """A PgBouncer auth-file field: double-quoted, inner quotes doubled."""
    return '"' + value.replace('"', '""') + '"'


@dataclass
class PgBouncer:
    """A running PgBouncer: console users' passwords, and helpers to reach it with psql."""

    bins: Binaries
    host: str
    port: int
    workdir: Path
    passwords: dict[str, str]
    proc: subprocess.Popen[str] | None = None

    @property
    def log(self) -> Path:
        return self.workdir / "pgbouncer.log"

    def psql(self, sql: str, *, db: str, user: str = APP_USER, connect_timeout: int = 20,
             password: str | None = None, sslmode: str = "require") -> subprocess.CompletedProcess[str]:
        """Run `sql` through PgBouncer as `user` (SCRAM with its password); caller checks the result.

        PgBouncer requires TLS from clients (`client_tls_sslmode`): `sslmode=require`, as
        the app connects. A client whose pool cannot log in to its server waits in
        PgBouncer until `connect_timeout` seconds pass: lower it where failing is expected.
        """
        return _run([self.bins.psql, "-X", "-qAt", "-v", "ON_ERROR_STOP=1", "-h", self.host,
                     "-p", str(self.port), "-U", user, "-d", db, "-c", sql],
                    env={"PGPASSWORD": password if password is not None else self.passwords[user],
                         "PGSSLMODE": sslmode, "PGCONNECT_TIMEOUT": str(connect_timeout)}, check=False)

    def query(self, sql: str, *, db: str, user: str = APP_USER, password: str | None = None) -> str:
        """Like `psql` but raises on error; returns the output."""
        done = self.psql(sql, db=db, user=user, password=password)
        if done.returncode != 0:
            raise PgClusterError(f"{sql!r} via PgBouncer db {db} failed: {done.stderr.strip()}")
        return done.stdout.strip()

    def console(self, command: str, user: str = ADMIN_USER) -> list[list[str]]:
        """Rows of an admin-console command (`SHOW CONFIG` ...) as lists of strings."""
        out = self.query(command, db="pgbouncer", user=user)
        return [line.split("|") for line in out.splitlines() if line]

    def show_config(self) -> dict[str, str]:
        return {row[0]: row[1] for row in self.console("SHOW CONFIG")}

    def log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text().splitlines()[-lines:])
        return ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGTERM)  # immediate shutdown
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def pgbouncer_ini_data(cluster: PgCluster, workdir: Path, *, version: str, pool_mode: str = "transaction",
                       max_client_conn: int = 300, default_pool_size: int = 10,
                       reserve_pool_size: int = 2, **overrides: Any) -> dict[str, Any]:
    """`ladder.pgbouncer.ini_data` for this cluster, with host paths moved into `workdir`.

    Client TLS reuses the cluster's throwaway certificate (or makes one for a cluster
    without TLS): on hosts it is a per-host self-signed pair made at boot."""
    tls = cluster.tls
    client_tls = tls or make_tls(cluster.bins, workdir / "client-tls", ["127.0.0.1"])
    args: dict[str, Any] = {
        "version": version,
        "pool_mode": pool_mode,
        "max_client_conn": max_client_conn,
        "default_pool_size": default_pool_size,
        "reserve_pool_size": reserve_pool_size,
        "primary_host": cluster.primary.host,
        "replica_hosts": [r.host for r in cluster.replicas],
        "db_port": cluster.primary.port,
        "dbname": cluster.dbname,
        "listen_addr": "127.0.0.1",
        "listen_port": free_port(["127.0.0.1"]),
        "server_tls_sslmode": "verify-full" if tls else "disable",
        "server_tls_ca_file": str(tls.ca_file) if tls else "",
        "auth_file": str(workdir / "userlist.txt"),
        "admin_users": [ADMIN_USER],
        "stats_users": [STATS_USER],
        "unix_socket_dir": str(workdir),
        "logfile": str(workdir / "pgbouncer.log"),
        "client_tls_key_file": str(client_tls.key_file),
        "client_tls_cert_file": str(client_tls.cert_file),
    }
    args.update(overrides)
    return pgb.ini_data(**args)


def write_userlist(path: Path, entries: Mapping[str, str]) -> None:
    """The auth file a host writes at boot from Secrets Manager (here: from the test)."""
    _write(path, "".join(f"{quote_userlist(u)} {quote_userlist(s)}\n" for u, s in entries.items()), 0o600)


@contextlib.contextmanager
def running_pgbouncer(cluster: PgCluster, data: Mapping[str, Any], workdir: Path, *,
                      plain_password: bool = False,
                      console_passwords: Mapping[str, str] | None = None) -> Iterator[PgBouncer]:
    """Write the auth file and the rendered config (`data` from `pgbouncer_ini_data`), start
    PgBouncer in the foreground, wait until its console answers; stop it afterwards.

    `plain_password`: the auth file holds the `app` role's password instead of its SCRAM
    secret (needed when `auth_type` does not make clients prove it, e.g. `trust`).
    `console_passwords`: the auth file was already written (by `scaleladder-db
    pgbouncer-userlist`, as on a host) with these console users' passwords; app logins
    are then looked up through auth_query."""
    if console_passwords is not None:
        passwords = dict(console_passwords)
    else:
        passwords = {APP_USER: cluster.app_password, ADMIN_USER: secrets.token_hex(12),
                     STATS_USER: secrets.token_hex(12)}
        app_secret = cluster.app_password if plain_password else cluster.app_scram_secret()
        write_userlist(Path(data["auth_file"]), {APP_USER: app_secret,
                                                 ADMIN_USER: passwords[ADMIN_USER],
                                                 STATS_USER: passwords[STATS_USER]})
    ini = _write(workdir / "pgbouncer.ini", pgb.render_ini(dict(data)))
    bouncer = PgBouncer(cluster.bins, data["listen_addr"], data["listen_port"], workdir, passwords)
    with (workdir / "pgbouncer.stderr").open("w") as stderr:  # a file: a full pipe would stall it
        bouncer.proc = subprocess.Popen([cluster.bins.pgbouncer, str(ini)], stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=stderr, text=True,
                                        cwd="/", **_as_service_user())
    try:
        _wait_console(bouncer)
        yield bouncer
    finally:
        bouncer.stop()


def _wait_console(bouncer: PgBouncer) -> None:
    def answers() -> bool:
        if not bouncer.alive():
            assert bouncer.proc is not None
            stderr = (bouncer.workdir / "pgbouncer.stderr").read_text().strip()
            raise PgClusterError(f"pgbouncer exited ({bouncer.proc.returncode}): {stderr or bouncer.log_tail()}")
        return bouncer.psql("SHOW VERSION", db="pgbouncer", user=ADMIN_USER).returncode == 0
    wait_until("pgbouncer's console to answer", answers, START_TIMEOUT)


def pgbouncer_rejects(cluster: PgCluster, data: Mapping[str, Any], workdir: Path) -> str | None:
    """Start PgBouncer on `data`; the error it exits with, or None if it came up."""
    try:
        with running_pgbouncer(cluster, data, workdir):
            return None
    except PgClusterError as err:
        return str(err)


# ---------------------------------------------------------------- load and sampling


@dataclass
class ConnectionSampler:
    """Samples, in a background thread, the server connections each pool holds.

    `pools` maps a pool name to the servers behind it; each sample counts `user`'s
    connections to `dbname` on every server of the pool (all servers queried in
    parallel) and keeps the peak per pool and per server.
    """

    pools: dict[str, list[PgServer]]
    user: str = APP_USER
    dbname: str = "app"
    peaks: dict[str, int] = field(default_factory=dict)
    server_peaks: dict[str, int] = field(default_factory=dict)
    samples: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _error: BaseException | None = None

    def __enter__(self) -> ConnectionSampler:
        self._thread = threading.Thread(target=self._loop, name="pg-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=CMD_TIMEOUT)
        if self._error:
            raise PgClusterError(f"sampling failed: {self._error}") from self._error

    def _loop(self) -> None:
        try:
            while not self._stop.is_set():
                self.sample()
                self._stop.wait(POLL / 5)
        except BaseException as err:  # surfaced in __exit__
            self._error = err

    def sample(self) -> dict[str, int]:
        servers = {s.name: s for pool in self.pools.values() for s in pool}
        counts = self._count_all(list(servers.values()))
        for name, n in counts.items():
            self.server_peaks[name] = max(self.server_peaks.get(name, 0), n)
        totals = {pool: sum(counts[s.name] for s in members) for pool, members in self.pools.items()}
        for pool, n in totals.items():
            self.peaks[pool] = max(self.peaks.get(pool, 0), n)
        self.samples += 1
        return totals

    def _count_all(self, servers: list[PgServer]) -> dict[str, int]:
        sql = server_connections_sql(self.user, self.dbname)
        procs = {s.name: subprocess.Popen(
            [s.bins.psql, "-X", "-qAt", "-h", str(s.sockdir), "-p", str(s.port), "-U", "postgres",
             "-d", "postgres", "-c", sql], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL, text=True) for s in servers}
        counts = {}
        for name, proc in procs.items():
            out, err = proc.communicate(timeout=CMD_TIMEOUT)
            if proc.returncode != 0:
                raise PgClusterError(f"counting connections on {name}: {err.strip()}")
            counts[name] = int(out.strip())
        return counts


@dataclass(frozen=True)
class PgbenchResult:
    clients: int
    transactions: int
    expected: int
    failed: int
    returncode: int
    output: str


def start_pgbench(bouncer: PgBouncer, db: str, *, clients: int, transactions: int,
                  select_only: bool, threads: int = 2) -> subprocess.Popen[str]:
    """pgbench through PgBouncer: `clients` connections, each running `transactions`
    transactions (no vacuum: the ro pool cannot vacuum a replica)."""
    cmd = [bouncer.bins.pgbench, "-n", "-h", bouncer.host, "-p", str(bouncer.port), "-U", APP_USER,
           "-c", str(clients), "-j", str(threads), "-t", str(transactions), *(["-S"] if select_only else []), db]
    env = {**os.environ, "PGPASSWORD": bouncer.passwords[APP_USER], "PGSSLMODE": "require"}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            stdin=subprocess.DEVNULL, env=env)


def finish_pgbench(proc: subprocess.Popen[str], timeout: float = 600) -> PgbenchResult:
    """Wait for pgbench and read what it reports (clients, transactions done, failures)."""
    out, _ = proc.communicate(timeout=timeout)

    def number(pattern: str, default: int = -1) -> int:
        match = re.search(pattern, out, re.MULTILINE)
        return int(match[1]) if match else default

    processed = re.search(r"^number of transactions actually processed: (\d+)/(\d+)", out, re.MULTILINE)
    return PgbenchResult(
        clients=number(r"^number of clients: (\d+)"),
        transactions=int(processed[1]) if processed else -1,
        expected=int(processed[2]) if processed else -1,
        failed=number(r"^number of failed transactions: (\d+)", default=0),
        returncode=proc.returncode,
        output=out,
    )


def init_pgbench(cluster: PgCluster, scale: int = 1) -> None:
    """pgbench's tables in `app`, owned by `app`, created on the primary and replayed."""
    _run([cluster.bins.pgbench, "-i", "-q", "-s", str(scale), "-h", str(cluster.primary.sockdir),
          "-p", str(cluster.primary.port), "-U", APP_USER, cluster.dbname])
    cluster.wait_replayed()


# ---------------------------------------------------------------- pytest fixtures


@pytest.fixture(scope="module")
def pgcluster() -> Iterator[PgCluster]:
    """A TLS-only primary with two streaming replicas, for one test module."""
    with pg_cluster(replicas=2, tls=True) as cluster:
        yield cluster
