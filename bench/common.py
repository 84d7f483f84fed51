"""Shared helpers: medians, the machine and versions, bounded commands, a psql sampler,
and writing the results (bench/results/latest.json) and their page (docs/benchmarks.md)."""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
INTEGRATION = REPO / "tests" / "integration"
for path in (REPO, INTEGRATION):  # the integration harnesses are reused as plain modules
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

RESULTS = REPO / "bench" / "results" / "latest.json"
PAGE = REPO / "docs" / "benchmarks.md"
CMD_TIMEOUT = 120.0  # seconds for any helper command
SHARED = "2 cores shared by load generator and servers"
"""Written beside every figure: on this box the load generator competes with the servers."""


# ---------------------------------------------------------------- numbers


def median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile (no interpolation): a value that was actually observed."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * pct // 100))  # ceil(n * pct / 100)
    return ordered[int(rank) - 1]


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def fmt(value: float | None, digits: int = 0, unit: str = "") -> str:
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}{unit}"


def verdict(value: float | None, target: float, higher_is_better: bool = True) -> str:
    if value is None:
        return "not measured"
    met = value >= target if higher_is_better else value <= target
    return "met" if met else "**short of target**"


# ---------------------------------------------------------------- commands


def run(cmd: list[str], timeout: float = CMD_TIMEOUT, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """A command with a bounded wait; output captured as text, never raises on exit status."""
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                          **kwargs)


def first_line(cmd: list[str]) -> str:
    try:
        done = run(cmd, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"unavailable ({err})"
    return ((done.stdout or done.stderr).strip().splitlines() or ["unknown"])[0]


@contextlib.contextmanager
def psql_watch(psql: str, sockdir: Path, port: int, sql: str, interval: float = 0.1) -> Iterator[list[str]]:
    """Run `sql` every `interval` s (psql's `\\watch`) on one superuser connection over
    the Unix socket while the block runs; the list it yields fills with one `|`-separated
    row per line once the block ends. One process and one backend for the whole run, so
    sampling costs the measured servers almost nothing."""
    rows: list[str] = []
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen([psql, "-X", "-qAt", "-h", str(sockdir), "-p", str(port), "-U", "postgres",
                                 "-d", "postgres"], stdin=subprocess.PIPE, stdout=out,
                                stderr=subprocess.DEVNULL, text=True)
        assert proc.stdin is not None
        proc.stdin.write(f"{sql}\n\\watch {interval}\n")
        proc.stdin.close()
        try:
            yield rows
        finally:
            proc.send_signal(signal.SIGINT)  # ends \watch; psql then exits
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
            out.seek(0)
            rows.extend(line for line in out.read().splitlines() if line.strip())


def commit_like_rds(server: Any) -> None:
    """synchronous_commit back to on, RDS's default (the test harness turns it off for speed;
    fsync stays off: this box's disk is not what is measured)."""
    server.psql("ALTER SYSTEM SET synchronous_commit = on")
    server.psql("SELECT pg_reload_conf()")


# ---------------------------------------------------------------- machine and versions


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        match = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        cpu = match[1].strip() if match else cpu
    mem_kb = 0
    with contextlib.suppress(OSError, TypeError):
        mem_kb = int(re.search(r"^MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text(), re.M)[1])
    return {"nproc": os.cpu_count(), "memory_gib": round(mem_kb / 2**20, 1), "cpu": cpu,
            "kernel": platform.release()}


def _package(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def versions() -> dict[str, str]:
    from pgcluster import _pg_bindir  # the same PostgreSQL the benchmarks start

    bindir = _pg_bindir()
    return {
        "PostgreSQL": first_line([str(bindir / "postgres"), "--version"]) if bindir else "not found",
        "pgbench": first_line(["pgbench", "--version"]),
        "PgBouncer": first_line(["/usr/sbin/pgbouncer", "--version"]),
        "nginx": first_line(["nginx", "-v"]),
        "wrk": first_line(["wrk", "-v"]).split(" Copyright")[0],
        "Python": platform.python_version(),
        "pulumi (Python SDK; no CLI needed)": _package("pulumi"),
        "pulumi_aws": _package("pulumi_aws"),
        "pulumi_kubernetes": _package("pulumi_kubernetes"),
    }


def cpu_busy(seconds: float = 2.0) -> float | None:
    """Share (%) of all cores busy over `seconds`, from /proc/stat. Taken between benchmarks,
    when none of ours runs, it shows how much other work is competing for the box."""
    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        return sum(fields[:8]) - idle, sum(fields[:8])

    try:
        busy0, total0 = sample()
        time.sleep(seconds)
        busy1, total1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    return round(100 * (busy1 - busy0) / max(1, total1 - total0), 1)


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


# ---------------------------------------------------------------- results and the page


def load_results() -> dict[str, Any]:
    with contextlib.suppress(OSError, ValueError):
        return json.loads(RESULTS.read_text())
    return {}


def save_results(results: dict[str, Any]) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1, sort_keys=False) + "\n")


def table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


INTRO = """\
# Benchmarks

Written by `python -m bench` (`make bench`); do not edit by hand. Raw figures:
`bench/results/latest.json`. One benchmark alone: `python -m bench pgbouncer|lag|lb|tooling|rotation`
(its section is replaced, the others are kept with their own dates).

**Read every figure with this in mind: the machine has {nproc} cores, and they are shared by
the load generator (pgbench, wrk) and the servers it measures (PostgreSQL, PgBouncer, nginx,
the upstreams).** Absolute numbers are far below what separate hosts deliver; ratios measured
side by side in one run are the meaningful part, and even they carry the load generator's
share of the CPU. Nothing here is asserted by a test: targets are reported, met or not.

"""


def write_page(results: dict[str, Any], modules: dict[str, Any]) -> None:
    """The page from the results: intro, machine and versions, the headline figures
    (each module's `summary`), then each module's `markdown` section."""
    m = results.get("machine", {})
    parts = [INTRO.format(nproc=m.get("nproc", "?")), "## Machine and versions\n\n"]
    parts.append(table(["", ""], [
        ["machine", f"{m.get('nproc')} cores ({m.get('cpu')}), {m.get('memory_gib')} GiB memory, "
                    f"Linux {m.get('kernel')}"],
        *[[name, f"`{value}`"] for name, value in results.get("versions", {}).items()],
        ["written", results.get("written", "?")],
    ]))
    headline = [row for key, module in modules.items() if key in results for row in module.summary(results[key])]
    parts.append(f"\n## Headline figures\n\nMedians; ratios from side-by-side runs; {SHARED} (see each "
                 "section for how each figure was made and what limits it).\n\n")
    parts.append(table(["figure", "measured", "target", "verdict"], headline))
    for key, module in modules.items():
        parts.append("\n")
        if key not in results:
            parts.append(f"## {key}\n\nNot run yet: `python -m bench {key}`.\n")
            continue
        parts.append(module.markdown(results[key]))
        if "box_busy_pct" in results[key]:
            before, after = (fmt(x, 0, " %") for x in results[key]["box_busy_pct"])
            parts.append(f"\n_Other work on the box (CPU busy, share of all cores, over 2 s while none of "
                         f"the benchmark's processes ran): {before} just before, {after} just after. Other "
                         f"sessions share this machine; what they ran during the benchmark competed for "
                         f"the same cores._\n")
    PAGE.parent.mkdir(parents=True, exist_ok=True)
    PAGE.write_text("".join(parts))
