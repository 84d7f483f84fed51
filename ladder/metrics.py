"""The metrics contract: every custom CloudWatch metric the stacks alarm or scale on, once.

Who reads it: the alarms (`components/alarms.py`), the host publisher's config (rendered into
user data as `/etc/scaleladder/metrics.json`, read by `cloudinit/scaleladder-metrics`), the
dashboard (`ladder/dashboard.py`), the README table (`ladder docs`) and the tests. A metric
name, unit or dimension changes here or nowhere.

How the app reports (phases 1-5): StatsD lines over UDP to the host publisher on the Docker
bridge address (`STATSD_HOST`/`STATSD_PORT` in the containers' env). Containers hold no AWS
credentials (IMDSv2 hop limit 1); the publisher runs on the host, with the host role, whose
PutMetricData is limited to these namespaces (`cloudwatch:namespace` condition key: CloudWatch
User Guide, "Using condition keys to limit access to CloudWatch namespaces"). Timers go out as
raw values (`Values`/`Counts`), never statistic sets: CloudWatch computes percentiles only from
raw values (CloudWatch API Reference, GetMetricStatistics: "CloudWatch needs raw data points to
calculate percentile statistics"). Phase 6: the pods publish the same metrics themselves with
their service account's Pod Identity role (same namespaces, same condition key).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

APP_NAMESPACE = "ScaleLadder/App"
HOST_NAMESPACE = "ScaleLadder/Host"
PGBOUNCER_NAMESPACE = "ScaleLadder/PgBouncer"
NAMESPACES = (APP_NAMESPACE, HOST_NAMESPACE, PGBOUNCER_NAMESPACE)

# The publisher's UDP listener: the Docker default bridge's gateway address (docker's
# `bip`, pinned in /etc/docker/daemon.json so it cannot move), the StatsD port.
STATSD_HOST = "172.17.0.1"
STATSD_BRIDGE_CIDR = "172.17.0.1/16"
STATSD_PORT = 8125
FLUSH_SECONDS = 60  # one datapoint per metric per minute (standard resolution)

# CloudWatch API Reference, MetricDatum `Values`: "up to 150 values per metric with one
# PutMetricData request"; PutMetricData `MetricData`: at most 1000 metrics per request (20
# before 2023): the publisher sends 20, valid under both.
MAX_VALUES_PER_DATUM = 150
MAX_DATA_PER_CALL = 20

PROBE_TIMEOUT_SECONDS = 5  # the API-answers probe's HTTP timeout

Kind = Literal["gauge", "timer", "counter", "sampled", "probe"]


@dataclass(frozen=True)
class Metric:
    """One custom metric. `kind` says how it reaches the publisher: `gauge` (StatsD `|g`, the
    last value of the minute; absent when the app stopped reporting), `timer` (`|ms`, every value
    kept, so percentiles work), `counter` (`|c`, summed; published as 0 in a quiet minute, so an
    absent counter means the publisher itself stopped), `sampled` (read by a host script), `probe`
    (the host publisher's own check, never taken from StatsD: a container cannot fake it)."""

    namespace: str
    name: str
    unit: str  # a CloudWatch StandardUnit
    kind: Kind
    dimensions: tuple[str, ...]
    description: str
    reporter: str  # who measures it
    publisher_hosts: str  # who calls PutMetricData in phases 1-5
    publisher_eks: str = ""  # phase 6 ("" = not published in phase 6)
    period: int = FLUSH_SECONDS
    app_role: Literal["api", "worker", ""] = ""  # which app process reports it (app metrics only)


CONTRACT: tuple[Metric, ...] = (
    Metric(APP_NAMESPACE, "QueueWaiting", "Count", "gauge", ("Stack",),
           "jobs waiting, all BullMQ queues (drives the worker group's target tracking and the queue alarm)",
           "the worker container, every 60 s or more often", "scaleladder-metrics on the worker's host",
           "the worker pods (Pod Identity)", app_role="worker"),
    Metric(APP_NAMESPACE, "RequestLatency", "Milliseconds", "timer", ("Stack",),
           "one value per HTTP request (p95 alarm; SampleCount is the request count)",
           "the API container, per request", "scaleladder-metrics on the API's host", "the API pods (Pod Identity)",
           app_role="api"),
    Metric(APP_NAMESPACE, "ServerErrors", "Count", "counter", ("Stack",),
           "HTTP responses with a 5xx status (error rate = ServerErrors / RequestLatency SampleCount)",
           "the API container, per 5xx response", "scaleladder-metrics on the API's host",
           "the API pods (Pod Identity)", app_role="api"),
    # The "API answers" heartbeat: the app's own metrics say nothing when the API is dead (no
    # request, no latency, no 5xx), so the API hosts' publisher asks the API itself each minute.
    Metric(APP_NAMESPACE, "ApiAnswers", "Count", "probe", ("Stack",),
           "1 when the host's API answered 200 on the health path (through the host's nginx) within "
           f"{PROBE_TIMEOUT_SECONDS} s, else 0; absent when the host or its publisher is gone (the api-answers alarm: a breach)",
           "scaleladder-metrics on each API host, `GET http://127.0.0.1:80<health path>` once a minute",
           "scaleladder-metrics on the API's host", app_role="api"),
    Metric(HOST_NAMESPACE, "MemoryUtilization", "Percent", "sampled", ("AutoScalingGroupName|InstanceId",),
           "host memory in use (EC2 reports CPU itself, memory it cannot see)",
           "/proc/meminfo", "scaleladder-host-metrics (1-minute timer) on every app and worker host"),
    Metric(PGBOUNCER_NAMESPACE, "ClientsWaiting", "Count", "sampled", ("AutoScalingGroupName",),
           "clients queued for a server connection, all pools (SHOW POOLS cl_waiting, summed over hosts)",
           "PgBouncer's admin console as pgbouncer_stats", "scaleladder-pgbouncer-metrics on every PgBouncer host"),
    Metric(PGBOUNCER_NAMESPACE, "MaxClientWaitSeconds", "Seconds", "sampled", ("AutoScalingGroupName",),
           "the longest a queued client has waited (SHOW POOLS maxwait)",
           "PgBouncer's admin console as pgbouncer_stats", "scaleladder-pgbouncer-metrics on every PgBouncer host"),
    Metric(PGBOUNCER_NAMESPACE, "PoolUtilization", "Percent", "sampled", ("AutoScalingGroupName",),
           "server connections in use, share of default_pool_size, fullest pool (SHOW POOLS sv_active)",
           "PgBouncer's admin console as pgbouncer_stats", "scaleladder-pgbouncer-metrics on every PgBouncer host"),
)
BY_NAME = {(m.namespace, m.name): m for m in CONTRACT}


def metric(namespace: str, name: str) -> Metric:
    return BY_NAME[(namespace, name)]


def app_metrics() -> list[Metric]:
    """What the app reports over StatsD (the host publisher's whitelist)."""
    return [m for m in CONTRACT if m.namespace == APP_NAMESPACE and m.kind != "probe"]


def health_probe_url(health_path: str, port: int = 80) -> str:
    """What an API host's publisher probes: the health path through the host's own nginx (the
    path clients take on the host: nginx and the app container both have to answer)."""
    return f"http://127.0.0.1:{port}{health_path}"


def publisher_config(region: str, stack: str, health_url: str = "") -> str:
    """/etc/scaleladder/metrics.json for `scaleladder-metrics` (JSON: the script is stdlib + boto3).
    `health_url` (API hosts only): probe it each flush and publish the contract's probe metrics."""
    probes = [m for m in CONTRACT if m.namespace == APP_NAMESPACE and m.kind == "probe"] if health_url else []
    return json.dumps({
        "region": region,
        "namespace": APP_NAMESPACE,
        "dimensions": {"Stack": stack},
        "listen": {"host": STATSD_HOST, "port": STATSD_PORT},
        "flushSeconds": FLUSH_SECONDS,
        "maxValuesPerDatum": MAX_VALUES_PER_DATUM,
        "maxDataPerCall": MAX_DATA_PER_CALL,
        "metrics": {m.name: {"unit": m.unit, "kind": m.kind} for m in [*app_metrics(), *probes]},
        **({"probe": {"url": health_url, "timeoutSeconds": PROBE_TIMEOUT_SECONDS}} if health_url else {}),
    }, indent=2, sort_keys=True)


def statsd_env() -> dict[str, str]:
    """What the containers on a host are told (app.env): send StatsD to the host's publisher."""
    return {"METRICS_PUBLISH": "statsd", "STATSD_HOST": STATSD_HOST, "STATSD_PORT": str(STATSD_PORT)}


# Phase 6: the pods publish themselves, as this service account (Pod Identity role below).
METRICS_SERVICE_ACCOUNT = "scaleladder-app"


def direct_env(stack: str) -> dict[str, str]:
    """What the pods are told (their ConfigMap): call PutMetricData yourselves (the SDK finds the
    Pod Identity credentials), this namespace, these dimensions, the same names and units."""
    return {"METRICS_PUBLISH": "cloudwatch", "METRICS_NAMESPACE": APP_NAMESPACE, "METRICS_DIMENSIONS": f"Stack={stack}"}


def put_metric_policy(namespaces: tuple[str, ...] = (APP_NAMESPACE,)) -> str:
    """PutMetricData into `namespaces` only (the `cloudwatch:namespace` condition key)."""
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "PublishScaleLadderMetrics", "Effect": "Allow", "Action": "cloudwatch:PutMetricData", "Resource": "*",
        "Condition": {"StringEquals": {"cloudwatch:namespace": list(namespaces)}}}]})


def markdown_table() -> str:
    """The README's contract table (`ladder docs`)."""
    rows = ["| namespace | metric | unit | how the app / host reports | dimensions | published by (phases 1-5) "
            "| phase 6 |", "|---|---|---|---|---|---|---|"]
    how = {"gauge": "StatsD gauge `{n}:<v>\\|g`", "timer": "StatsD timer `{n}:<ms>\\|ms`",
           "counter": "StatsD counter `{n}:1\\|c`", "sampled": "sampled on the host",
           "probe": "probed by the host publisher"}
    for m in CONTRACT:
        rows.append(f"| `{m.namespace}` | `{m.name}` | {m.unit} | {how[m.kind].format(n=m.name)}: {m.description} "
                    f"| {', '.join(f'`{d}`'.replace('|', '` or `') for d in m.dimensions)} | {m.publisher_hosts} "
                    f"| {m.publisher_eks or 'not published (no such tier)'} |")
    return "\n".join(rows)


# -- host logs ----------------------------------------------------------------------------
# Docker's awslogs driver options (moby daemon/logger/awslogs ValidateLogOpt: awslogs-region,
# awslogs-group, tag, ...; `mode`/`max-buffer-size` are the daemon's own delivery options,
# Docker docs "Configure logging drivers": non-blocking keeps a CloudWatch Logs hiccup from
# blocking the app's stdout). The group must exist (no awslogs-create-group: the host role may
# not create groups); one stream per container, named `<container name>/<id>`.
DOCKER_LOG_OPTS = ("awslogs-region", "awslogs-group", "tag", "mode", "max-buffer-size")
JOURNALD_MAX_USE = "500M"  # journald's own cap on /var/log/journal (journald.conf SystemMaxUse=)
JOURNALD_MAX_RETENTION = "2week"  # journald.conf MaxRetentionSec=


def docker_daemon_json(region: str, log_group: str) -> str:
    """/etc/docker/daemon.json: container logs to CloudWatch Logs (never the root disk), and the
    bridge address pinned where the metrics publisher listens."""
    return json.dumps({
        "bip": STATSD_BRIDGE_CIDR,
        "log-driver": "awslogs",
        "log-opts": {"awslogs-region": region, "awslogs-group": log_group, "tag": "{{.Name}}/{{.ID}}",
                     "mode": "non-blocking", "max-buffer-size": "4m"},
    }, indent=2, sort_keys=True)


def journald_conf() -> str:
    """/etc/systemd/journald.conf.d/scaleladder.conf: host logs bounded on disk."""
    return f"[Journal]\nSystemMaxUse={JOURNALD_MAX_USE}\nMaxRetentionSec={JOURNALD_MAX_RETENTION}\n"


def container_log_group(prefix: str) -> str:
    """The app hosts' container log group (created by the program, with retention)."""
    return f"/scaleladder/{prefix}/containers"


def pgbouncer_publisher_config(region: str, group_name: str, pool_size: int, secret_arn: str, port: int) -> str:
    """/etc/scaleladder/pgbouncer-metrics.json for `scaleladder-pgbouncer-metrics` on PgBouncer hosts."""
    return json.dumps({
        "region": region, "namespace": PGBOUNCER_NAMESPACE, "dimensions": {"AutoScalingGroupName": group_name},
        "host": "127.0.0.1", "port": port, "poolSize": pool_size, "secretArn": secret_arn,
        "metrics": {m.name: m.unit for m in CONTRACT if m.namespace == PGBOUNCER_NAMESPACE},
    }, indent=2, sort_keys=True)
