"""The 2 -> 3 cutover on loopback: app hosts move from RDS to PgBouncer one by one under load
and nginx in front of them loses no request.

Real servers (tests/integration/pgcluster.py): a TLS PostgreSQL primary with a streaming
replica, and PgBouncer with the rendered pgbouncer.ini in front. Real nginx with the rendered
`nginx/load_balancer.conf.j2` (nginx mode's LB host; the ALB's role in front of a group) in
front of two app hosts. Each host runs the real `cloudinit/boot.sh` as installed, from its own
boot.env, with stand-ins only for what has no loopback twin: `aws` (Secrets Manager answers from
a file), `curl` (the RDS CA bundle is the test cluster's CA) and `docker` (a "container" is a
small HTTP app that runs every request's query with psql against the DATABASE_URL of its
--env-file, the way the app reads it). Moving a host is what a new launch template does to it:
boot.env names the PgBouncer route and the boot path runs (env file rewritten, container
replaced with `docker rm -f` + `docker run`), one host at a time, as the instance refresh
replaces hosts one by one while the others serve.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from components.fleet import BOOT_SECONDS
from ladder import pgbouncer as pgbouncer_names
from ladder.templates import render
from ladder.userdata import load_balancer_data
from tests.integration.nginx_harness import Nginx, free_port, request
from tests.integration.pgcluster import (
    APP_USER,
    PgBouncer,
    PgCluster,
    installed_pgbouncer_version,
    pg_cluster,
    pgbouncer_ini_data,
    require_binaries,
    running_pgbouncer,
    service_workdir,
    wait_until,
)

REPO = Path(__file__).resolve().parents[2]
IMAGE = "ghcr.io/your-org/your-api:1.0.0"
SECRETS = {"arn:aws:secretsmanager:us-east-1:123456789012:secret:db-app": "app",
           "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-app-ro": "app",
           "arn:aws:secretsmanager:us-east-1:123456789012:secret:redis": "redis"}
CLIENTS = 4
FAIL_TIMEOUT_S = 2
CLIENT_PAUSE_S = 0.02

# The app container: GET / runs one query through DATABASE_URL (psql), answers which database
# endpoint served it; GET /health answers without the database. Exits at once on SIGKILL, like
# a container under `docker rm -f`.
APP = r'''
import json, os, subprocess, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
env_file, port, ca_source, name = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
env = dict(line.split("=", 1) for line in open(env_file).read().splitlines() if "=" in line)
url = urlsplit(env["DATABASE_URL"])
query = []
for k, v in parse_qsl(url.query):
    if k == "uselibpqcompat":  # node-postgres's own switch (libpq semantics): psql is libpq
        continue
    query.append((k, ca_source if k == "sslrootcert" and v == "/etc/ssl/rds-ca.pem" else v))  # the -v mount
conninfo = urlunsplit(url._replace(query=urlencode(query)))
endpoint = f"{url.hostname}:{url.port}"
class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def answer(self, status, body):
        data = json.dumps({"id": name, **body}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def do_GET(self):
        if self.path.startswith("/health"):
            return self.answer(200, {})
        run = subprocess.run(["psql", "-XAtq", "-c", "SELECT 1", conninfo], capture_output=True, text=True,
                             timeout=20, env={**os.environ, "PGCONNECT_TIMEOUT": "10"})
        if run.returncode == 0 and run.stdout.strip() == "1":
            self.answer(200, {"db": endpoint})
        else:
            self.answer(500, {"db": endpoint, "error": run.stderr[-300:]})
with Server(("127.0.0.1", port), Handler) as server:
    print("listening", flush=True)
    server.serve_forever()
'''

# `docker` as boot.sh calls it: pull/login/logout, `rm -f NAME` (SIGKILL, as docker does), and
# `run -d --name N ... --env-file F -v SRC:DST:ro -p 127.0.0.1:HP:CP ... IMAGE`.
DOCKER = r'''
import json, os, signal, subprocess, sys, time
state = os.environ["CUTOVER_STATE"]
os.makedirs(state, exist_ok=True)
cmd, args = sys.argv[1], sys.argv[2:]
def record(name): return os.path.join(state, name + ".json")
def gone(pid):
    try:
        return open(f"/proc/{pid}/stat").read().split()[2] == "Z"
    except OSError:
        return True
if cmd in ("pull", "login", "logout"):
    sys.exit(0)
if cmd == "rm":
    name = args[-1]
    if not os.path.exists(record(name)):
        sys.exit(1)
    pid = json.load(open(record(name)))["pid"]
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    while not gone(pid):
        time.sleep(0.01)
    os.unlink(record(name))
    sys.exit(0)
if cmd == "run":
    opts, i = {}, 0
    while args[i].startswith("-"):
        if args[i] in ("-d", "--read-only"):
            i += 1
            continue
        opts.setdefault(args[i], []).append(args[i + 1])
        i += 2
    name, host_port = opts["--name"][0], opts["-p"][0].split(":")[1]
    ca_source = opts["-v"][0].split(":")[0]
    log = open(os.path.join(state, name + ".log"), "a")
    proc = subprocess.Popen([sys.executable, os.environ["CUTOVER_APP"], opts["--env-file"][0], host_port, ca_source,
                             os.environ["CUTOVER_HOST"]], stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                            start_new_session=True)
    json.dump({"pid": proc.pid}, open(record(name), "w"))
    sys.exit(0)
sys.exit(f"fake docker: {cmd} not implemented")
'''

# `aws --region R secretsmanager get-secret-value --secret-id ARN --query SecretString|VersionId --output text`
AWS = r'''
import json, os, sys
a = sys.argv[1:]
secrets = json.load(open(os.environ["CUTOVER_SECRETS"]))
arn, query = a[a.index("--secret-id") + 1], a[a.index("--query") + 1]
print(secrets[arn] if query == "SecretString" else "v1-" + arn.rsplit(":", 1)[-1])
'''


@dataclass
class Host:
    """One app host: its /etc/scaleladder and /var/lib/scaleladder in a directory, boot.sh as installed."""

    name: str
    dir: Path
    app_port: int
    env: dict[str, str]

    def write_boot_env(self, db_host: str, db_port: int, db_name: str, read_name: str, via_pgbouncer: bool) -> None:
        """The boot.env lines cloudinit/app.yaml.j2 writes (the database route is what changes)."""
        arns = list(SECRETS)
        (self.dir / "etc" / "boot.env").write_text("\n".join([
            "REGION=us-east-1", f"IMAGE={IMAGE}", f"APP_PORT={self.app_port}", 'ROLES="api"',
            'WORKER_COMMAND="node worker.js"', "ASG_NAME=", f"DB_SECRET_ARN={arns[0]}",
            f"DB_READ_SECRET_ARN={arns[1]}", f"DB_HOST={db_host}", f"DB_PORT={db_port}", f"DB_NAME={db_name}",
            f"DB_READ_HOST={db_host}", f"DB_READ_NAME={read_name}",
            f"DB_VIA_PGBOUNCER={'true' if via_pgbouncer else 'false'}", f"REDIS_SECRET_ARN={arns[2]}",
            "REDIS_HOST=127.0.0.1", "REDIS_PORT=6379", "REGISTRY_AUTH=none", "REGISTRY=ghcr.io", ""]))

    def boot(self) -> None:
        """The boot service: env file from the secrets, pull, (re)start the API, record the versions."""
        run = subprocess.run([str(self.dir / "bin" / "scaleladder-boot")], env=self.env, capture_output=True,
                             text=True, timeout=120)
        assert run.returncode == 0, run.stderr

    def app_pid(self) -> int:
        return json.loads((self.dir / "state" / "api.json").read_text())["pid"]

    def serves_via(self) -> str | None:
        try:
            resp = request(self.app_port, "/")
            return resp.json().get("db") if resp.status == 200 else None
        except (OSError, ValueError):
            return None

    def stop(self) -> None:
        subprocess.run([sys.executable, str(self.dir / "bin" / "docker.py"), "rm", "-f", "api"], env=self.env,
                       capture_output=True, timeout=30)


def make_host(name: str, root: Path, ca_file: Path, secrets_file: Path) -> Host:
    d = root / name
    for sub in ("bin", "etc", "state", "var"):
        (d / sub).mkdir(parents=True)
    (d / "bin" / "app.py").write_text(APP)
    (d / "bin" / "docker.py").write_text(DOCKER)
    (d / "bin" / "aws.py").write_text(AWS)
    shims = {"docker": f'exec {sys.executable} {d / "bin" / "docker.py"} "$@"',
             "aws": f'exec {sys.executable} {d / "bin" / "aws.py"} "$@"',
             # curl -fsS --retry 5 URL -o PATH: the RDS CA bundle is this cluster's CA
             "curl": f'while [ "$1" != -o ]; do shift; done; cp {ca_file} "$2"'}
    for tool, body in shims.items():
        (d / "bin" / tool).write_text(f"#!/bin/sh\n{body}\n")
        (d / "bin" / tool).chmod(0o755)
    shutil.copy(REPO / "cloudinit" / "boot.sh", d / "bin" / "scaleladder-boot")
    (d / "etc" / "app.plain.env").write_text("NODE_ENV=production\nREDIS_CLUSTER=false\n")
    env = {**os.environ, "PATH": f"{d / 'bin'}:{os.environ['PATH']}", "SCALELADDER_BOOT_ENV": str(d / "etc" / "boot.env"),
           "SCALELADDER_ETC": str(d / "etc"), "SCALELADDER_VERSIONS_FILE": str(d / "var" / "db-secret-versions"), "CUTOVER_STATE": str(d / "state"),
           "CUTOVER_APP": str(d / "bin" / "app.py"), "CUTOVER_HOST": name, "CUTOVER_SECRETS": str(secrets_file)}
    return Host(name, d, free_port(), env)


class Load:
    """GET / through nginx from several clients until stopped; every outcome counted."""

    def __init__(self, port: int):
        self.port, self.stop_event = port, threading.Event()
        self.outcomes: Counter[str] = Counter()
        self.served: Counter[tuple[str, str]] = Counter()  # (host, database endpoint)
        self.errors: list[str] = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._client, daemon=True) for _ in range(CLIENTS)]

    def _client(self) -> None:
        while not self.stop_event.is_set():
            try:
                resp = request(self.port, "/")
                body = resp.json() if resp.status == 200 else {}
                outcome = str(resp.status)
            except (OSError, ValueError) as err:
                body, outcome = {}, type(err).__name__
            with self.lock:
                self.outcomes[outcome] += 1
                if body:
                    self.served[(body["id"], body["db"])] += 1
                elif len(self.errors) < 5:
                    self.errors.append(outcome)
            time.sleep(CLIENT_PAUSE_S)

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        for t in self.threads:
            t.join(30)


@pytest.fixture
def data_tier() -> Iterator[tuple[PgCluster, PgBouncer]]:
    bins = require_binaries()
    work = service_workdir("scaleladder-cutover-")
    with pg_cluster(replicas=1, tls=True) as cluster:
        data = pgbouncer_ini_data(cluster, work, version=installed_pgbouncer_version(bins))
        with running_pgbouncer(cluster, data, work) as bouncer:
            yield cluster, bouncer
    shutil.rmtree(work, ignore_errors=True)


def test_hosts_move_from_rds_to_pgbouncer_one_by_one_without_a_failed_request(data_tier) -> None:
    cluster, bouncer = data_tier
    root = Path(tempfile.mkdtemp(prefix="scaleladder-cutover-"))
    secrets_file = root / "secrets.json"
    login = json.dumps({"username": APP_USER, "password": cluster.app_password})
    secrets_file.write_text(json.dumps({arn: login if kind == "app" else "redis-token" for arn, kind in SECRETS.items()}))
    primary = cluster.primary
    direct, pooled = f"{primary.host}:{primary.port}", f"{bouncer.host}:{bouncer.port}"
    assert cluster.tls is not None
    hosts = [make_host(n, root, cluster.tls.ca_file, secrets_file) for n in ("host-a", "host-b")]
    try:
        for host in hosts:  # phase 2: straight to RDS, verify-full against the RDS CA
            host.write_boot_env(primary.host, primary.port, cluster.dbname, cluster.dbname, via_pgbouncer=False)
            host.boot()
            wait_until(f"{host.name} to serve", lambda h=host: h.serves_via() == direct, 30)
        lb = load_balancer_data([f"127.0.0.1:{h.app_port}" for h in hosts], "/health")
        # nginx keeps a host that failed out for fail_timeout, even once it is back; the refresh
        # moves on only after the new host's warm-up (BOOT_SECONDS, 600 s, against nginx's 30 s).
        # Here both are scaled down by the same rule: the next host goes after fail_timeout.
        assert BOOT_SECONDS > lb["fail_timeout_s"]
        lb["fail_timeout_s"] = FAIL_TIMEOUT_S
        conf = render("nginx/load_balancer.conf.j2", lb)
        with Nginx(conf) as nginx:
            port = nginx.start().port
            with Load(port) as load:
                time.sleep(1.5)
                for host in hosts:  # the refresh: one host at a time, the other serving
                    before = host.app_pid()
                    host.write_boot_env(bouncer.host, bouncer.port, pgbouncer_names.RW_DATABASE,
                                        pgbouncer_names.RO_DATABASE, via_pgbouncer=True)
                    host.boot()
                    assert host.app_pid() != before  # the container was replaced under load
                    wait_until(f"{host.name} to serve through PgBouncer", lambda h=host: h.serves_via() == pooled, 30)
                    time.sleep(FAIL_TIMEOUT_S + 1.5)  # the warm-up before the refresh replaces the next host
            # what nginx logged, one line per kind (without the changing request details)
            nginx_errors = sorted({line.split(", client")[0].split("] ", 1)[-1].split("*", 1)[-1][-160:]
                                   for line in nginx.error_log.splitlines() if "[error]" in line or "[warn]" in line})
        total = sum(load.outcomes.values())
        print(f"cutover under load: {total} requests, outcomes {dict(load.outcomes)}, "
              f"served (host, database): {dict(load.served)}")
        assert set(load.outcomes) == {"200"}, (dict(load.outcomes), load.errors, nginx_errors)
        assert total >= 50
        # Both routes served during the run, and each host ended on PgBouncer.
        for host in hosts:
            assert load.served[(host.name, direct)] > 0 and load.served[(host.name, pooled)] > 0, dict(load.served)
        assert (hosts[0].dir / "var" / "db-secret-versions").read_text().strip()  # the boot path ran to its end
    finally:
        for host in hosts:
            host.stop()
        shutil.rmtree(root, ignore_errors=True)
