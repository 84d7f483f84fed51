"""PgBouncer on the rendered pgbouncer.ini (phase 3's pool settings, transaction pooling)
vs direct connections to the same local PostgreSQL 15, with Debian's pgbench at scale 10.

Runs alternate direct / PgBouncer (the order swaps every repetition), so each ratio compares
two runs made seconds apart, on the same data and the same box. During every run a psql
`\\watch` on the server behind the pool counts the `app` role's backends every 100 ms.

TLS as in production: PostgreSQL accepts TCP logins only over TLS (`hostssl`, like RDS with
rds.force_ssl), so a direct client uses TLS (verify-full against the CA); PgBouncer talks
TLS to PostgreSQL (the rendered server_tls_sslmode) while clients reach PgBouncer in plain
TCP, as the app reaches the PgBouncer NLB inside the VPC. Two context runs repeat `-C`:
with TLS off on every hop, and with PgBouncer's client auth set to `trust` (not the
rendered config), to show what TLS and SCRAM each cost a new connection.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import time
from dataclasses import dataclass
from typing import Any

from bench.common import SHARED, commit_like_rds, fmt, median, now, psql_watch, ratio, run, table, verdict
from ladder import pgbouncer as pgb
from ladder.phases import phase_defaults

SCALE = 10
SECONDS = 10  # per pgbench run
RUNS = 3  # repetitions per side; medians over these
THREADS = 2
PHASE = 3  # whose catalog pool settings are rendered
DIRECT_APP = "bench-direct"  # application_name of direct clients (told apart from PgBouncer's)


@dataclass(frozen=True)
class Scenario:
    key: str
    label: str
    clients: int
    flags: tuple[str, ...]
    target: float | None = None  # PgBouncer TPS / direct TPS the issue asks for
    pool: str = "rw"  # rw: the `app` pool on the primary; ro: `app_ro` on the replica
    variant: str = "rendered"  # rendered | no_tls (TLS off on every hop) | trust (context only)


SCENARIOS = (
    Scenario("select_only", "300 clients, select-only (`-S`)", 300, ("-S",), 0.9),
    Scenario("tpcb", "300 clients, TPC-B-like (default script)", 300, (), 1.2),
    Scenario("connect", "100 clients, new connection per transaction (`-C`, default script)", 100, ("-C",), 5.0),
    Scenario("ro_pool", "300 clients, select-only: `app_ro` pool vs straight to the replica", 300, ("-S",),
             pool="ro"),
    Scenario("connect_no_tls", "context: `-C` as above, TLS off on every hop", 100, ("-C",), variant="no_tls"),
    Scenario("connect_trust", "context: `-C` as above, PgBouncer `auth_type = trust` (not the rendered "
             "config: no SCRAM between client and PgBouncer)", 100, ("-C",), variant="trust"),
)


@dataclass(frozen=True)
class Target:
    """Where pgbench connects: host, port, logical database and libpq environment."""

    host: str
    port: int
    db: str
    env: dict[str, str]


def pgbench(bins: Any, target: Target, clients: int, flags: tuple[str, ...], seconds: int) -> dict[str, Any]:
    """One `pgbench -n -T` run (no vacuum: the replica cannot); what it reports, and its own CPU."""
    cmd = [bins.pgbench, "-n", "-h", target.host, "-p", str(target.port), "-U", "app", "-c", str(clients),
           "-j", str(THREADS), "-T", str(seconds), *flags, target.db]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = run(cmd, timeout=seconds + 120, env={**os.environ, **target.env})
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = done.stdout + done.stderr

    def number(pattern: str) -> float | None:
        match = re.search(pattern, out, re.M)
        return float(match[1]) if match else None

    return {
        "tps": number(r"^tps = ([\d.]+)") if done.returncode == 0 else None,
        "latency_ms": number(r"^latency average = ([\d.]+) ms"),
        "connect_ms": number(r"^average connection time = ([\d.]+) ms"),
        "transactions": int(number(r"^number of transactions actually processed: (\d+)") or 0),
        "failed": int(number(r"^number of failed transactions: (\d+)") or 0),
        "client_cpu_s": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 2),
        "error": None if done.returncode == 0 else out.strip()[-400:],
    }


def _vacuum(server: Any) -> None:
    """What pgbench does before a run without -n: so every TPC-B run starts alike."""
    server.psql("VACUUM pgbench_branches, pgbench_tellers", db="app")
    server.psql("TRUNCATE pgbench_history", db="app")


def measure(cluster: Any, scenario: Scenario, targets: dict[str, Target], runs: int,
            seconds: int) -> dict[str, Any]:
    """`runs` alternating direct/PgBouncer runs of one scenario, with the peak backends."""
    from pgcluster import server_connections_sql

    server = cluster.primary if scenario.pool == "rw" else cluster.replicas[0]
    sides: dict[str, dict[str, list[Any]]] = {side: {} for side in targets}
    for rep in range(runs):
        for side in (["direct", "pgbouncer"] if rep % 2 == 0 else ["pgbouncer", "direct"]):
            if "-S" not in scenario.flags:
                _vacuum(cluster.primary)
            # PgBouncer keeps idle server connections between runs: only direct clients
            # carry DIRECT_APP, so each side counts only its own backends.
            sql = server_connections_sql("app", "app") + \
                f" AND application_name {'=' if side == 'direct' else '<>'} '{DIRECT_APP}'"
            with psql_watch(cluster.bins.psql, server.sockdir, server.port, sql) as rows:
                result = pgbench(cluster.bins, targets[side], scenario.clients, scenario.flags, seconds)
            result["peak_backends"] = max((int(r) for r in rows), default=None)
            for k, v in result.items():
                sides[side].setdefault(k, []).append(v)
            print(f"  {scenario.key} run {rep + 1}/{runs} {side}: {fmt(result['tps'])} tps, "
                  f"latency {fmt(result['latency_ms'], 2)} ms, peak backends {result['peak_backends']}"
                  + (f"\n    ERROR {result['error']}" if result["error"] else ""), flush=True)
    pairs = [ratio(p, d) for p, d in zip(sides["pgbouncer"]["tps"], sides["direct"]["tps"])]
    return {"label": scenario.label, "clients": scenario.clients, "flags": list(scenario.flags),
            "pool": scenario.pool, "variant": scenario.variant, "target": scenario.target,
            "direct": sides["direct"], "pgbouncer": sides["pgbouncer"], "tps_ratio_pairs": pairs}


def _direct(cluster: Any, server: Any, tls: bool) -> Target:
    env = {"PGPASSWORD": cluster.app_password, "PGAPPNAME": DIRECT_APP, "PGSSLMODE": "disable"}
    if tls:
        env.update(PGSSLMODE="verify-full", PGSSLROOTCERT=str(cluster.tls.ca_file))
    return Target(server.host, server.port, "app", env)


def _via(bouncer: Any, db: str) -> Target:
    return Target(bouncer.host, bouncer.port, db, {"PGPASSWORD": bouncer.passwords["app"], "PGSSLMODE": "require"})


def _allow_plain_tcp(cluster: Any) -> None:
    """For the TLS-off context run: the primary accepts plain TCP logins too (reloaded)."""
    hba = cluster.primary.datadir / "pg_hba.conf"
    hba.write_text(hba.read_text() + "host all all 127.0.0.0/8 scram-sha-256\n")
    cluster.primary.psql("SELECT pg_reload_conf()")


def pool_settings() -> dict[str, Any]:
    d = phase_defaults(PHASE)["pgbouncer"]
    return {"pool_mode": d["poolMode"], "max_client_conn": d["maxClientConn"],
            "default_pool_size": d["defaultPoolSize"], "reserve_pool_size": d["reservePoolSize"]}


def bench(runs: int = RUNS, seconds: int = SECONDS) -> dict[str, Any]:
    from pgcluster import (
        init_pgbench,
        installed_pgbouncer_version,
        pg_cluster,
        pgbouncer_ini_data,
        running_pgbouncer,
        service_workdir,
    )

    pool = pool_settings()
    started = time.monotonic()
    results: dict[str, Any] = {"date": now(), "runs": runs, "seconds": seconds, "scale": SCALE,
                               "threads": THREADS, "pool": pool,
                               "cap": pool["default_pool_size"] + pool["reserve_pool_size"], "scenarios": {}}
    with pg_cluster(replicas=1, tls=True, max_connections=400) as cluster:
        version = installed_pgbouncer_version(cluster.bins)
        commit_like_rds(cluster.primary)
        init_pgbench(cluster, scale=SCALE)
        replica = cluster.replicas[0]
        for server in (cluster.primary, replica):  # warm both servers' caches before measuring
            pgbench(cluster.bins, _direct(cluster, server, True), 16, ("-S",), 3)
        for variant in ("rendered", "no_tls", "trust"):
            workdir = service_workdir("scaleladder-bench-pgb-")
            try:
                if variant == "no_tls":
                    _allow_plain_tcp(cluster)
                data = pgbouncer_ini_data(cluster, workdir, version=version, **pool, **(
                    {"server_tls_sslmode": "disable"} if variant == "no_tls" else {}))
                if variant == "rendered":
                    results.update(rendered_for=version, server_tls_sslmode=data["server_tls_sslmode"])
                if variant == "trust":
                    data["auth_type"] = "trust"
                with running_pgbouncer(cluster, data, workdir, plain_password=variant == "trust") as bouncer:
                    for s in (s for s in SCENARIOS if s.variant == variant):
                        server = cluster.primary if s.pool == "rw" else replica
                        db = pgb.RW_DATABASE if s.pool == "rw" else pgb.RO_DATABASE
                        targets = {"direct": _direct(cluster, server, tls=variant != "no_tls"),
                                   "pgbouncer": _via(bouncer, db)}
                        results["scenarios"][s.key] = measure(cluster, s, targets, runs, seconds)
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
    results["wall_s"] = round(time.monotonic() - started, 1)
    return results


# ---------------------------------------------------------------- the page


def _side(side: dict[str, list[Any]]) -> dict[str, float | None]:
    tps, lat = median(side["tps"]), median(side["latency_ms"])
    txns = sum(side["transactions"])
    return {"tps": tps, "lat": lat, "peak": max((x for x in side["peak_backends"] if x is not None), default=None),
            "cpu_ms": 1000 * sum(side["client_cpu_s"]) / txns if txns else None,
            "connect_ms": median([x for x in side["connect_ms"] if x is not None])}


def summary(r: dict[str, Any]) -> list[list[str]]:
    """Headline rows: figure, measured, target, verdict."""
    rows = []
    for key in ("select_only", "tpcb", "connect", "ro_pool"):
        s = r["scenarios"].get(key)
        if not s:
            continue
        tps_ratio = median([x for x in s["tps_ratio_pairs"] if x is not None])
        d, p = _side(s["direct"]), _side(s["pgbouncer"])
        extra = f", latency {fmt(ratio(p['lat'], d['lat']), 2)}x" if key == "select_only" else ""
        trust = r["scenarios"].get("connect_trust")
        if key == "connect" and trust:
            extra = (f"; {fmt(median([x for x in trust['tps_ratio_pairs'] if x is not None]), 2)}x without "
                     "client SCRAM (context row): bound by libpq's SCRAM cost, see section 1")
        rows.append([f"PgBouncer/direct TPS, {s['label']}", f"{fmt(tps_ratio, 2)}x{extra}",
                     f">= {s['target']}x" if s["target"] else "-",
                     verdict(tps_ratio, s["target"]) if s["target"] else "context"])
    peak = max((_side(s["pgbouncer"])["peak"] or 0 for s in r["scenarios"].values()), default=None)
    rows.append(["peak server connections per pool through PgBouncer (any scenario)", fmt(peak),
                 f"<= {r['cap']}", verdict(peak, r["cap"], higher_is_better=False)])
    return rows


def markdown(r: dict[str, Any]) -> str:
    pool, cap = r["pool"], r["cap"]
    out = [f"## 1. PgBouncer vs direct (pgbench, scale {r['scale']})\n\n",
           f"Run {r['date']}; per scenario {r['runs']} runs of {r['seconds']} s on each side, alternating "
           f"direct / PgBouncer (order swapped every repetition), `pgbench -n -j {r['threads']}`; medians over "
           f"the {r['runs']} runs; the TPS ratio is the median of the {r['runs']} side-by-side pairs (each pair "
           f"in brackets). {SHARED}: pgbench's 2 threads, PgBouncer (one process) and PostgreSQL's backends "
           f"all compete for the same 2 cores. Whole benchmark: {fmt(r.get('wall_s'))} s.\n\n",
           f"Config: `pgbouncer/pgbouncer.ini.j2` rendered by `ladder.pgbouncer.ini_data` for PgBouncer "
           f"{r['rendered_for']} (the release installed here; the phase catalog pins a newer one for the "
           f"hosts, whose extra settings 1.18 would reject) with phase {PHASE}'s catalog pool settings: "
           f"`pool_mode = {pool['pool_mode']}`, `max_client_conn = {pool['max_client_conn']}`, "
           f"`default_pool_size = {pool['default_pool_size']}`, `reserve_pool_size = {pool['reserve_pool_size']}` "
           f"(at most {cap} server connections per pool), `auth_type = scram-sha-256`, "
           f"`server_tls_sslmode = {r.get('server_tls_sslmode')}`. PostgreSQL 15 from "
           f"`tests/integration/pgcluster.py`: a primary and one streaming replica on loopback, "
           f"`max_connections = 400`, `synchronous_commit = on` (RDS's default), `fsync = off` (this box's "
           f"disk is not what is measured).\n\n",
           "**TLS, as production runs it.** PostgreSQL accepts TCP logins only over TLS (like RDS with "
           "`rds.force_ssl`), so *direct* clients use TLS (`sslmode=verify-full`); *through PgBouncer* the "
           "client hop is plain TCP (inside the VPC, to the NLB) and PgBouncer -> PostgreSQL is TLS. Both "
           "paths authenticate with SCRAM. With persistent connections (`-S`, TPC-B) every query is "
           "encrypted once on either path (the client's side of it just moves into PgBouncer), so the "
           "comparison is even. With `-C` the direct side pays a TLS handshake and a backend start per "
           "transaction and the PgBouncer side pays neither: that is what PgBouncer is for. The two context "
           "rows split the `-C` figure: TLS off on every hop, and PgBouncer without SCRAM.\n\n"]
    rows, peaks = [], []
    for s in r["scenarios"].values():
        d, p = _side(s["direct"]), _side(s["pgbouncer"])
        pairs = [x for x in s["tps_ratio_pairs"] if x is not None]
        tps_ratio = median(pairs)
        failed = sum(s["direct"]["failed"]) + sum(s["pgbouncer"]["failed"])
        errors = sum(1 for e in s["direct"]["error"] + s["pgbouncer"]["error"] if e)
        rows.append([s["label"], f"{fmt(d['tps'])} tps, {fmt(d['lat'], 1)} ms",
                     f"{fmt(p['tps'])} tps, {fmt(p['lat'], 1)} ms",
                     f"**{fmt(tps_ratio, 2)}x** [{', '.join(f'{x:.2f}' for x in pairs)}]",
                     f"{fmt(ratio(p['lat'], d['lat']), 2)}x",
                     f">= {s['target']}x: {verdict(tps_ratio, s['target'])}" if s["target"] else "context",
                     f"{failed}" + (f", {errors} runs errored" if errors else "")])
        peaks.append([s["label"], fmt(d["peak"]), fmt(p["peak"]),
                      "yes" if p["peak"] is not None and p["peak"] <= cap else "**no**"])
    out.append(table(["scenario", "direct: TPS, latency", "PgBouncer: TPS, latency", "TPS ratio PgBouncer/direct",
                      "latency ratio (lower is better)", "target", "failed txns"], rows))
    out.append(f"\n({SHARED}.) Latency is pgbench's average per transaction; with `-C` it includes "
               "the reconnection. The `app_ro` row sends the same select-only load through the read-only "
               "pool and straight to the replica (one replica here; phase 3 has two).\n\n")
    connect = {k: (_side(s["direct"]), _side(s["pgbouncer"])) for k, s in r["scenarios"].items() if "-C" in s["flags"]}
    if "connect" in connect:
        d, p = connect["connect"]
        t = connect.get("connect_trust", (None, {}))[1]
        out.append(f"**Where `-C` goes.** pgbench opens connections one at a time per thread (`-j 2`), so "
                   f"`-C` TPS follows the cost of one connection. pgbench itself spent "
                   f"{fmt(d['cpu_ms'], 1)} ms of CPU per transaction direct and {fmt(p['cpu_ms'], 1)} ms "
                   f"through PgBouncer (connection time {fmt(d['connect_ms'], 1)} ms vs "
                   f"{fmt(p['connect_ms'], 1)} ms): most of the latter is libpq computing the SCRAM-SHA-256 "
                   f"client proof (4,096 PBKDF2 iterations per login), which both paths pay on the same 2 "
                   f"cores. With PgBouncer's client auth set to `trust` the client spends "
                   f"{fmt(t.get('cpu_ms'), 1)} ms per transaction and the ratio is the last row's. So the "
                   f"rendered config's SCRAM, not pooling, bounds the `-C` ratio on this box; PgBouncer's "
                   f"own work per connection is small. ({SHARED}.)\n\n")
    out.append("Peak server connections (the `app` role's backends in `pg_stat_activity`, sampled every "
               "100 ms on the server behind the pool; highest over all runs of the scenario):\n\n")
    out.append(table(["scenario", "direct", "through PgBouncer", f"PgBouncer within default + reserve = {cap}"],
                     peaks))
    out.append(f"\n({SHARED}.)\n")
    return "".join(out)
