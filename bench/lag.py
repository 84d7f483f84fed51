"""Replica lag under write load: pgbench's TPC-B-like script through the rendered
PgBouncer's read-write pool (phase 3's path to the primary, 300 clients), while
pg_stat_replication.replay_lag on the primary is sampled every 100 ms.

replay_lag is the time between the primary flushing a commit's WAL locally and the
streaming replica reporting it replayed, i.e. how stale a read through the `app_ro` pool
can be. The sources promise under one second.
"""

from __future__ import annotations

import shutil
import threading
import time
from typing import Any

from bench.common import SHARED, commit_like_rds, fmt, median, now, percentile, psql_watch, table, verdict
from bench.pgbouncer import SCALE, _via, pgbench, pool_settings
from ladder import pgbouncer as pgb

RUNS = 3
SECONDS = 15
CLIENTS = 300
SETTLE = 1.0  # seconds of load before sampling starts (the last idle value is stale)
PROMISE_MS = 1000.0
SQL = ("SELECT extract(epoch FROM replay_lag) * 1000, pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) "
       "FROM pg_stat_replication")


def one_run(cluster: Any, bouncer: Any, seconds: int) -> dict[str, Any]:
    load: dict[str, Any] = {}
    writer = threading.Thread(target=lambda: load.update(
        pgbench(cluster.bins, _via(bouncer, pgb.RW_DATABASE), CLIENTS, (), seconds)))
    writer.start()
    time.sleep(SETTLE)
    p = cluster.primary
    with psql_watch(cluster.bins.psql, p.sockdir, p.port, SQL, interval=0.1) as rows:
        writer.join(seconds + 150)
    # NULL: the replica had replayed everything sent, twice in a row (PostgreSQL then
    # clears the lag): counted as no lag.
    fields = [row.split("|") for row in rows]
    lags = [float(f[0]) if f[0] else 0.0 for f in fields]
    behind = [float(f[1]) for f in fields if f[1]]
    result = {"tps": load.get("tps"), "samples": len(rows), "null_samples": sum(1 for f in fields if not f[0]),
              "p50_ms": percentile(lags, 50), "p99_ms": percentile(lags, 99), "max_ms": max(lags, default=None),
              "max_bytes_behind": max(behind, default=None), "error": load.get("error")}
    print(f"  lag run: {fmt(result['tps'])} write tps, replay_lag p50 {fmt(result['p50_ms'], 1)} ms, "
          f"p99 {fmt(result['p99_ms'], 1)} ms, max {fmt(result['max_ms'], 1)} ms "
          f"({result['samples']} samples)", flush=True)
    return result


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
    with pg_cluster(replicas=1, tls=True, max_connections=400) as cluster:
        commit_like_rds(cluster.primary)
        init_pgbench(cluster, scale=SCALE)
        workdir = service_workdir("scaleladder-bench-lag-")
        try:
            data = pgbouncer_ini_data(cluster, workdir, version=installed_pgbouncer_version(cluster.bins), **pool)
            with running_pgbouncer(cluster, data, workdir) as bouncer:
                results = [one_run(cluster, bouncer, seconds) for _ in range(runs)]
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    return {"date": now(), "runs": runs, "seconds": seconds, "clients": CLIENTS, "scale": SCALE,
            "results": results, "wall_s": round(time.monotonic() - started, 1)}


def summary(r: dict[str, Any]) -> list[list[str]]:
    res = r["results"]
    worst = max((x["max_ms"] for x in res if x["max_ms"] is not None), default=None)
    return [["replica replay_lag under write load: p50 / p99 / max",
             f"{fmt(median([x['p50_ms'] for x in res]), 1)} / {fmt(median([x['p99_ms'] for x in res]), 1)} / "
             f"{fmt(worst, 1)} ms", "< 1,000 ms", verdict(worst, PROMISE_MS, higher_is_better=False)]]


def markdown(r: dict[str, Any]) -> str:
    res = r["results"]
    p99 = median([x["p99_ms"] for x in res])
    worst = max((x["max_ms"] for x in res if x["max_ms"] is not None), default=None)
    met = worst is not None and worst < PROMISE_MS
    out = ["## 2. Replica lag under write load\n\n",
           f"Run {r['date']}; {r['runs']} runs of {r['seconds']} s: pgbench's TPC-B-like script (scale "
           f"{r['scale']}), {r['clients']} clients through the rendered PgBouncer's `app` pool to the primary; "
           f"`replay_lag` of the one streaming replica read from `pg_stat_replication` every 100 ms "
           f"(`psql \\watch 0.1`; sampling starts {SETTLE:.0f} s into the load). The primary runs with "
           f"`synchronous_commit = on` (RDS's default): with it off, as the test harness sets, WAL leaves in "
           f"wal_writer_delay batches and replay_lag reads a steady ~200 ms. Percentiles are nearest-rank "
           f"over each run's samples; the summary is the median over runs, the max over all runs. {SHARED}: "
           f"pgbench, PgBouncer, the primary and the replica's WAL receiver and replay all share them. "
           f"Whole benchmark: {r.get('wall_s', '?')} s.\n\n",
           f"**replay_lag: p50 {fmt(median([x['p50_ms'] for x in res]), 1)} ms, p99 {fmt(p99, 1)} ms "
           f"(medians over runs), max {fmt(worst, 1)} ms** — the sources promise under one second: "
           f"{'met' if met else '**not met**'} ({SHARED}).\n\n"]
    out.append(table(["run", "write TPS", "samples (NULL)", "p50", "p99", "max", "max WAL behind"],
                     [[i + 1, fmt(x["tps"]), f"{x['samples']} ({x['null_samples']})", fmt(x["p50_ms"], 1, " ms"),
                       fmt(x["p99_ms"], 1, " ms"), fmt(x["max_ms"], 1, " ms"),
                       fmt((x["max_bytes_behind"] or 0) / 1024, 0, " KiB")] for i, x in enumerate(res)]))
    out.append(f"\n({SHARED}.) A NULL `replay_lag` means the replica had replayed everything sent to it "
               "(PostgreSQL clears the figure once caught up); such samples count as 0 ms.\n")
    return "".join(out)
