"""The rendered nginx load balancer (nginx/load_balancer.conf.j2, phase 2 with
`loadBalancer: nginx`) in front of 3 local upstream.py processes, vs the same wrk load sent
straight to one such upstream; then one upstream SIGKILLed mid-run.

Each upstream burns about 1 ms of CPU per request, like a small Node handler. With
upstreams that burn nothing the same comparison is the floor, printed twice: over 3
upstreams, and over the very upstream the direct run uses (the bare cost of the proxy hop,
whose CPU comes out of the same 2 cores as wrk's and the upstream's).
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from bench.common import SHARED, fmt, median, now, ratio, run, table

UPSTREAMS = ("a", "b", "c")
RUNS = 3
WRK = ("-t2", "-c64", "--latency")
SECONDS = 10
KILL_AFTER = 4.0  # seconds into the kill run
NGINX_WORKERS = "auto"  # as the distro's nginx.conf on the LB host (one per core)
# The data components/fleet.py renders the template with (upstreams filled in below).
LB_DATA = {"listen_port": 80, "health_path": "/health", "max_fails": 3, "fail_timeout_s": 30,
           "keepalive": 32, "client_max_body_size_mb": 10}
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}


def parse_wrk(out: str) -> dict[str, Any]:
    """Requests/s, p50/p99 latency (ms), requests, non-2xx/3xx and socket errors from wrk."""
    def number(pattern: str) -> float | None:
        match = re.search(pattern, out, re.M)
        return float(match[1]) if match else None

    def latency(pct: int) -> float | None:
        match = re.search(rf"^\s*{pct}%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
        return float(match[1]) * UNITS[match[2]] if match else None

    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    kinds = dict(zip(("connect", "read", "write", "timeout"), (int(n) for n in sockets.groups()))) if sockets else {}
    non_2xx = int(number(r"Non-2xx or 3xx responses: (\d+)") or 0)
    return {"rps": number(r"^Requests/sec:\s+([\d.]+)"), "p50_ms": latency(50), "p99_ms": latency(99),
            "requests": int(number(r"^\s*(\d+) requests in") or 0), "non_2xx": non_2xx,
            "socket_errors": sum(kinds.values()), "timeouts": kinds.get("timeout", 0),
            "failed": non_2xx + sum(kinds.values())}


def wrk(port: int, seconds: int = SECONDS) -> dict[str, Any]:
    done = run(["wrk", *WRK, f"-d{seconds}s", f"http://127.0.0.1:{port}/"], timeout=seconds + 60)
    return {**parse_wrk(done.stdout), "error": None if done.returncode == 0 else done.stderr.strip()[-300:]}


@contextmanager
def stack(cpu_ms: float, count: int = len(UPSTREAMS)) -> Iterator[tuple[Any, list[Any]]]:
    """`count` upstreams burning `cpu_ms` per request, behind nginx running the rendered config."""
    from nginx_harness import Nginx, Upstream

    from ladder.templates import render

    with ExitStack() as es:
        # quiet: wrk closing its connections at the end makes each upstream print tracebacks
        ups = [es.enter_context(Upstream(i, cpu_ms=cpu_ms, quiet=True)) for i in UPSTREAMS[:count]]
        conf = render("nginx/load_balancer.conf.j2", {**LB_DATA, "upstreams": [u.address for u in ups]})
        nginx = es.enter_context(Nginx(conf, worker_processes=NGINX_WORKERS)).start()
        yield nginx, ups


def compare(cpu_ms: float, runs: int, seconds: int, count: int = len(UPSTREAMS)) -> dict[str, Any]:
    """`runs` alternating runs: straight to upstream `a` vs through nginx to `count` upstreams."""
    sides: dict[str, dict[str, list[Any]]] = {"direct": {}, "nginx": {}}
    with stack(cpu_ms, count) as (nginx, ups):
        ports = {"direct": ups[0].port, "nginx": nginx.port}
        wrk(nginx.port, 2)  # warm-up: keepalive connections, Python's first requests
        for rep in range(runs):
            for side in (["direct", "nginx"] if rep % 2 == 0 else ["nginx", "direct"]):
                result = wrk(ports[side], seconds)
                for k, v in result.items():
                    sides[side].setdefault(k, []).append(v)
                print(f"  cpu-ms {cpu_ms}, {count} upstreams, run {rep + 1}/{runs} {side}: {fmt(result['rps'])} req/s, "
                      f"p50 {fmt(result['p50_ms'], 2)} ms, p99 {fmt(result['p99_ms'], 2)} ms, "
                      f"failed {result['failed']}", flush=True)
    return {"cpu_ms": cpu_ms, "upstreams": count, **sides,
            "rps_ratio_pairs": [ratio(n, d) for n, d in zip(sides["nginx"]["rps"], sides["direct"]["rps"])]}


def kill_run(cpu_ms: float, seconds: int) -> dict[str, Any]:
    """wrk through nginx; `b` is SIGKILLed KILL_AFTER s in. Failed = non-2xx + socket errors."""
    with stack(cpu_ms) as (nginx, ups):
        wrk(nginx.port, 2)
        proc = subprocess.Popen(["wrk", *WRK, f"-d{seconds}s", f"http://127.0.0.1:{nginx.port}/"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        time.sleep(KILL_AFTER)
        ups[1].kill()
        out, err = proc.communicate(timeout=seconds + 60)
        result = parse_wrk(out)
        result["nginx_saw_it"] = ups[1].address in nginx.error_log
    print(f"  kill run: {result['requests']} requests, {result['non_2xx']} non-2xx, "
          f"{result['socket_errors']} socket errors", flush=True)
    return result


def bench(runs: int = RUNS, seconds: int = SECONDS) -> dict[str, Any]:
    started = time.monotonic()
    results = {"date": now(), "runs": runs, "seconds": seconds, "wrk": " ".join(WRK),
               "nginx_workers": NGINX_WORKERS, "upstreams": len(UPSTREAMS),
               "app": compare(1.0, runs, seconds), "floor": compare(0.0, runs, seconds),
               "hop": compare(0.0, runs, seconds, count=1),
               "kill": [kill_run(1.0, seconds) for _ in range(runs)]}
    results["wall_s"] = round(time.monotonic() - started, 1)
    return results


# ---------------------------------------------------------------- the page


def _failed(side: dict[str, list[Any]]) -> str:
    failed, timeouts = sum(side["failed"]), sum(side["timeouts"])
    return f"{failed}" + (f" ({timeouts} wrk timeouts)" if timeouts else "")


def _row(label: str, c: dict[str, Any]) -> list[str]:
    d, n = c["direct"], c["nginx"]
    pairs = ", ".join(f"{x:.2f}" for x in c["rps_ratio_pairs"] if x is not None)
    return [label,
            f"{fmt(median(d['rps']))} req/s, p50 {fmt(median(d['p50_ms']), 1)} / p99 {fmt(median(d['p99_ms']), 1)} ms",
            f"{fmt(median(n['rps']))} req/s, p50 {fmt(median(n['p50_ms']), 1)} / p99 {fmt(median(n['p99_ms']), 1)} ms",
            f"**{fmt(median(c['rps_ratio_pairs']), 2)}x** [{pairs}]",
            f"{fmt(ratio(median(n['p50_ms']), median(d['p50_ms'])), 2)}x / "
            f"{fmt(ratio(median(n['p99_ms']), median(d['p99_ms'])), 2)}x",
            f"{_failed(d)} / {_failed(n)}"]


def summary(r: dict[str, Any]) -> list[list[str]]:
    rows = []
    for key, label in (("app", "nginx over 3 / one upstream, ~1 ms handler: req/s (p99)"),
                       ("floor", "floor, trivial upstreams, nginx over 3 / one: req/s"),
                       ("hop", "floor, trivial upstream, nginx over the same one (bare hop): req/s")):
        if key in r:
            c = r[key]
            p99 = ratio(median(c["nginx"]["p99_ms"]), median(c["direct"]["p99_ms"]))
            rows.append([label, f"{fmt(median(c['rps_ratio_pairs']), 2)}x"
                         + (f" ({fmt(p99, 2)}x)" if key == "app" else ""), "-", "context"])
    failed = sum(k["failed"] for k in r["kill"])
    rows.append([f"failed requests with one of 3 upstreams SIGKILLed mid-run ({len(r['kill'])} runs)",
                 str(failed), "0", "met" if failed == 0 else "**not met**"])
    return rows


def markdown(r: dict[str, Any]) -> str:
    kills = r["kill"]
    failed = [k["failed"] for k in kills]
    out = ["## 3. Load balancer: rendered nginx config vs one upstream (wrk)\n\n",
           f"Run {r['date']}; `wrk {r['wrk']} -d{r['seconds']}s` (fixed concurrency: 64 keep-alive "
           f"connections), {r['runs']} runs per side, alternating; medians; the requests/s ratio is the "
           f"median of the side-by-side pairs (each pair in brackets). nginx runs "
           f"`nginx/load_balancer.conf.j2` rendered with the data `components/fleet.py` uses (least_conn, "
           f"upstream keepalive 32, max_fails 3, proxy_next_upstream) and `worker_processes "
           f"{r['nginx_workers']}` (as the distro's nginx.conf on the LB host), in front of "
           f"`tests/integration/upstream.py` processes (Python, threaded: one core each at most, by the "
           f"GIL). {SHARED}: wrk's 2 threads, nginx's workers and the upstreams all compete for the same "
           f"2 cores, so 3 upstreams can never use more than what wrk and nginx leave them. Whole "
           f"benchmark: {r.get('wall_s', '?')} s.\n\n"]
    rows = [_row("~1 ms CPU per request (`--cpu-ms 1.0`, a small Node handler): nginx over 3", r["app"]),
            _row("**floor**, trivial upstreams (`--cpu-ms 0`): nginx over 3", r["floor"])]
    if "hop" in r:
        rows.append(_row("**floor**, trivial upstream (`--cpu-ms 0`): nginx over the same 1 (the bare hop)",
                         r["hop"]))
    out.append(table(["upstream handler", "straight to one upstream (median)", "through nginx (median)",
                      "req/s ratio nginx/direct", "latency ratio p50 / p99 (lower is better)",
                      "failed direct / nginx"], rows))
    timeouts = sum(r["app"]["direct"]["timeouts"])
    out.append(f"\n({SHARED}.) Failed = non-2xx + wrk socket errors, summed over the runs; wrk times a "
               "request out after 2 s. Straight to one 1 ms upstream, 64 connections queue behind one "
               f"Python process (hence the long p99{' and the timeouts' if timeouts else ''}); nginx spreads "
               "them over three. The "
               "floor rows show what the proxy costs when the upstream does no work: over the same single "
               "upstream it is the bare hop (its CPU comes out of the 2 cores wrk and the upstream need); "
               "over three it is the hop minus the gain of spreading over three Python processes.\n\n")
    out.append(f"**One upstream SIGKILLed {KILL_AFTER:.0f} s into a {r['seconds']} s run** (through nginx, "
               f"`--cpu-ms 1.0`, {len(kills)} runs, fresh upstreams each): failed requests (non-2xx + wrk "
               f"socket errors) per run: {', '.join(str(f) for f in failed)} (goal: zero, through "
               f"`proxy_next_upstream`): {'goal met' if not any(failed) else '**goal not met**'}.\n\n")
    out.append(table(["run", "requests", "non-2xx", "socket errors", "nginx logged the dead upstream"],
                     [[i + 1, f"{k['requests']:,}", k["non_2xx"], k["socket_errors"],
                       "yes" if k["nginx_saw_it"] else "no"] for i, k in enumerate(kills)]))
    out.append(f"\n({SHARED}.)\n")
    return "".join(out)
