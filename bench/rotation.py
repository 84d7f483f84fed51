"""Credential rotation under load: the project's own procedure (`scaleladder-db rotate`,
alternating logins) while app consumers run transactions through the rendered PgBouncer.

Each consumer runs one transaction per connection (a psql process: a new PgBouncer login,
so every transaction goes through auth_query) at a steady rate, and re-reads its secret
(moto_server's Secrets Manager) every REFRESH_S seconds, switching only once the new
login works. Figures per rotation: transactions, failed transactions, seconds from the
rotation's start to the last consumer refreshed, and the whole procedure's duration
(it waits MIN_WAIT_S, the consumers' refresh period plus margin, then for no client of
the old login on PgBouncer, then removes the old password).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

from bench.common import SHARED, fmt, median, now, table, verdict
from ladder import credentials as cred
from ladder import pgbouncer as pgb

RUNS = 3
CONSUMERS = 6
RATE = 4.0  # transactions per second per consumer
REFRESH_S = 2.0
MIN_WAIT_S = 4.0


def bench(runs: int = RUNS) -> dict[str, Any]:
    from credentials_harness import (
        bootstrap_args,
        console_passwords,
        create_secrets,
        moto_server,
        rotate_under_load,
        script,
        write_userlist,
    )
    from pgcluster import (
        SERVICE_USER,
        installed_pgbouncer_version,
        pg_cluster,
        pgbouncer_ini_data,
        running_pgbouncer,
        service_workdir,
    )

    started = time.monotonic()
    results = []
    with pg_cluster(replicas=1, tls=True, rds_like=True) as cluster, moto_server() as aws:
        create_secrets(aws, cluster)
        done = script(aws, *bootstrap_args(aws, cluster))
        if done.returncode != 0:
            raise RuntimeError(f"bootstrap failed: {done.stdout}{done.stderr}")
        workdir = service_workdir("scaleladder-bench-rotation-")
        try:
            version = installed_pgbouncer_version(cluster.bins)
            data = pgbouncer_ini_data(cluster, workdir, version=version)
            write_userlist(aws, Path(data["auth_file"]), SERVICE_USER if os.geteuid() == 0 else None)
            with running_pgbouncer(cluster, data, workdir, console_passwords=console_passwords(aws.values)) as b:
                app = aws.get(cred.SECRET_APP)
                b.query("CREATE TABLE rotation_log (id bigserial PRIMARY KEY, consumer text NOT NULL, "
                        "login name NOT NULL DEFAULT session_user, at timestamptz NOT NULL DEFAULT now())",
                        db=pgb.SESSION_DATABASE, user=app["username"], password=app["password"])
                cluster.wait_replayed()
                for secret in [cred.SECRET_APP] * runs + [cred.SECRET_APP_RO]:
                    run = rotate_under_load(aws, cluster, b, secret=secret, consumers=CONSUMERS, rate=RATE,
                                            refresh_s=REFRESH_S, min_wait=MIN_WAIT_S)
                    results.append({"secret": secret, "from": run.old_login, "to": run.new_login,
                                    "rotate_exit": run.rotate_code, "transactions": run.transactions,
                                    "failed": len(run.failures), "first_failures": run.failures[:3],
                                    "to_last_refresh_s": _round(run.seconds_to_last_refresh),
                                    "procedure_s": _round(run.rotation_seconds),
                                    "consumers_on_new": run.consumers_on_new})
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    return {"date": now(), "pgbouncer": version, "consumers": CONSUMERS, "rate": RATE, "refresh_s": REFRESH_S,
            "min_wait_s": MIN_WAIT_S, "results": results, "wall_s": round(time.monotonic() - started, 1)}


def _round(value: float | None) -> float | None:
    return round(value, 2) if value is not None else None


def summary(r: dict[str, Any]) -> list[list[str]]:
    res = r["results"]
    failed = sum(x["failed"] for x in res)
    worst = max((x["to_last_refresh_s"] for x in res if x["to_last_refresh_s"] is not None), default=None)
    return [["credential rotation under load: failed transactions / all",
             f"{failed} / {sum(x['transactions'] for x in res):,} ({len(res)} rotations)", "0",
             verdict(failed, 0, higher_is_better=False)],
            ["rotation start -> last consumer refreshed (worst)", fmt(worst, 1, " s"),
             "before the old password is removed",
             "met" if res and all(x["to_last_refresh_s"] is not None and x["to_last_refresh_s"] < x["procedure_s"]
                                  for x in res) else "**short of target**"]]


def markdown(r: dict[str, Any]) -> str:
    res = r["results"]
    out = ["## 5. Credential rotation under load\n\n",
           f"Run {r['date']}, PgBouncer {r['pgbouncer']}; an RDS-like primary (non-superuser master) and one "
           f"replica, roles from `db/bootstrap.sql`, PgBouncer from the rendered config with `auth_query`, "
           f"Secrets Manager from moto_server. {r['consumers']} consumers, each {fmt(r['rate'])} transactions/s "
           f"(one psql login per transaction, over TLS, so every one is looked up through auth_query), "
           f"re-reading their secret every {fmt(r['refresh_s'])} s. `scaleladder-db rotate` gives the other "
           f"login a new password, publishes it, waits {fmt(r['min_wait_s'])} s then for no client of the old "
           f"login on PgBouncer, and removes the old password. Writes go to the `app` pool; the last rotation "
           f"is of the read-only secret (reads on `app_ro`, the replica). {SHARED}. "
           f"Whole benchmark: {r.get('wall_s', '?')} s.\n\n"]
    out.append(table(["rotation", "secret", "logins", "transactions", "failed", "to last refresh",
                      "procedure", "exit"],
                     [[i + 1, x["secret"], f"{x['from']} -> {x['to']}", fmt(x["transactions"]), x["failed"],
                       fmt(x["to_last_refresh_s"], 1, " s"), fmt(x["procedure_s"], 1, " s"), x["rotate_exit"]]
                      for i, x in enumerate(res)]))
    med = median([x["to_last_refresh_s"] for x in res if x["to_last_refresh_s"] is not None])
    out.append(f"\nMedian rotation start -> last consumer refreshed: {fmt(med, 1, ' s')}. The old password is "
               "refused after each rotation (asserted by tests/integration/test_credentials.py, not here). "
               "On hosts the refresh period is the refresh timer's, so the procedure's `--min-wait` must be "
               "at least that period plus an app restart.\n")
    return "".join(out)
