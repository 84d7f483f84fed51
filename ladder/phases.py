"""The phase catalog: the one place that says what each rung adds, what it is
sized for, and the defaults it fills into the stack config.

Defaults are cumulative: phase N's defaults are phase 1's with the deltas of
phases 2..N merged on top, and a stack's own config wins over all of them.
Capacity targets and scaling triggers come from the source analyses and are
shared by the alarms the stacks provision and by `ladder recommend`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from typing import Any

from . import capacity
from .aws_facts import EKS_VERSIONS


@dataclass(frozen=True)
class Trigger:
    """A signal that says the current rung is full and it is time to climb."""

    key: str
    description: str
    threshold: float
    unit: str


# When to climb (the sources' thresholds). One list, read by the alarms
# component and by `ladder recommend`.
TRIGGERS: tuple[Trigger, ...] = (
    Trigger("p95LatencyMs", "p95 request latency", 1000, "ms"),
    Trigger("cpuPercent", "CPU utilisation, sustained 15 min", 80, "%"),
    Trigger("memoryPercent", "memory utilisation", 80, "%"),
    Trigger("errorRatePercent", "5xx error rate", 1, "%"),
    Trigger("queueDepth", "jobs waiting in the queue", 100, "jobs"),
    Trigger("dbConnectionsPercent", "database connections, share of max_connections", 90, "%"),
    Trigger("replicaLagSeconds", "read replica lag", 1, "s"),
    # PgBouncer tier (phases 3-5; ours, not the sources'): the fullest pool at the share the
    # database connections trigger uses, and a client wait as long as the whole p95 budget.
    Trigger("pgbouncerPoolPercent", "PgBouncer server connections in use, fullest pool", 90, "%"),
    Trigger("pgbouncerWaitSeconds", "PgBouncer client wait for a server connection, longest", 1, "s"),
)
TRIGGER_BY_KEY = {t.key: t for t in TRIGGERS}


@dataclass(frozen=True)
class Phase:
    number: int
    name: str
    adds: str
    concurrent_users: int
    messages_per_day: int
    # Top-level config sections this phase reads; keys set in other sections
    # are accepted and reported as unused by the plan.
    uses: frozenset[str]
    # camelCase deltas over the previous phase's defaults.
    delta: dict[str, Any] = field(default_factory=dict)

    @property
    def messages_per_user(self) -> float:
        """Target messages/day per concurrent user: how a load given as users alone scales the queue."""
        return self.messages_per_day / self.concurrent_users


_ALWAYS = frozenset({"phase", "app", "network", "database", "redis", "alarms", "logs", "edge", "climb", "hosts"})

PHASES: dict[int, Phase] = {
    p.number: p
    for p in (
        Phase(
            1,
            "single VM",
            "VPC, one EC2 VM (nginx + app + worker containers), RDS PostgreSQL, ElastiCache Redis, alarms",
            concurrent_users=1_000,
            messages_per_day=100_000,
            uses=_ALWAYS | {"appTier"},
            delta={
                "network": {"cidr": "10.0.0.0/16", "azCount": 2, "natGateways": "none"},
                # cpuTarget 40: the presets' app types have 2 vCPUs and a host runs one Node.js process,
                # which tops out at 50 % host CPU; 60 % would never scale out (ladder/capacity.py).
                "appTier": {"instanceType": "t3.medium", "min": 1, "desired": 1, "max": 1, "cpuTarget": 40},
                "workers": {"instanceType": "t3.small", "min": 1, "max": 4, "queueDepthTarget": 100},
                "database": {
                    "instanceClass": "db.t4g.medium",
                    "engineVersion": "16",
                    "storageGb": 20,
                    "maxStorageGb": 100,
                    "multiAz": False,
                    "replicas": 0,
                    "backupRetentionDays": 7,
                },
                "pgbouncer": {
                    "instances": 2,
                    "instanceType": "t3.small",
                    "version": "1.22",
                    "poolMode": "transaction",
                    "maxClientConn": 300,
                    "defaultPoolSize": 25,
                    "reservePoolSize": 5,
                },
                "redis": {
                    "nodeType": "cache.t4g.small",
                    # engine redis, engineVersion unset: the engine's newest (ladder/config.py)
                    "clusterMode": "disabled",
                    "shards": 1,
                    "replicasPerShard": 0,
                },
                "cdn": {"priceClass": "PriceClass_100"},
                "eks": {
                    "version": EKS_VERSIONS[-1],  # the newest in standard support (ladder/aws_facts.py)
                    # m6i.xlarge, not m6i.large: per node, kubeReserved and the DaemonSets take a fixed
                    # share and a 1-core app pod fits once in .large's 1.8 usable cores, three times in
                    # .xlarge's 3.8 (ladder/capacity.py), so phase 6 needs 3-16 nodes instead of 8-46:
                    # -30 % node cost at the same 4 GiB per vCPU. c6i.xlarge would be -41 % but has
                    # 2 GiB per vCPU, and the capacity model packs CPU only: a node of 15 workers
                    # (512 Mi requests) would outgrow its ~6.6 GiB allocatable. Graviton (m7g) is not
                    # priced in every region yet and needs arm64 images. m6i.2xlarge saves ~$12/month more
                    # but runs on 2 nodes at the minimum: one lost node would halve the cluster.
                    # For new node groups only: a deployed group keeps its type (output
                    # nodeInstanceType, else m6i.large) unless the stack sets one (ladder/climb_eks.py).
                    "nodeInstanceType": "m6i.xlarge",
                    "nodesMin": 2,
                    "nodesMax": 10,
                    "hpa": {"minReplicas": 2, "maxReplicas": 10, "cpuPercent": 70, "memoryPercent": 80},
                },
            },
        ),
        Phase(
            2,
            "LB + replicas",
            "Application Load Balancer, app Auto Scaling group (rolling refresh, CPU target tracking), "
            "worker Auto Scaling group on queue depth, NAT",
            concurrent_users=5_000,
            messages_per_day=500_000,
            uses=_ALWAYS | {"appTier", "workers", "loadBalancer"},
            delta={
                "network": {"natGateways": "single"},
                "appTier": {"min": 2, "desired": 2, "max": 6},
                "database": {"multiAz": True},
            },
        ),
        Phase(
            3,
            "read replicas + PgBouncer",
            "2 RDS read replicas, PgBouncer tier (2 instances behind an internal NLB), Redis replica with failover",
            concurrent_users=10_000,
            messages_per_day=1_000_000,
            uses=_ALWAYS | {"appTier", "workers", "loadBalancer", "pgbouncer"},
            delta={
                "appTier": {"instanceType": "t3.large", "max": 10},
                "database": {"instanceClass": "db.m6g.large", "storageGb": 100, "maxStorageGb": 500, "replicas": 2},
                "redis": {"nodeType": "cache.m6g.large", "replicasPerShard": 1},
            },
        ),
        Phase(
            4,
            "Redis cluster",
            "ElastiCache cluster mode enabled (3 shards x 1 replica), reached in place",
            concurrent_users=50_000,
            messages_per_day=5_000_000,
            uses=_ALWAYS | {"appTier", "workers", "loadBalancer", "pgbouncer"},
            delta={
                "network": {"natGateways": "perAz"},
                "appTier": {"instanceType": "c6i.large", "min": 4, "desired": 4, "max": 20},
                "workers": {"instanceType": "t3.medium", "max": 10},
                "database": {"instanceClass": "db.r6g.xlarge", "storageGb": 200, "maxStorageGb": 1000},
                "pgbouncer": {"instanceType": "t3.medium", "maxClientConn": 1000, "defaultPoolSize": 40, "reservePoolSize": 10},
                "redis": {"clusterMode": "enabled", "shards": 3, "replicasPerShard": 1},
            },
        ),
        Phase(
            5,
            "CDN",
            "private S3 bucket behind CloudFront (OAC): /static/* from S3, the rest from the load balancer",
            concurrent_users=100_000,
            messages_per_day=10_000_000,
            uses=_ALWAYS | {"appTier", "workers", "loadBalancer", "pgbouncer", "cdn"},
            delta={"appTier": {"max": 30}},
        ),
        Phase(
            6,
            "EKS + HPA",
            "EKS with managed nodes, metrics-server, Cluster Autoscaler, AWS Load Balancer Controller, KEDA; "
            "app, workers and PgBouncer as Deployments with HPA and PDBs",
            concurrent_users=250_000,
            messages_per_day=25_000_000,
            uses=_ALWAYS | {"pgbouncer", "cdn", "eks", "workers"},
            delta={},
        ),
    )
}


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over` wins; nested dicts merge key by key; lists are replaced whole."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def phase_defaults(number: int) -> dict[str, Any]:
    """The cumulative defaults of phase `number` (camelCase, as in stack YAML)."""
    merged: dict[str, Any] = {}
    for n in range(1, number + 1):
        merged = deep_merge(merged, PHASES[n].delta)
    return merged


# Phase 6's HPA, worker, PgBouncer and node bounds come from the capacity model, computed
# from phase 5's shape and phase 6's target (ladder/capacity.py says why phases 1-5 keep
# their own counts); a stack's own config still wins.
PHASES[6] = replace(PHASES[6], delta=capacity.eks_defaults(
    phase_defaults(5), PHASES[6].concurrent_users, PHASES[6].messages_per_day))
