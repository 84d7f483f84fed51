"""ansible/'s playbooks run for real on this machine (`connection: local`) against sandboxes.

- deploy.yml, blue/green on a phase-1 host: a real nginx serving the program's rendered
  reverse proxy, the app containers played by upstream.py processes through a stand-in
  `docker` (fake_docker.py) driven by the real cloudinit/boot.sh, a client load from several
  loopback addresses (each its own client for nginx's per-IP limit) through the switch.
- deploy.yml refuses Auto Scaling group hosts, and never reloads nginx with a config that
  fails `nginx -t`.
- configure.yml changes a PgBouncer pool size in front of a real PostgreSQL: SHOW CONFIG shows
  it after the reload, and a client connection opened before it keeps working.

Ansible's startup is slow (seconds per run): four playbook runs in all.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.binaries import which
from tests.integration.nginx_harness import Nginx, request
from tests.integration.pgcluster import (
    ADMIN_USER,
    APP_USER,
    STATS_USER,
    PgCluster,
    free_port,
    installed_pgbouncer_version,
    running_pgbouncer,
    service_workdir,
)

REPO = Path(__file__).resolve().parents[2]
ANSIBLE = REPO / "ansible"
PLAYBOOK_BIN = Path(sys.executable).with_name("ansible-playbook")
FAKE_DOCKER = Path(__file__).with_name("fake_docker.py")
PLAYBOOK_TIMEOUT = 240
IMAGE_OLD = "ghcr.io/your-org/your-api:1.0.0"
IMAGE_NEW = "ghcr.io/your-org/your-api:1.1.0"
CLIENT_IPS = [f"127.0.0.{n}" for n in range(11, 27)]
"""16 clients, each at 80 % of the phase-1 nginx's per-client rate (ladder.edge, in the rendered
config), so a 429 would be a real refusal, not the test's pace."""


def _free_pair() -> int:
    """A port P with P+1 free too (the blue/green stand-by port)."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port < 65535:
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port pair")


def stack_file(tmp: Path, base: str, app: dict[str, Any] | None = None, **sections: Any) -> Path:
    """A copy of stacks/Pulumi.<base>.yaml with `app` keys and whole sections changed (as
    `pulumi config set --path` would), read by the playbooks through --stack-file."""
    doc = yaml.safe_load((REPO / "stacks" / f"Pulumi.{base}.yaml").read_text())
    cfg = doc["config"]
    cfg["scaleladder:app"] = {**cfg.get("scaleladder:app", {}), **(app or {})}
    for key, value in sections.items():
        cfg[f"scaleladder:{key}"] = {**cfg.get(f"scaleladder:{key}", {}), **value}
    path = tmp / f"Pulumi.{base}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def ansible_vars(stack: str, path: Path, outputs: dict[str, Any] | None = None,
                 layout: dict[str, Any] | None = None) -> dict[str, Any]:
    from ladder import ansible_vars as av

    return av.ansible_vars(stack, av.load_config(stack, path), outputs or {}, layout)


def playbook(name: str, inventory: dict[str, Any], extra: dict[str, Any], tmp: Path,
             env_extra: dict[str, str] | None = None, limit: str | None = None) -> subprocess.CompletedProcess:
    if not PLAYBOOK_BIN.exists():
        pytest.fail("ansible-playbook not in .venv: run bash scripts/setup (ansible is pinned in requirements.txt)")
    inv = tmp / "inventory.yml"
    inv.write_text(yaml.safe_dump(inventory))
    extra_file = tmp / "extra.json"
    extra_file.write_text(json.dumps(extra))
    env = {**os.environ, "ANSIBLE_HOME": str(tmp / "ansible-home"), "ANSIBLE_LOCAL_TEMP": str(tmp / "ansible-tmp"),
           "ANSIBLE_NOCOLOR": "1", "ANSIBLE_RETRY_FILES_ENABLED": "0", "ANSIBLE_FORCE_COLOR": "0",
           "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks", **(env_extra or {})}
    return subprocess.run([str(PLAYBOOK_BIN), "-i", str(inv), str(ANSIBLE / name), "-e", f"@{extra_file}",
                           *(["--limit", limit] if limit else [])],
                          capture_output=True, text=True, timeout=PLAYBOOK_TIMEOUT, cwd=REPO, env=env,
                          stdin=subprocess.DEVNULL)


def host_inventory(stack: str, role: str, asg: str = "") -> dict[str, Any]:
    """The groups and host vars the aws_ec2 inventory gives a host (keyed groups, compose)."""
    host = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
            "scaleladder_asg": asg, "scaleladder_private_ip": "127.0.0.1", "scaleladder_index": 0}
    return {"all": {"hosts": {"host1": host},
                    "children": {f"role_{role}": {"hosts": {"host1": None}},
                                 f"stack_{stack}": {"hosts": {"host1": None}}}}}


# ------------------------------------------------------------------ the app host sandbox


@dataclass
class AppHost:
    """A phase-1 host in a directory: boot.env, boot.sh as installed, the stand-in docker."""

    dir: Path
    app_port: int
    env: dict[str, str] = field(default_factory=dict)

    @property
    def state(self) -> Path:
        return self.dir / "docker-state"

    def boot(self, *args: str) -> None:
        subprocess.run([str(self.dir / "bin" / "scaleladder-boot"), *args], check=True, env=self.env,
                       capture_output=True, text=True, timeout=60)

    def containers(self) -> dict[str, dict[str, Any]]:
        return {p.stem: json.loads(p.read_text()) for p in self.state.glob("*.json")}

    def calls(self) -> list[str]:
        log = self.state / "calls.log"
        return log.read_text().splitlines() if log.exists() else []

    def alive(self, pid: int) -> bool:
        try:
            os.kill(pid, 0)
            return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
        except (ProcessLookupError, OSError):
            return False

    def stop_all(self) -> None:
        for name in list(self.containers()):
            subprocess.run([sys.executable, str(FAKE_DOCKER), "rm", "-f", name], env=self.env, timeout=30,
                           capture_output=True)


@pytest.fixture
def app_host() -> Iterator[AppHost]:
    d = Path(tempfile.mkdtemp(prefix="scaleladder-ansible-"))
    bin_dir = d / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(f"#!/bin/sh\nexec {sys.executable} {FAKE_DOCKER} \"$@\"\n")
    docker.chmod(0o755)
    shutil.copy(REPO / "cloudinit" / "boot.sh", bin_dir / "scaleladder-boot")
    shutil.copy(ANSIBLE / "files" / "scaleladder-nginx-check", bin_dir / "scaleladder-nginx-check")
    port = _free_pair()
    (d / "boot.env").write_text(f'REGION=us-east-1\nIMAGE={IMAGE_OLD}\nAPP_PORT={port}\nROLES="api worker"\n'
                                'WORKER_COMMAND="node dist/worker.js"\nREGISTRY_AUTH=none\nREGISTRY=ghcr.io\n')
    host = AppHost(d, port)
    host.env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "SCALELADDER_BOOT_ENV": str(d / "boot.env"),
                "FAKE_DOCKER_STATE": str(host.state)}
    try:
        yield host
    finally:
        host.stop_all()
        shutil.rmtree(d, ignore_errors=True)


def wait_serving(port: int, image: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if request(port, "/").json()["id"] == image:
                return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.1)
    raise AssertionError(f"port {port} never served {image}")


class ClientLoad:
    """Requests through nginx from several loopback clients until stopped; counts every outcome."""

    def __init__(self, port: int, per_client_interval_s: float):
        self.port, self.interval = port, per_client_interval_s
        self.outcomes: Counter[str] = Counter()
        self.served: Counter[str] = Counter()
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._client, args=(ip,), daemon=True) for ip in CLIENT_IPS]

    def _client(self, ip: str) -> None:
        import http.client

        while not self._stop.is_set():
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10, source_address=(ip, 0))
            try:
                conn.request("GET", "/")
                resp = conn.getresponse()
                body = resp.read()
                ok = resp.status == 200
                with self._lock:
                    self.outcomes["ok" if ok else f"status {resp.status}"] += 1
                    if ok:
                        self.served[json.loads(body)["id"]] += 1
                    else:
                        self.errors.append(f"{ip}: {resp.status} {body[:200]!r}")
            except (OSError, http.client.HTTPException) as err:
                with self._lock:
                    self.outcomes["error"] += 1
                    self.errors.append(f"{ip}: {err!r}")
            finally:
                conn.close()
            self._stop.wait(self.interval)

    @property
    def total(self) -> int:
        return sum(self.outcomes.values())

    @property
    def failed(self) -> int:
        return self.total - self.outcomes["ok"]

    def __enter__(self) -> ClientLoad:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=15)


def deploy_extra(host: AppHost, nginx: Nginx, path: Path, tmp: Path, **more: Any) -> dict[str, Any]:
    outputs = tmp / "outputs.json"
    outputs.write_text("{}")
    return {
        "stack": "phase1", "scaleladder_stack_file": str(path), "scaleladder_outputs": str(outputs),
        "scaleladder_boot": str(host.dir / "bin" / "scaleladder-boot"),
        "scaleladder_boot_env": str(host.dir / "boot.env"),
        "scaleladder_docker": str(host.dir / "bin" / "docker"),
        "scaleladder_host_environment": {k: host.env[k] for k in ("PATH", "SCALELADDER_BOOT_ENV", "FAKE_DOCKER_STATE")},
        "scaleladder_nginx": nginx.binary,
        "scaleladder_nginx_conf": str(nginx.conf_path), "scaleladder_nginx_main_conf": str(nginx.main_conf),
        "scaleladder_nginx_pid_file": str(nginx.dir / "nginx.pid"),
        # What `systemctl reload nginx` does (ExecReload: nginx -s reload = SIGHUP to the master).
        "scaleladder_nginx_reload": 'kill -HUP "$master"',
        "scaleladder_nginx_check": str(host.dir / "bin" / "scaleladder-nginx-check"),
        "scaleladder_nginx_overrides": {"listen_port": f"127.0.0.1:{nginx.port}"},
        "scaleladder_write_image_parameter": False,
        **more,
    }


@pytest.fixture
def phase1_host(app_host: AppHost, tmp_path: Path) -> Iterator[tuple[AppHost, Nginx, Path]]:
    """The host as a boot of image 1.0.0 leaves it: api + worker containers, nginx in front."""
    old = stack_file(tmp_path, "phase1", {"image": IMAGE_OLD, "port": app_host.app_port})
    app_host.boot("api", "api", str(app_host.app_port), IMAGE_OLD)
    app_host.boot("worker", IMAGE_OLD)
    from ladder.templates import render

    conf = render("nginx/reverse_proxy.conf.j2", ansible_vars("phase1", old)["reverse_proxy"])
    with Nginx(conf) as nginx:
        nginx.start()
        wait_serving(nginx.port, IMAGE_OLD)
        yield app_host, nginx, stack_file(tmp_path, "phase1", {"image": IMAGE_NEW, "port": app_host.app_port})


def test_deploy_switches_the_image_blue_green_with_no_failed_request(phase1_host, tmp_path, capsys):
    host, nginx, new = phase1_host
    old_pids = {name: c["pid"] for name, c in host.containers().items()}
    limit = ansible_vars("phase1", new)["reverse_proxy"]["rate_limit"]
    interval = 60 / (0.8 * limit["per_minute"]) if limit else 0.2
    import boto3

    from tests.integration.credentials_harness import REGION, moto_server

    with moto_server() as aws, ClientLoad(nginx.port, interval) as load:
        time.sleep(1.0)  # load before the switch
        done = playbook("deploy.yml", host_inventory("phase1", "app"),
                        deploy_extra(host, nginx, new, tmp_path, scaleladder_write_image_parameter=True),
                        tmp_path, env_extra=aws.env)
        time.sleep(1.0)  # and after it
        ssm = boto3.client("ssm", region_name=REGION, endpoint_url=aws.endpoint, aws_access_key_id="testing",
                           aws_secret_access_key="testing")
        parameter = ssm.get_parameter(Name=ansible_vars("phase1", new)["deploy"]["image_parameter"])["Parameter"]
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    # The image the host reads at its next boot is the one deployed (and the one pulumi up will write).
    assert parameter["Value"] == IMAGE_NEW
    with capsys.disabled():
        print(f"\n[deploy blue/green] requests={load.total} failed={load.failed} served={dict(load.served)}")
    assert load.failed == 0, load.errors[:10]
    assert load.served[IMAGE_OLD] > 0 and load.served[IMAGE_NEW] > 0, load.served  # the load spanned the switch
    assert load.total >= 40, load.outcomes

    # The host ends as a boot of the new image leaves it: `api` on the app port, the worker, no
    # stand-by, and the old processes gone.
    now = host.containers()
    assert set(now) == {"api", "worker"}
    assert now["api"]["image"] == IMAGE_NEW and now["worker"]["image"] == IMAGE_NEW
    assert now["api"]["ports"] == [f"127.0.0.1:{host.app_port}:{host.app_port}"]
    assert not any(host.alive(pid) for pid in old_pids.values()), "an old container still runs"
    assert request(nginx.port, "/").json()["id"] == IMAGE_NEW
    # nginx's file is the program's render of the new config, byte for byte (the playbook used
    # the stand-by port only in between).
    from ladder.templates import render

    expected = render("nginx/reverse_proxy.conf.j2", {**ansible_vars("phase1", new)["reverse_proxy"],
                                                       "listen_port": f"127.0.0.1:{nginx.port}"})
    assert nginx.conf_path.read_text() == expected
    # Order of the steps: the stand-by started before the old API was replaced, each through boot.sh.
    calls = [c for c in host.calls() if c.startswith("run ")]
    names = [c.split("--name ")[1].split()[0] for c in calls]
    assert names[-3:] == ["api-next", "api", "worker"], calls
    # The worker got SIGTERM with time to finish its jobs before boot.sh replaced it.
    assert "stop --time 60 worker" in host.calls()


def test_deploy_never_reloads_a_config_nginx_rejects(phase1_host, tmp_path):
    host, nginx, new = phase1_host
    before = nginx.conf_path.read_text()
    # A value nginx refuses (`client_max_body_size tenm`): the render changes, `nginx -t` fails.
    extra = deploy_extra(host, nginx, new, tmp_path)
    extra["scaleladder_nginx_overrides"] = {**extra["scaleladder_nginx_overrides"], "client_max_body_size_mb": "ten"}
    done = playbook("deploy.yml", host_inventory("phase1", "app"), extra, tmp_path)
    assert done.returncode != 0
    assert "failed to validate" in done.stdout + done.stderr, done.stdout[-3000:]
    assert "The old container still serves" in done.stdout
    assert nginx.conf_path.read_text() == before  # the live file never held the bad render
    assert request(nginx.port, "/").json()["id"] == IMAGE_OLD  # and the old API still serves
    assert set(host.containers()) == {"api", "worker"}  # the stand-by was removed


@pytest.mark.parametrize("stack", ["phase2", "phase1"])
def test_deploy_refuses_auto_scaling_group_hosts(app_host, tmp_path, stack):
    """phase2 (ALB): the config says its app hosts are a group; phase1: a host that carries the
    group tag is refused by the tag alone, whatever the config says."""
    outputs = tmp_path / "outputs.json"
    outputs.write_text("{}")
    path = stack_file(tmp_path, stack, {"image": IMAGE_NEW})
    done = playbook("deploy.yml", host_inventory(stack, "app", asg=f"scaleladder-{stack}-app"),
                    {"stack": stack, "scaleladder_stack_file": str(path), "scaleladder_outputs": str(outputs),
                     "scaleladder_docker": str(app_host.dir / "bin" / "docker"),
                     "scaleladder_host_environment": {"PATH": app_host.env["PATH"],
                                                      "FAKE_DOCKER_STATE": str(app_host.state)}},
                    tmp_path)
    assert done.returncode != 0
    out = done.stdout + done.stderr
    assert "host1" in out and "pulumi up" in out and "instance refresh" in out, out[-3000:]
    assert "TASK [Pull" not in out
    assert app_host.calls() == []  # nothing ran on the host


# ------------------------------------------------------------------ configure: PgBouncer


@pytest.fixture(scope="module")
def pg() -> Iterator[PgCluster]:
    from tests.integration.pgcluster import pg_cluster

    with pg_cluster(replicas=1, tls=True) as cluster:
        yield cluster


def test_configure_changes_the_pool_size_on_a_running_pgbouncer(pg: PgCluster, tmp_path: Path):
    version = installed_pgbouncer_version(pg.bins)
    work = service_workdir("scaleladder-ansible-pgb-")
    try:
        # The sandbox's paths and ports (as pgcluster.pgbouncer_ini_data lays them out); every
        # pool setting comes from the stack config.
        assert pg.tls is not None
        layout = {"db_port": pg.primary.port, "listen_addr": "127.0.0.1", "listen_port": free_port(["127.0.0.1"]),
                  "server_tls_sslmode": "verify-full", "server_tls_ca_file": str(pg.tls.ca_file),
                  "auth_file": str(work / "userlist.txt"), "admin_users": [ADMIN_USER], "stats_users": [STATS_USER],
                  "unix_socket_dir": str(work), "logfile": str(work / "pgbouncer.log"),
                  "client_tls_key_file": str(pg.tls.key_file), "client_tls_cert_file": str(pg.tls.cert_file)}
        outputs = {"dbAddress": pg.primary.host, "dbReplicaAddresses": [r.host for r in pg.replicas]}
        pools = {"version": version, "defaultPoolSize": 10}
        before = ansible_vars("phase3", stack_file(tmp_path, "phase3", pgbouncer=pools), outputs, layout)["pgbouncer"]
        with running_pgbouncer(pg, before, work) as bouncer:
            assert bouncer.show_config()["default_pool_size"] == "10"
            # A client session opened before the change, holding a server connection.
            held = subprocess.Popen(
                [pg.bins.psql, "-X", "-qAt", "-h", bouncer.host, "-p", str(bouncer.port), "-U", APP_USER, "-d", "app"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                env={**os.environ, "PGPASSWORD": bouncer.passwords[APP_USER], "PGSSLMODE": "require"})
            assert held.stdin is not None
            held.stdin.write("SELECT 'before';\n")
            held.stdin.flush()

            (tmp_path / "layout.json").write_text(json.dumps(layout))
            (tmp_path / "outputs.json").write_text(json.dumps(outputs))
            pid = bouncer.proc.pid  # type: ignore[union-attr]
            done = playbook("configure.yml", host_inventory("phase3", "pgbouncer"), {
                "stack": "phase3",
                "scaleladder_stack_file": str(stack_file(tmp_path, "phase3", pgbouncer={**pools, "defaultPoolSize": 25})),
                "scaleladder_outputs": str(tmp_path / "outputs.json"),
                "scaleladder_pgbouncer_layout": str(tmp_path / "layout.json"),
                "scaleladder_pgbouncer_ini": str(work / "pgbouncer.ini"),
                "scaleladder_pgbouncer_check": str(tmp_path / "scaleladder-pgbouncer-check"),
                # What `systemctl reload pgbouncer` does (SIGHUP: RELOAD).
                "scaleladder_pgbouncer_reload": f"kill -HUP {pid}",
            }, tmp_path)
            assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
            assert "RUNNING HANDLER [Reload PgBouncer]" in done.stdout

            def reloaded() -> bool:
                return bouncer.show_config()["default_pool_size"] == "25"
            deadline = time.monotonic() + 15
            while not reloaded() and time.monotonic() < deadline:
                time.sleep(0.2)
            assert reloaded()
            # The file on "the host" is the program's render of the new config.
            after = ansible_vars("phase3", stack_file(tmp_path, "phase3", pgbouncer={**pools, "defaultPoolSize": 25}),
                                 outputs, layout)["pgbouncer"]
            from ladder import pgbouncer as pgb

            assert (work / "pgbouncer.ini").read_text() == pgb.render_ini(after)
            assert bouncer.alive() and bouncer.proc.pid == pid  # type: ignore[union-attr]  # reloaded, not restarted
            out, err = held.communicate("SELECT 'after';\n", timeout=30)
            assert held.returncode == 0, err
            assert out.split() == ["before", "after"]  # the session opened before the reload survived it
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_the_pgbouncer_check_refuses_a_broken_ini(tmp_path: Path):
    from ladder import pgbouncer as pgb

    check = ANSIBLE / "files" / "scaleladder-pgbouncer-check"
    good = pgb.render_ini(pgb.ini_data(version="1.22", pool_mode="transaction", max_client_conn=100,
                                       default_pool_size=10, reserve_pool_size=2, primary_host="db",
                                       replica_hosts=["r1", "r2"]))
    for name, text, ok in (("good", good, True),
                           ("not-a-number", good.replace("default_pool_size = 10", "default_pool_size = ten"), False),
                           ("twice", good + "\n[pgbouncer]\nlisten_port = 1\n", False),
                           ("no-databases", good.replace("[databases]", ";"), False)):
        path = tmp_path / f"{name}.ini"
        path.write_text(text)
        done = subprocess.run([sys.executable, str(check), str(path)], capture_output=True, text=True, timeout=30)
        assert (done.returncode == 0) is ok, (name, done.stderr)


def test_nginx_check_tests_the_candidate_in_place():
    """scaleladder-nginx-check: a good conf.d file passes, a broken one fails, the live one is untouched."""
    nginx_bin = which("nginx")
    if nginx_bin is None:
        pytest.fail("nginx not installed: run bash scripts/setup")
    from ladder import userdata

    with Nginx(userdata.reverse_proxy_conf(3000, "/health")) as nginx:
        check = ANSIBLE / "files" / "scaleladder-nginx-check"
        live = nginx.conf_path.read_text()
        for text, ok in ((live, True), (live.replace("upstream scaleladder_app {", "upstream scaleladder_app "), False)):
            cand = nginx.dir / "candidate"
            cand.write_text(text)
            done = subprocess.run([str(check), str(cand), str(nginx.conf_path), str(nginx.main_conf)],
                                  capture_output=True, text=True, timeout=30,
                                  env={**os.environ, "SCALELADDER_NGINX": nginx_bin})
            assert (done.returncode == 0) is ok, done.stderr
        assert nginx.conf_path.read_text() == live


# ------------------------------------------------------------------ inventory against EC2 (moto)


def test_inventory_lists_this_stacks_running_hosts_grouped_by_role(tmp_path: Path):
    """`ansible-inventory` with the real aws_ec2 inventory file against moto's EC2: only running
    instances tagged project=scaleladder (and the stack SCALELADDER_STACK names) are hosts,
    grouped by role and stack, reached over SSM by instance id, ASG members marked."""
    import boto3

    from tests.integration.credentials_harness import REGION, moto_server

    with moto_server() as aws:
        ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=aws.endpoint, aws_access_key_id="testing",
                           aws_secret_access_key="testing")
        ami = ec2.describe_images()["Images"][0]["ImageId"]

        def launch(**tags: str) -> str:
            spec = [{"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]
            return ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, InstanceType="t3.small",
                                     TagSpecifications=spec)["Instances"][0]["InstanceId"]

        vm = launch(project="scaleladder", stack="phase1", phase="1", role="app", Name="fleet-app-12")
        lb = launch(project="scaleladder", stack="phase1", phase="1", role="nginx-lb", Name="fleet-nginx-lb")
        asg = launch(**{"project": "scaleladder", "stack": "phase1", "role": "app",
                        "aws:autoscaling:groupName": "scaleladder-phase1-app"})
        other_stack = launch(project="scaleladder", stack="phase2", role="app")
        other_project = launch(project="someone-else", stack="phase1", role="app")
        stopped = launch(project="scaleladder", stack="phase1", role="app")
        ec2.stop_instances(InstanceIds=[stopped])

        env = {**os.environ, **aws.env, "SCALELADDER_STACK": "phase1", "ANSIBLE_HOME": str(tmp_path / "home"),
               "ANSIBLE_INVENTORY_UNPARSED_FAILED": "1"}
        done = subprocess.run([str(PLAYBOOK_BIN.with_name("ansible-inventory")), "-i", str(ANSIBLE / "inventory"),
                               "--list"], capture_output=True, text=True, timeout=120, env=env, cwd=REPO,
                              stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-3000:]
    inv = json.loads(done.stdout)
    hosts = set(inv["_meta"]["hostvars"])
    assert hosts == {vm, lb, asg}, (hosts, other_stack, other_project, stopped)
    assert set(inv["role_app"]["hosts"]) == {vm, asg} and inv["role_nginx_lb"]["hosts"] == [lb]
    assert set(inv["stack_phase1"]["hosts"]) == hosts
    def plain(value: Any) -> Any:  # ansible-inventory marks inventory strings unsafe in its JSON
        return value["__ansible_unsafe"] if isinstance(value, dict) and "__ansible_unsafe" in value else value

    v = {h: {k: plain(x) for k, x in hv.items()} for h, hv in inv["_meta"]["hostvars"].items()}
    assert v[vm]["ansible_aws_ssm_instance_id"] == vm and v[vm]["ansible_aws_ssm_region"] == REGION
    assert v[vm]["ansible_connection"] == "amazon.aws.aws_ssm"
    assert v[asg]["scaleladder_asg"] == "scaleladder-phase1-app" and v[vm]["scaleladder_asg"] == ""
    assert v[vm]["scaleladder_index"] == 12 and v[lb]["scaleladder_index"] == 0


# ------------------------------------------------------------------ configure: the nginx LB


def test_configure_renders_the_nginx_lb_over_the_stacks_app_hosts(tmp_path: Path):
    """nginx mode: configure.yml renders the load balancer's upstreams from the inventory's app
    hosts (their private addresses), validated and reloaded on the LB host: the program's file."""
    from ladder.templates import render

    path = stack_file(tmp_path, "phase2")
    doc = yaml.safe_load(path.read_text())
    doc["config"]["scaleladder:loadBalancer"] = "nginx"
    path.write_text(yaml.safe_dump(doc))
    data = ansible_vars("phase2", path)
    assert data["load_balancer"] is not None
    ips = ["127.0.0.2", "127.0.0.3"]
    with Nginx(render("nginx/load_balancer.conf.j2", {**data["load_balancer"], "upstreams": ["127.0.0.9:80"]})) as lb:
        lb.start()
        local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
        inventory = {"all": {"hosts": {"lb1": {**local, "scaleladder_private_ip": "127.0.0.1"},
                                       # listed out of order: the index (Name tag) decides
                                       "app2": {**local, "scaleladder_private_ip": ips[1], "scaleladder_index": 1},
                                       "app1": {**local, "scaleladder_private_ip": ips[0], "scaleladder_index": 0}},
                             "children": {"role_nginx_lb": {"hosts": {"lb1": None}},
                                          "role_app": {"hosts": {"app2": None, "app1": None}},
                                          "stack_phase2": {"hosts": {"lb1": None, "app1": None, "app2": None}}}}}
        check = tmp_path / "scaleladder-nginx-check"
        outputs = tmp_path / "outputs.json"
        outputs.write_text("{}")
        done = playbook("configure.yml", inventory, {
            "stack": "phase2", "scaleladder_stack_file": str(path), "scaleladder_outputs": str(outputs),
            "scaleladder_nginx": lb.binary, "scaleladder_nginx_conf": str(lb.conf_path),
            "scaleladder_nginx_main_conf": str(lb.main_conf), "scaleladder_nginx_pid_file": str(lb.dir / "nginx.pid"),
            "scaleladder_nginx_reload": 'kill -HUP "$master"', "scaleladder_nginx_check": str(check),
            "scaleladder_nginx_overrides": {"listen_port": f"127.0.0.1:{lb.port}"},
        }, tmp_path, limit="lb1,localhost")
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
        expected = render("nginx/load_balancer.conf.j2", {**data["load_balancer"], "listen_port": f"127.0.0.1:{lb.port}",
                                                          "upstreams": [f"{ip}:{data['app_host_port']}" for ip in ips]})
        assert lb.conf_path.read_text() == expected
        assert request(lb.port, data["app"]["health_path"]).status == 200  # reloaded, still serving


def test_refresh_credentials_restarts_on_new_secrets_with_no_failed_request(phase1_host, tmp_path, capsys):
    """refresh-credentials.yml on a phase-1 host: app.env rewritten (boot.sh's `env`, stood in
    for here: it needs Secrets Manager and writes /etc/scaleladder), then the API restarted
    blue/green on the image it runs and the worker restarted, the new versions recorded."""
    host, nginx, _ = phase1_host
    old = stack_file(tmp_path, "phase1", {"image": IMAGE_OLD, "port": host.app_port})
    wrapper = host.dir / "bin" / "scaleladder-boot-refresh"
    versions = host.dir / "db-secret-versions"
    wrapper.write_text(f"""#!/bin/bash
case "$1" in
  env) echo "env" >> {host.state}/calls.log; echo "v2-app v2-ro" ;;
  record) echo "$2" > {versions} ;;
  *) exec {host.dir}/bin/scaleladder-boot "$@" ;;
esac
""")
    wrapper.chmod(0o755)
    before = {name: c["pid"] for name, c in host.containers().items()}
    limit = ansible_vars("phase1", old)["reverse_proxy"]["rate_limit"]
    with ClientLoad(nginx.port, 60 / (0.8 * limit["per_minute"]) if limit else 0.2) as load:
        time.sleep(1.0)
        done = playbook("refresh-credentials.yml", host_inventory("phase1", "app"),
                        deploy_extra(host, nginx, old, tmp_path, scaleladder_boot=str(wrapper)), tmp_path)
        time.sleep(1.0)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    with capsys.disabled():
        print(f"\n[refresh-credentials] requests={load.total} failed={load.failed}")
    assert load.failed == 0, load.errors[:10]
    now = host.containers()
    assert set(now) == {"api", "worker"} and {c["image"] for c in now.values()} == {IMAGE_OLD}
    assert all(now[n]["pid"] != before[n] for n in ("api", "worker"))  # both restarted on the new env
    calls = host.calls()
    assert calls.index("env") < max(i for i, c in enumerate(calls) if c.startswith("run ") and "--name api " in c)
    assert versions.read_text().strip() == "v2-app v2-ro"
