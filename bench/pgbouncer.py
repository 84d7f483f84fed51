"""PgBouncer on the rendered pgbouncer.ini (phase 3's pool settings, transaction pooling)
vs direct connections to the same local PostgreSQL 15, with Debian's pgbench at scale 10.

Runs alternate direct / PgBouncer (and swap order every repetition), so each ratio compares
two runs made minutes apart at most, on the same data and the same box. During every run a
`\\watch` on the server counts the `app` role's backends (pg_stat_activity) every 100 ms.

TLS, as in production: PostgreSQL accepts TCP logins only over TLS (`hostssl`, like RDS with
rds.force_ssl), so a direct client uses TLS (verify-full against the CA); PgBouncer talks
TLS to PostgreSQL (the rendered server_tls_sslmode) while clients reach PgBouncer in plain
TCP, as the app reaches the PgBouncer NLB inside the VPC. A supplementary run with TLS off
on both paths shows how much of the new-connection ratio is TLS handshakes.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import SHARED, commit_like_rds, fmt, median, now, psql_watch, ratio, run, table, verdict
from ladder import pgbouncer as pgb
from ladder.phases import phase_defaults

SCALE = 10
SECONDS = 10  # per pgbench run
RUNS = 3  # repetitions per side; medians over these
THREADS = 2
DIRECT_APP = "bench-direct"  # application_name of direct pgbench clients
PHASE = 3  # the pool settings of this phase's catalog defaults


@dataclass(frozen=True)
class Scenario:
    key: str
    label: str
    clients: int
    flags: tuple[str, ...]
    pool: str  # "rw": primary and the app pool; "ro": the replica and the app_ro pool
    target: float | None  # PgBouncer TPS / direct TPS the issue asks for
    tls: bool = True


SCENARIOS = (
    Scenario("select_only", "300 clients, select-only (`-S`)", 300, ("-S",), "rw", 0.9),
    Scenario("tpcb", "300 clients, TPC-B-like (default script)", 300, (), "rw", 1.2),
    Scenario("connect", "100 clients, new connection per transaction (`-C`, default script)", 100,
             ("-C",), "rw", 5.0),
    Scenario("ro_pool", "300 clients, select-only: `app_ro` pool vs straight to the replica", 300,
             ("-S",), "ro", None),
    Scenario("connect_plain", "as `-C` above, TLS off on every hop (context, not a target)", 100,
             ("-C",), "rw", None, tls=False),
)


@dataclass(frozen=True)
class Target:
    """Where pgbench connects: host, port, logical database and libpq environment."""

    host: str
    port: int
    db: str
    env: dict[str, str]


def pgbench(bins: Any, target: Target, clients: int, flags: tuple[str, ...], seconds: int) -> dict[str, Any]:
    cmd = [bins.pgbench, "-n", "-h", target.host, "-p", str(target.port), "-U", "app", "-c", str(clients),
           "-j", str(THREADS), "-T", str(seconds), *flags, target.db]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = run(cmd, timeout=seconds + 120, env={**os.environ, **target.env})
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = done.stdout + done.stderr
    cpu_s = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime

    def number(pattern: str) -> float | None:
        match = re.search(pattern, out, re.M)
        return float(match[1]) if match else None

    return {
        "tps": number(r"^tps = ([\d.]+)") if done.returncode == 0 else None,
        "latency_ms": number(r"^latency average = ([\d.]+) ms"),
        "connect_ms": number(r"^average connection time = ([\d.]+) ms"),
        "failed": int(number(r"^number of failed transactions: (\d+)") or 0),
        "transactions": int(number(r"^number of transactions actually processed: (\d+)") or 0),
        "client_cpu_s": round(cpu_s, 2),  # pgbench's own CPU (user + sys) during the run
        "error": None if done.returncode == 0 else out.strip()[-400:],
    }


def _vacuum(server: Any) -> None:
    """What pgbench does before a run unless -n (-n is needed for the replica): the small
    hot tables vacuumed, the history emptied, so every TPC-B run starts alike."""
    server.psql("VACUUM pgbench_branches, pgbench_tellers", db="app")
    server.psql("TRUNCATE pgbench_history", db="app")


def measure(cluster: Any, scenario: Scenario, targets: dict[str, Target], runs: int,
            seconds: int) -> dict[str, Any]:
    """`runs` alternating direct/PgBouncer runs of one scenario, with the peak backends."""
    from pgcluster import server_connections_sql

    server = cluster.primary if scenario.pool == "rw" else cluster.replicas[0]
    sides: dict[str, dict[str, list[Any]]] = {side: {} for side in targets}
    pairs = []
    for rep in range(runs):
        order = list(targets) if rep % 2 == 0 else list(reversed(targets))
        tps = {}
        for side in order:
            if scenario.pool == "rw" and "-S" not in scenario.flags:
                _vacuum(cluster.primary)
            # Direct clients carry their own application_name, so PgBouncer's idle server
            # connections (kept from earlier runs) never count as direct ones.
            direct = f"application_name = '{DIRECT_APP}'"
            sql = server_connections_sql("app", "app") + f" AND {'' if side == 'direct' else 'NOT '}{direct}"
            with psql_watch(cluster.bins.psql, server.sockdir, server.port, sql) as rows:
                result = pgbench(cluster.bins, targets[side], scenario.clients, scenario.flags, seconds)
            result["peak_backends"] = max((int(r) for r in rows), default=None)
            result["samples"] = len(rows)
            for k, v in result.items():
                sides[side].setdefault(k, []).append(v)
            tps[side] = result["tps"]
            print(f"  {scenario.key} run {rep + 1}/{runs} {side}: {fmt(result['tps'])} tps, "
                  f"latency {fmt(result['latency_ms'], 2)} ms, peak backends {result['peak_backends']}"
                  + (f" ERROR {result['error']}" if result["error"] else ""), flush=True)
        pairs.append(ratio(tps["pgbouncer"], tps["direct"]))
    return {"label": scenario.label, "clients": scenario.clients, "flags": list(scenario.flags),
            "pool": scenario.pool, "tls": scenario.tls, "target": scenario.target,
            "direct": sides["direct"], "pgbouncer": sides["pgbouncer"], "tps_ratio_pairs": pairs}


def _direct(cluster: Any, server: Any, tls: bool) -> Target:
    env = {"PGPASSWORD": cluster.app_password, "PGAPPNAME": DIRECT_APP}
    if tls:
        env.update(PGSSLMODE="verify-full", PGSSLROOTCERT=str(cluster.tls.ca_file))
    else:
        env.update(PGSSLMODE="disable")
    return Target(server.host, server.port, "app", env)


def _via(bouncer: Any, db: str) -> Target:
    return Target(bouncer.host, bouncer.port, db, {"PGPASSWORD": bouncer.passwords["app"], "PGSSLMODE": "disable"})


def _allow_plain_tcp(cluster: Any) -> None:
    """For the supplementary TLS-off run: accept plain TCP logins too, then reload."""
    hba = cluster.primary.datadir / "pg_hba.conf"
    hba.write_text(hba.read_text() + "host all all 127.0.0.0/8 scram-sha-256\n")
    cluster.primary.psql("SELECT pg_reload_conf()")
    time.sleep(0.5)


def bench(runs: int = RUNS, seconds: int = SECONDS) -> dict[str, Any]:
    from pgcluster import (init_pgbench, installed_pgbouncer_version, pg_cluster, pgbouncer_ini_data,
                           running_pgbouncer, service_workdir)

    defaults = phase_defaults(PHASE)["pgbouncer"]
    pool = {"pool_mode": defaults["poolMode"], "max_client_conn": defaults["maxClientConn"],
            "default_pool_size": defaults["defaultPoolSize"], "reserve_pool_size": defaults["reservePoolSize"]}
    cap = pool["default_pool_size"] + pool["reserve_pool_size"]
    started = time.monotonic()
    results: dict[str, Any] = {"date": now(), "runs": runs, "seconds": seconds, "scale": SCALE,
                               "threads": THREADS, "pool": pool, "cap": cap, "scenarios": {}}
    with pg_cluster(replicas=1, tls=True, max_connections=400) as cluster:
        version = installed_pgbouncer_version(cluster.bins)
        results["rendered_for"] = version
        commit_like_rds(cluster.primary)
        init_pgbench(cluster, scale=SCALE)
        replica = cluster.replicas[0]
        for server in (cluster.primary, replica):  # warm caches on both before measuring
            pgbench(cluster.bins, _direct(cluster, server, True), 16, ("-S",), 3)
        workdirs = [service_workdir("scaleladder-bench-pgb-") for _ in range(2)]
        try:
            data = pgbouncer_ini_data(cluster, workdirs[0], version=version, **pool)
            results["server_tls_sslmode"] = data["server_tls_sslmode"]
            with running_pgbouncer(cluster, data, workdirs[0]) as bouncer:
                for scenario in (s for s in SCENARIOS if s.tls):
                    server = cluster.primary if scenario.pool == "rw" else replica
                    db = pgb.RW_DATABASE if scenario.pool == "rw" else pgb.RO_DATABASE
                    targets = {"direct": _direct(cluster, server, True), "pgbouncer": _via(bouncer, db)}
                    results["scenarios"][scenario.key] = measure(cluster, scenario, targets, runs, seconds)
            _allow_plain_tcp(cluster)
            plain = pgbouncer_ini_data(cluster, workdirs[1], version=version, server_tls_sslmode="disable", **pool)
            with running_pgbouncer(cluster, plain, workdirs[1]) as bouncer:
                for scenario in (s for s in SCENARIOS if not s.tls):
                    targets = {"direct": _direct(cluster, cluster.primary, False),
                               "pgbouncer": _via(bouncer, pgb.RW_DATABASE)}
                    results["scenarios"][scenario.key] = measure(cluster, scenario, targets, runs, seconds)
        finally:
            for path in workdirs:
                shutil.rmtree(path, ignore_errors=True)
    results["wall_s"] = round(time.monotonic() - started, 1)
    return results


# ---------------------------------------------------------------- the page


def _summary(s: dict[str, Any]) -> dict[str, Any]:
    d, p = s["direct"], s["pgbouncer"]
    return {
        "tps_d": median(d["tps"]), "tps_p": median(p["tps"]),
        "lat_d": median(d["latency_ms"]), "lat_p": median(p["latency_ms"]),
        "ratio": median(s["tps_ratio_pairs"]),
        "pairs": [r for r in s["tps_ratio_pairs"] if r is not None],
        "peak_d": max((x for x in d["peak_backends"] if x is not None), default=None),
        "peak_p": max((x for x in p["peak_backends"] if x is not None), default=None),
        "failed": sum(d["failed"]) + sum(p["failed"]),
        "errors": [e for e in d["error"] + p["error"] if e],
    }


def markdown(r: dict[str, Any]) -> str:
    pool = r["pool"]
    out = [f"## 1. PgBouncer vs direct (pgbench, scale {r['scale']})\n\n",
           f"Run {r['date']}; {r['runs']} runs of {r['seconds']} s per side and scenario, alternating "
           f"direct / PgBouncer (order swapped every repetition), `-j {r['threads']}`; medians; the ratio is "
           f"the median of the {r['runs']} side-by-side pairs (range in brackets). {SHARED}: pgbench's "
           f"threads, PgBouncer (one process) and PostgreSQL's backends compete for the same 2 cores. "
           f"Whole benchmark: {r.get('wall_s', '?')} s.\n\n",
           f"Config: `pgbouncer/pgbouncer.ini.j2` rendered by `ladder.pgbouncer.ini_data` for PgBouncer "
           f"{r['rendered_for']} (installed here; phase 3's catalog pins a newer release for the hosts) "
           f"with phase {PHASE}'s catalog pool settings: `pool_mode = {pool['pool_mode']}`, "
           f"`max_client_conn = {pool['max_client_conn']}`, `default_pool_size = {pool['default_pool_size']}`, "
           f"`reserve_pool_size = {pool['reserve_pool_size']}` (cap {r['cap']} server connections per pool), "
           f"`server_tls_sslmode = {r.get('server_tls_sslmode')}`. PostgreSQL 15: primary + one streaming "
           f"replica, `max_connections = 400`, `fsync = off` (a throwaway cluster; see "
           f"`tests/integration/pgcluster.py`).\n\n",
           "TLS, as production runs it: PostgreSQL accepts TCP logins only over TLS (like RDS with "
           "`rds.force_ssl`), so **direct** clients use TLS (`sslmode=verify-full`); **through PgBouncer** "
           "the client hop is plain TCP (inside the VPC, to the NLB) and PgBouncer -> PostgreSQL is TLS. "
           "Both sides do SCRAM. With persistent connections the TLS cost per query is similar on both "
           "paths (the encryption moves from the client to PgBouncer); with `-C` the direct side pays a TLS "
           "handshake per transaction and the PgBouncer side does not, which is part of what PgBouncer "
           "buys. The last row repeats `-C` with TLS off on every hop to show how much of that ratio is "
           "TLS.\n\n"]
    rows, peaks = [], []
    for key, s in r["scenarios"].items():
        m = _summary(s)
        pairs = ", ".join(f"{x:.2f}" for x in m["pairs"])
        target = f">= {s['target']}x" if s["target"] else "-"
        rows.append([s["label"], f"{fmt(m['tps_d'])} tps / {fmt(m['lat_d'], 1)} ms",
                     f"{fmt(m['tps_p'])} tps / {fmt(m['lat_p'], 1)} ms",
                     f"**{fmt(m['ratio'], 2)}x** [{pairs}]", f"{fmt(ratio(m['lat_p'], m['lat_d']), 2)}x",
                     target, verdict(m["ratio"], s["target"]) if s["target"] else "context",
                     f"{m['failed']}" + (f", {len(m['errors'])} errored runs" if m["errors"] else "")])
        within = m["peak_p"] is not None and m["peak_p"] <= r["cap"]
        peaks.append([s["label"], fmt(m["peak_d"]), fmt(m["peak_p"]), r["cap"],
                      "yes" if within else "**no**"])
    out.append(table(["scenario", "direct: TPS / latency (median)", "PgBouncer: TPS / latency (median)",
                      "TPS ratio PgBouncer/direct", "latency ratio (lower is better)", "target",
                      "verdict", "failed txns"], rows))
    out.append(f"\n({SHARED}.) Latency is pgbench's average per transaction; `-C` TPS includes the "
               "reconnections. The `app_ro` row compares the read-only pool with the same load "
               "sent straight to the replica (one replica here; phase 3 has two).\n\n")
    out.append("Peak server connections (the `app` role's backends in `pg_stat_activity`, sampled every "
               "100 ms on the server behind the pool, highest over all runs):\n\n")
    out.append(table(["scenario", "direct", "through PgBouncer", "cap (default + reserve pool)",
                      "PgBouncer within cap"], peaks))
    out.append(f"\n({SHARED}.)\n")
    return "".join(out)
