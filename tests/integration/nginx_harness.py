"""Run a real nginx on 127.0.0.1 with a rendered scaleladder.conf, plus upstream.py servers.

The rendered file goes where the VM puts it (a conf.d directory included from http{});
a minimal main nginx.conf around it keeps pid, logs and temp files in a temp directory
and runs nginx as the current user in the foreground, so every test owns its processes.

Ports: parallel test runs must never talk to each other's servers. upstream.py binds
port 0 and reports the port it got; nginx gets a free port written into its `listen`
line, counts as started only once its pid file names it (nginx writes that after
binding), and moves to another port if one was taken in between.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import selectors
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

from tests.integration.binaries import require  # noqa: E402  (after the sys.path fix)

UPSTREAM_SCRIPT = Path(__file__).with_name("upstream.py")
DISTRO_CONF = Path("/etc/nginx/nginx.conf")
START_TIMEOUT = 10.0  # seconds for a server to accept connections
STOP_TIMEOUT = 10.0
HTTP_TIMEOUT = 10.0  # seconds for any single request
PORT_ATTEMPTS = 3

MAIN_CONF = """\
{user}worker_processes {workers};
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


def require_nginx() -> str:
    """Path of the nginx binary; fail the test (or skip, if asked to) when it is missing.

    A missing nginx is a broken setup, not a reason to pass quietly.
    """
    return require("nginx")


def distro_main_conf(d: Path) -> str:
    """The distro's own /etc/nginx/nginx.conf, as on the VM, with its writable paths moved
    into `d` and its conf.d include pointed at `d/conf.d`. The distro's default site is left
    out: cloud-init removes it (it claims default_server on port 80 too)."""
    text = DISTRO_CONF.read_text()
    text = re.sub(r"^\s*user\s[^;]*;", "", text, flags=re.M)
    text = re.sub(r"^\s*include\s+/etc/nginx/sites-enabled/[^;]*;", "", text, flags=re.M)
    text = re.sub(r"^(\s*pid\s+)[^;]*;", rf"\g<1>{d}/nginx.pid;", text, flags=re.M)
    text = text.replace("/var/log/nginx/", f"{d}/").replace("/etc/nginx/conf.d/", f"{d}/conf.d/")
    temp = "".join(f"\n    {kind}_temp_path {d}/tmp/{kind};"
                   for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return re.sub(r"^(http\s*\{)", rf"\g<1>{temp}", text, count=1, flags=re.M)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    """Stop a process we started (and its session, for nginx's workers), bounded in time."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(STOP_TIMEOUT)


def loopback_only(conf: str, port: int | None = None) -> str:
    """Bind the rendered `listen PORT` to 127.0.0.1 (and to `port`, if given): tests never
    listen on other addresses."""
    new = r"\g<1>127.0.0.1:" + (str(port) if port else r"\2")
    out, count = re.subn(r"^(\s*listen\s+)(\d+)\b", new, conf, flags=re.M)
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
    """`upstream.py` as a subprocess on a kernel-chosen port: `with Upstream("a") as up: up.port`."""

    def __init__(self, upstream_id: str, health_path: str = "/health", cpu_ms: float = 0.0,
                 quiet: bool = False):
        self.id, self.port, self.quiet = upstream_id, 0, quiet  # quiet: stderr (tracebacks) dropped
        self.args = [sys.executable, str(UPSTREAM_SCRIPT), "--port", "0", "--id", upstream_id,
                     "--health-path", health_path, "--cpu-ms", str(cpu_ms)]
        self.proc: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> Upstream:
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL if self.quiet else None,
                                     text=True, start_new_session=True)
        with selectors.DefaultSelector() as sel:  # bounded wait for `listening HOST:PORT`
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            line = self.proc.stdout.readline() if sel.select(START_TIMEOUT) else ""
        if not line.startswith("listening "):
            self.__exit__()
            raise RuntimeError(f"upstream {self.id} did not start: {line!r}")
        self.port = int(line.rsplit(":", 1)[1])
        return self

    def kill(self) -> None:
        """SIGKILL: the instance dies mid-request, as a crashed or terminated VM would."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(STOP_TIMEOUT)

    def __exit__(self, *exc) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc.stdout.close()


class Nginx:
    """A real nginx serving `conf` (a rendered scaleladder.conf) from a temp directory.

    `with Nginx(conf) as nginx: nginx.start(); request(nginx.port)`; `nginx.test()` runs
    `nginx -t`. `distro=True` wraps `conf` in the distro's own nginx.conf instead;
    `worker_processes` ("auto": one per core, as the distro sets it) applies to the minimal one.
    """

    def __init__(self, conf: str, distro: bool = False, worker_processes: int | str = 1):
        self.binary = require_nginx()
        if distro and not DISTRO_CONF.exists():
            pytest.skip(f"no {DISTRO_CONF}: this nginx was not installed from a distro package")
        self.conf, self.distro, self.port = conf, distro, 0
        self.dir = Path(tempfile.mkdtemp(prefix="scaleladder-nginx-"))
        (self.dir / "conf.d").mkdir()
        (self.dir / "tmp").mkdir()
        self.conf_path = self.dir / "conf.d" / "scaleladder.conf"
        self.conf_path.write_text(loopback_only(conf))
        # As root, nginx would run its workers as `nobody`, who cannot use this directory.
        user = "user root;\n" if os.geteuid() == 0 else ""
        self.main_conf = self.dir / "nginx.conf"
        main = (distro_main_conf(self.dir) if distro
                else MAIN_CONF.format(d=self.dir, user=user, workers=worker_processes))
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

    def start(self) -> Nginx:
        """Run nginx in the foreground on a free 127.0.0.1 port (`self.port`)."""
        for _ in range(PORT_ATTEMPTS):
            self.port = free_port()
            self.conf_path.write_text(loopback_only(self.conf, self.port))
            if self._start_once():
                return self
        raise RuntimeError(f"nginx found no free port in {PORT_ATTEMPTS} attempts")

    def _start_once(self) -> bool:
        """True once nginx has bound its port (its pid file names it); False if the port was
        taken; raises on any other failure."""
        pid_file, stderr_path = self.dir / "nginx.pid", self.dir / "stderr.log"
        pid_file.unlink(missing_ok=True)
        with open(stderr_path, "wb") as stderr:  # errors before error_log opens
            self.proc = subprocess.Popen(self._cmd("-g", "daemon off;"), stdin=subprocess.DEVNULL,
                                         stderr=stderr, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and self.proc.poll() is None:
            if pid_file.exists() and pid_file.read_text().strip() == str(self.proc.pid):
                return True
            time.sleep(0.05)
        self.stop()
        errors = stderr_path.read_text() + self.error_log
        if "Address already in use" in errors:
            return False
        raise RuntimeError(f"nginx did not start within {START_TIMEOUT}s:\n{errors}")

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

    def __enter__(self) -> Nginx:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
