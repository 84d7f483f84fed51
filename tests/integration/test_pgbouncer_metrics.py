"""The PgBouncer hosts' stats publisher (cloudinit/scaleladder-pgbouncer-metrics) against a real
PgBouncer in front of a real PostgreSQL, publishing to moto_server, all on 127.0.0.1.

More clients than the pool has server connections hold transactions open: the publisher, logged
in to the admin console as the stats-only user with the password it reads from the (moto)
db-pgbouncer secret, must report the pool full and clients waiting, under the namespace and
dimension the pool alarms watch (components/alarms.py pgbouncer_alarms).
"""

from __future__ import annotations

import contextlib
import importlib.machinery
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pgcluster import (
    STATS_USER,
    PgBouncer,
    PgCluster,
    installed_pgbouncer_version,
    pg_cluster,
    pgbouncer_ini_data,
    running_pgbouncer,
    service_workdir,
)

from components.alarms import pgbouncer_alarms
from ladder import metrics
from ladder import pgbouncer as pgb
from tests.integration.credentials_harness import REGION, moto_server

pytestmark = pytest.mark.integration

SCRIPT = Path(__file__).resolve().parents[2] / "cloudinit" / "scaleladder-pgbouncer-metrics"
GROUP = "scaleladder-phase3-pgbouncer"
POOL_SIZE = 2
CLIENTS = 5  # > POOL_SIZE: three of them queue
LOCK = 4242


def load_script() -> Any:
    loader = importlib.machinery.SourceFileLoader("scaleladder_pgbouncer_metrics", str(SCRIPT))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bouncer() -> Iterator[tuple[PgBouncer, PgCluster]]:
    """PgBouncer over a TLS-only primary (no replicas: the pools, not replication, are tested)."""
    path = service_workdir("scaleladder-pgbm-")
    with pg_cluster(replicas=0, tls=True) as cluster:
        data = pgbouncer_ini_data(cluster, path, version=installed_pgbouncer_version(cluster.bins),
                                  default_pool_size=POOL_SIZE, reserve_pool_size=0)
        with running_pgbouncer(cluster, data, path) as running:
            yield running, cluster
    shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def lock_held(cluster: PgCluster) -> Iterator[None]:
    """A superuser session holds advisory lock LOCK until the block ends: clients asking for it
    through PgBouncer keep their server connections busy, however slow the machine is."""
    server = cluster.primary
    holder = subprocess.Popen([cluster.bins.psql, "-X", "-qAt", "-h", str(server.sockdir), "-p", str(server.port),
                               "-U", "postgres", "-d", cluster.dbname], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    assert holder.stdin is not None and holder.stdout is not None
    holder.stdin.write(f"SELECT pg_advisory_lock({LOCK});\nSELECT 'held';\n")
    holder.stdin.flush()
    while holder.stdout.readline().strip() != "held":
        pass
    try:
        yield
    finally:
        holder.stdin.write(f"SELECT pg_advisory_unlock({LOCK});\n\\q\n")
        holder.stdin.close()
        holder.wait(timeout=30)


def test_a_full_pool_and_waiting_clients_reach_cloudwatch(bouncer: tuple[PgBouncer, PgCluster],
                                                          tmp_path: Path) -> None:
    bouncer, cluster = bouncer  # type: ignore[assignment]
    with moto_server() as aws, lock_held(cluster):
        held = [threading.Thread(target=bouncer.psql, args=(f"SELECT pg_advisory_lock_shared({LOCK})",),
                                 kwargs={"db": pgb.RW_DATABASE}) for _ in range(CLIENTS)]
        for t in held:
            t.start()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:  # until PgBouncer has queued the extra clients
            pools = {row[0]: row for row in bouncer.console("SHOW POOLS", user=STATS_USER)}
            if pgb.RW_DATABASE in pools and int(pools[pgb.RW_DATABASE][3]) >= CLIENTS - POOL_SIZE:
                break
            time.sleep(0.2)
        secret = aws.create("db-pgbouncer", {"stats_user": STATS_USER, "stats_password": bouncer.passwords[STATS_USER]})
        cfg = json.loads(metrics.pgbouncer_publisher_config(REGION, GROUP, POOL_SIZE, secret, bouncer.port))
        cfg["host"] = bouncer.host
        config = tmp_path / "pgbouncer-metrics.json"
        config.write_text(json.dumps(cfg))
        done = subprocess.run([sys.executable, str(SCRIPT), "--config", str(config)], env={**os.environ, **aws.env},
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        import boto3

        cw = boto3.client("cloudwatch", region_name=REGION, endpoint_url=aws.endpoint,
                          aws_access_key_id="testing", aws_secret_access_key="testing")
        now = datetime.now(UTC)

        def value(name: str) -> float:
            points = cw.get_metric_statistics(
                Namespace=metrics.PGBOUNCER_NAMESPACE, MetricName=name, StartTime=now - timedelta(minutes=5),
                EndTime=now + timedelta(minutes=1), Period=60, Statistics=["Maximum"],
                Dimensions=[{"Name": "AutoScalingGroupName", "Value": GROUP}])["Datapoints"]
            assert len(points) == 1, (name, points)
            return float(points[0]["Maximum"])

        assert value("PoolUtilization") == 100.0  # both server connections busy
        assert value("ClientsWaiting") >= CLIENTS - POOL_SIZE
        assert value("MaxClientWaitSeconds") > 0
        # what the alarms watch is what arrived
        watched = {(s.namespace, s.metric, tuple(sorted(s.dimensions.items())))
                   for s in pgbouncer_alarms(GROUP, "net/x", "targetgroup/x", POOL_SIZE) if s.namespace.startswith("ScaleLadder")}
        listed = {(metrics.PGBOUNCER_NAMESPACE, m["MetricName"], tuple(sorted((d["Name"], d["Value"]) for d in m["Dimensions"])))
                  for m in cw.list_metrics(Namespace=metrics.PGBOUNCER_NAMESPACE)["Metrics"]}
        assert watched and watched <= listed
    for t in held:  # the lock is gone: every client got it and left
        t.join(timeout=30)


def test_columns_are_read_by_name_and_the_console_db_is_skipped() -> None:
    mod = load_script()
    rows = [{"database": "pgbouncer", "user": "pgbouncer", "cl_waiting": "9", "sv_active": "9", "maxwait": "9",
             "maxwait_us": "0"},
            {"database": "app", "user": "app", "cl_waiting": "3", "sv_active": "10", "maxwait": "1", "maxwait_us": "500000"},
            {"database": "app_ro", "user": "app", "cl_waiting": "1", "sv_active": "5", "maxwait": "0", "maxwait_us": "0"}]
    assert mod.pool_metrics(rows, 20) == {"ClientsWaiting": 4.0, "MaxClientWaitSeconds": 1.5, "PoolUtilization": 50.0}
