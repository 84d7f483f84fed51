"""Run a real nginx on 127.0.0.1 with a rendered scaleladder.conf, plus upstream.py servers.

The rendered file goes where the VM puts it (a conf.d directory included from http{});
a minimal main nginx.conf around it keeps pid, logs and temp files in a temp directory
and runs nginx as the current user in the foreground, so every test owns its processes.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

_REPO_ROOT = Path(__file__).resolve().parents[2]
if str(_REPO_ROOT) not in sys.path:  # so `ladder` imports however pytest is launched
    sys.path.insert(0, str(_REPO_ROOT))

SKIP_ENV = "SCALELADDER_SKIP_INTEGRATION"
UPSTREAM_SCRIPT = Path(__file__).with_name("upstream.py")
START_TIMEOUT = 10.0  # seconds for a server to accept connections
STOP_TIMEOUT = 10.0
HTTP_TIMEOUT = 10.0  # seconds for any single request
DISTRO_CONF = Path("/etc/nginx/nginx.conf")

MAIN_CONF = """\
{user}worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log notice;
events {{ worker_connections 1024; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    include {d}/conf.d/*.conf;
}}
"""


def distro_main_conf(d: Path) -> str:
    """The distro's own /etc/nginx/nginx.conf, as on the VM, with its writable paths moved
    into `d` and its conf.d include pointed at `d/conf.d`. The distro's default site is left
    out: cloud-init removes it (it claims default_server on port 80 too)."""
    if not DISTRO_CONF.exists():
        pytest.skip(f"no {DISTRO_CONF}: this nginx was not installed from a distro package")
    text = DISTRO_CONF.read_text()
    text = re.sub(r"^\s*user\s[^;]*;", "", text, flags=re.M)
    text = re.sub(r"^\s*include\s+/etc/nginx/sites-enabled/[^;]*;", "", text, flags=re.M)
    text = re.sub(r"^(\s*pid\s+)[^;]*;", rf"\g<1>{d}/nginx.pid;", text, flags=re.M)
    text = re.sub(r"/var/log/nginx/", f"{d}/", text)
    text = text.replace("/etc/nginx/conf.d/", f"{d}/conf.d/")
    temp = "".join(f"\n    {kind}_temp_path {d}/tmp/{kind};" for kind in
                   ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return re.sub(r"^(http\s*\{)", rf"\g<1>{temp}", text, count=1, flags=re.M)


def require_nginx() -> str:
    """Path of the nginx binary; fail the test (or skip, if asked to) when it is missing.

    A missing nginx is a broken setup, not a reason to pass quietly.
    """
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if found:
        return found
    if os.environ.get(SKIP_ENV) == "1":
        pytest.skip(f"nginx not installed and {SKIP_ENV}=1")
    pytest.fail(
        "nginx not found: run the project setup to install the integration test servers "
        f"(or set {SKIP_ENV}=1 to skip integration tests)",
        pytrace=False,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, what: str, timeout: float = START_TIMEOUT) -> None:
    """Wait until `port` accepts connections; raise early if `proc` died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before listening on {port}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {timeout}s")


def stop_process(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    """Stop a process we started (and its session, for nginx's workers), bounded in time."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(STOP_TIMEOUT)


def loopback_only(conf: str) -> str:
    """Bind the rendered `listen PORT` to 127.0.0.1: tests never listen on other addresses."""
    out, count = re.subn(r"^(\s*listen\s+)(\d+)\b", r"\g<1>127.0.0.1:\2", conf, flags=re.M)
    if count == 0:
        raise ValueError("rendered config has no `listen PORT` line")
    return out


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


def request(port: int, path: str = "/", method: str = "GET", body: bytes | None = None,
            headers: dict[str, str] | None = None) -> Response:
    """One request to 127.0.0.1:port on a fresh connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HTTP_TIMEOUT)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return Response(resp.status, resp.headers, resp.read())
    finally:
        conn.close()


class Upstream:
    """`upstream.py` as a subprocess on a free port: `with Upstream("a") as up: up.port`."""

    def __init__(self, upstream_id: str, health_path: str = "/health", cpu_ms: float = 0.0):
        self.id, self.port = upstream_id, free_port()
        self.args = [sys.executable, str(UPSTREAM_SCRIPT), "--port", str(self.port),
                     "--id", upstream_id, "--health-path", health_path, "--cpu-ms", str(cpu_ms)]
        self.proc: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> "Upstream":
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            wait_port(self.port, self.proc, f"upstream {self.id}")
        except Exception:
            self.__exit__()
            raise
        return self

    def kill(self) -> None:
        """SIGKILL: the instance dies mid-request, as a crashed or terminated VM would."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(STOP_TIMEOUT)

    def __exit__(self, *exc) -> None:
        if self.proc is not None:
            stop_process(self.proc)


class Nginx:
    """A real nginx serving `conf` (a rendered scaleladder.conf) from a temp directory."""

    def __init__(self, conf: str, loopback: bool = True, distro: bool = False):
        """`distro`: wrap `conf` in the distro's own nginx.conf instead of the minimal one."""
        self.binary = require_nginx()
        self.distro = distro
        self.dir = Path(tempfile.mkdtemp(prefix="scaleladder-nginx-"))
        (self.dir / "conf.d").mkdir()
        (self.dir / "tmp").mkdir()
        (self.dir / "conf.d" / "scaleladder.conf").write_text(loopback_only(conf) if loopback else conf)
        # As root, nginx would run its workers as `nobody`, who cannot use this directory.
        user = "user root;\n" if os.geteuid() == 0 else ""
        self.main_conf = self.dir / "nginx.conf"
        main = distro_main_conf(self.dir) if distro else MAIN_CONF.format(d=self.dir, user=user)
        self.main_conf.write_text(main)
        self.proc: subprocess.Popen | None = None

    def _cmd(self, *extra: str) -> list[str]:
        # The distro's config loads modules relative to nginx's built-in prefix.
        prefix = [] if self.distro else ["-p", f"{self.dir}/"]
        return [self.binary, *prefix, "-c", str(self.main_conf), *extra]

    def test(self) -> subprocess.CompletedProcess:
        """`nginx -t` on the config; its verdict is in returncode and stderr."""
        return subprocess.run(self._cmd("-t"), capture_output=True, text=True, timeout=STOP_TIMEOUT,
                              stdin=subprocess.DEVNULL)

    def start(self, port: int) -> "Nginx":
        """Run nginx in the foreground until it accepts connections on `port`."""
        with open(self.dir / "stderr.log", "wb") as stderr:  # errors before error_log opens
            self.proc = subprocess.Popen(self._cmd("-g", "daemon off;"), stdin=subprocess.DEVNULL,
                                         stderr=stderr, start_new_session=True)
        try:
            wait_port(port, self.proc, "nginx")
        except RuntimeError as err:
            self.stop()
            raise RuntimeError(f"{err}\n{(self.dir / 'stderr.log').read_text()}{self.error_log}") from None
        return self

    @property
    def error_log(self) -> str:
        path = self.dir / "error.log"
        return path.read_text() if path.exists() else ""

    @property
    def access_log(self) -> str:
        path = self.dir / "access.log"
        return path.read_text() if path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, signal.SIGQUIT)  # graceful: workers finish, then exit
            self.proc = None

    def __enter__(self) -> "Nginx":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
