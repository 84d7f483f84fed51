#!/usr/bin/env python3
"""A stand-in for the `docker` CLI, for ansible/'s deploy test (no image can be pulled here).

Each "container" is a process: `docker run -d --name N ... -p 127.0.0.1:HP:CP IMAGE` starts
tests/integration/upstream.py on 127.0.0.1:HP answering with `"id": IMAGE` (so the test sees
which image served a request); without `-p` (the worker) a sleeping process. State lives in
$FAKE_DOCKER_STATE (one JSON file per container) and every call is appended to its calls.log.
Only what cloudinit/boot.sh and the playbooks call: pull, login, logout, run, stop, rm -f, inspect.
Exit codes follow docker's: `rm` and `inspect` of a missing container fail, as does `run`
with a name in use.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

STATE = Path(os.environ["FAKE_DOCKER_STATE"])
UPSTREAM = Path(__file__).with_name("upstream.py")
FLAGS = {"-d", "--detach", "--read-only", "--rm", "-i", "-t"}  # options without a value
STOP_TIMEOUT = 10.0


def _record(name: str) -> Path:
    return STATE / f"{name}.json"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by init) counts as gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def stop(name: str, remove: bool = True) -> bool:
    """`docker stop` (remove=False: the container stays, stopped) or `docker rm -f`."""
    path = _record(name)
    if not path.exists():
        return False
    pid = json.loads(path.read_text())["pid"]
    if _alive(pid):
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(pid):
            os.killpg(pid, signal.SIGKILL)
    if remove:
        path.unlink()
    return True


def run(args: list[str]) -> int:
    name, ports, positional, i = None, [], [], 0
    while i < len(args):
        arg = args[i]
        if positional or not arg.startswith("-"):
            positional.append(arg)
        elif arg in FLAGS or "=" in arg:
            pass
        else:
            value = args[i + 1]
            i += 1
            if arg == "--name":
                name = value
            elif arg in ("-p", "--publish"):
                ports.append(value)
        i += 1
    image = positional[0]
    name = name or f"c{time.monotonic_ns()}"
    if _record(name).exists():
        print(f'Conflict. The container name "/{name}" is already in use', file=sys.stderr)
        return 125
    if ports:
        host_port = ports[0].split(":")[-2]
        cmd = [sys.executable, str(UPSTREAM), "--port", host_port, "--id", image]
    else:
        cmd = [sys.executable, "-c", "import time; time.sleep(3600)"]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    _record(name).write_text(json.dumps({"pid": proc.pid, "image": image, "ports": ports}))
    print(f"{name}-{proc.pid}")
    return 0


def main(argv: list[str]) -> int:
    STATE.mkdir(parents=True, exist_ok=True)
    with (STATE / "calls.log").open("a") as log:
        log.write(" ".join(argv) + "\n")
    command, args = argv[0], argv[1:]
    if command in ("pull", "login", "logout"):
        return 0
    if command == "run":
        return run(args)
    if command == "rm":
        names = [a for a in args if not a.startswith("-")]
        missing = [n for n in names if not stop(n)]
        for n in missing:
            print(f"Error response from daemon: No such container: {n}", file=sys.stderr)
        return 1 if missing else 0
    if command == "stop":
        name = args[-1]
        if not stop(name, remove=False):
            print(f"Error response from daemon: No such container: {name}", file=sys.stderr)
            return 1
        print(name)
        return 0
    if command == "inspect":
        name = args[-1]
        if not _record(name).exists():
            print(f"Error: No such object: {name}", file=sys.stderr)
            return 1
        print(json.loads(_record(name).read_text())["image"])
        return 0
    print(f"fake docker: {command} not implemented", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
