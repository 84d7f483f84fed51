"""One capacity model: how many requests and queue jobs a stack serves, and how many app
hosts or pods, workers, PgBouncer processes and EKS nodes a load needs.

Every phase is sized by it, `ladder cost` counts instances, pods and nodes with it at the
priced load, and `ladder recommend` checks the preset's capacity with it.

Units. Load is requests/s at the app and jobs/s through the queue. The phase catalog states
peak concurrent users and messages per day; usage/defaults.yml says how many requests a user
makes per minute and what share of the peak the month averages (`average_concurrency_share`),
so the peak jobs/s is the daily average divided by that share (the same peak-to-average ratio
for both).

Capacity of one replica. The app is one Node.js process per host (cloudinit/boot.sh starts one
`api` container) or per pod, and a Node process runs JavaScript on one core. At its CPU target
a host uses vCPUs x target of CPU, which one process can reach only while that is below one
core: a 2-vCPU host with one process tops out at 50 % host CPU, so a 60 % target-tracking
policy would never scale out (`target_tracking_problem`; the catalog's 40 % keeps it
reachable). A host's app capacity is min(vCPUs x target, processes) cores x APP_RPS_PER_CORE;
a pod's is its CPU request x the HPA's target x APP_RPS_PER_CORE. A worker host or pod runs one BullMQ worker (WORKER_JOBS_PER_S). PgBouncer is one
single-threaded process per host or pod (PGBOUNCER_TPS_PER_CORE at PGBOUNCER_CPU_TARGET).
A stack's MAXIMUM capacity (`capacity_of`) is its maximum scale at those targets, bounded by
the tier that fills first (app, PgBouncer, or in phase 6 the pods that fit on `eks.nodesMax`).

Where the phase numbers live (one source of truth each):
- Phases 1-5: the catalog (ladder/phases.py) keeps its EC2 counts; they are choices the model
  cannot make (two AZs need two hosts, a rung's instance family), and the model checks them:
  tests/unit/test_capacity.py asserts that each phase's maximum capacity covers its own peak
  and every lower phase's maximum.
- Phase 6: pods have no EC2 analogue, so the catalog takes its HPA bounds, worker bounds,
  PgBouncer replicas and node bounds from `eks_defaults`, computed here from phase 5's
  catalog shape and phase 6's target. Pod CPU requests and limits are the constants below,
  which components/workloads.py reads.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from . import aws_facts

if TYPE_CHECKING:
    from .config import StackConfig

USAGE_DEFAULTS = Path(__file__).resolve().parents[1] / "usage" / "defaults.yml"


@dataclass(frozen=True)
class Constant:
    """A figure the model rests on, with where it comes from (shown by `ladder docs`)."""

    name: str
    value: float
    unit: str
    source: str


APP_RPS_PER_CORE = Constant(
    "app requests/s per core at 100 % CPU", 500, "req/s",
    "2 ms of CPU per request: the low end of 500-2,000 req/s for a single Node.js process doing "
    "database CRUD (docs.bswen.com, \"How Many Requests Per Second Can a Single Node.js Process "
    "Handle?\"); twice the ~1 ms handler docs/benchmarks.md section 3 models, since a real handler "
    "also authenticates, validates and serialises ~10 KB of JSON (usage/defaults.yml)")
APP_PROCESSES_PER_HOST = Constant(
    "Node.js processes per app host", 1, "processes",
    "cloudinit/boot.sh runs one `api` container per host; Node.js runs JavaScript on one thread, "
    "so a 2-vCPU host serves one core's worth unless the image forks per core")
WORKER_JOBS_PER_S = Constant(
    "queue jobs/s per worker process", 50, "jobs/s",
    "BullMQ worker `concurrency: 10` (docs.bullmq.io \"Concurrency\"; the default is 1, the app "
    "sets it) x 1 / 0.2 s per job (an outbound API call: webhook or e-mail, usage kb_nat_per_message); "
    "far below one worker's ceiling of ~4,000 no-op jobs/s (hexdocs.pm/bullmq \"Benchmarks\")")
PGBOUNCER_TPS_PER_CORE = Constant(
    "PgBouncer transactions/s per process", 20_000, "tx/s",
    "measured: 22,061 tps select-only through one PgBouncer 1.18 process that shared 2 cores with "
    "pgbench and PostgreSQL (docs/benchmarks.md section 1), rounded down; PgBouncer is "
    "single-threaded, one process uses one core (PgBouncer docs, so_reuseport for more)")
PGBOUNCER_CPU_TARGET = Constant(
    "PgBouncer CPU target", 70, "%",
    "a single-threaded pooler queues clients as its one core saturates; held to the HPA's 70 % "
    "target (ladder/phases.py eks.hpa.cpuPercent)")
DB_TRANSACTIONS_PER_REQUEST = Constant(
    "database transactions per API request", 2, "tx",
    "assumption: a session/auth read and the request's own query (usage kb_db_per_request: 4 KB)")
HEADROOM = Constant(
    "headroom over the peak for computed maxima", 1.2, "x",
    "design margin, not a measurement: the peak itself is an estimate (usage/defaults.yml)")
APP_POD_CPU = Constant(
    "app pod CPU request = limit", 1, "cores",
    "one Node.js process per pod uses at most one core; request = limit, so the HPA's % is of "
    "the core the process can use")
WORKER_POD_CPU = Constant(
    "worker pod CPU request", 0.25, "cores",
    "50 jobs/s of I/O-bound work at ~5 ms CPU each; limit one core (one Node.js process)")
PGBOUNCER_POD_CPU = Constant(
    "PgBouncer pod CPU request = limit", 1, "cores",
    "single-threaded: one full core (aws-phases-5-6 review finding 6: 500m capped it at half)")
DAEMONSET_CPU = Constant(
    "DaemonSet CPU requests per node", 0.125, "cores",
    "aws-node 25m (aws/amazon-vpc-cni-k8s charts/aws-vpc-cni/values.yaml) + kube-proxy 100m "
    "(EKS kube-proxy add-on); the Pod Identity agent requests none")
DAEMONSET_PODS = Constant(
    "DaemonSet pods per node", 3, "pods", "aws-node, kube-proxy, eks-pod-identity-agent (components/eks.py add-ons)")
# Cluster services' pods (components/eks.py charts and add-ons): CPU request each, count.
SYSTEM_PODS: tuple[tuple[str, float, int], ...] = (
    ("coredns", 0.1, 2),                  # EKS CoreDNS add-on: 2 replicas, 100m
    ("metrics-server", 0.1, 1),           # chart default request 100m
    ("keda", 0.1, 3),                     # operator, metrics API server, admission webhooks
    ("cluster-autoscaler", 0.1, 1),
    ("aws-load-balancer-controller", 0.1, 2),  # replicaCount 2 (components/eks.py)
    ("external-secrets", 0.05, 3),        # controller, webhook, cert controller
)

CONSTANTS: tuple[Constant, ...] = (
    APP_RPS_PER_CORE, APP_PROCESSES_PER_HOST, WORKER_JOBS_PER_S, PGBOUNCER_TPS_PER_CORE, PGBOUNCER_CPU_TARGET,
    DB_TRANSACTIONS_PER_REQUEST, HEADROOM, APP_POD_CPU, WORKER_POD_CPU, PGBOUNCER_POD_CPU, DAEMONSET_CPU,
    DAEMONSET_PODS)


def default_assumptions() -> dict[str, float]:
    """usage/defaults.yml's assumptions (the ones the phases are sized for)."""
    return dict(yaml.safe_load(USAGE_DEFAULTS.read_text())["assumptions"])


# ---------------------------------------------------------------------------
# Load


@dataclass(frozen=True)
class Load:
    users: float
    """Concurrent users."""
    requests_per_s: float
    jobs_per_s: float

    @property
    def db_transactions_per_s(self) -> float:
        return self.requests_per_s * DB_TRANSACTIONS_PER_REQUEST.value


def peak_load(users: float, messages_per_day: float, a: dict[str, float]) -> Load:
    """At `users` concurrent users (a peak) and `messages_per_day`: the busy hour's rates."""
    share = a["average_concurrency_share"]
    return Load(users, users * a["requests_per_user_minute"] / 60, messages_per_day / 86400 / share)


def average_load(users: float, messages_per_day: float, a: dict[str, float]) -> Load:
    """The month's average at a peak of `users` (what monthly cost is priced at)."""
    share = a["average_concurrency_share"]
    return Load(users * share, users * share * a["requests_per_user_minute"] / 60, messages_per_day / 86400)


# ---------------------------------------------------------------------------
# Per replica


def vcpus(instance_type: str) -> int:
    if instance_type not in aws_facts.EC2_VCPUS:
        raise ValueError(f"{instance_type}: no vCPU count in ladder/aws_facts.py EC2_VCPUS; add it with its source")
    return aws_facts.EC2_VCPUS[instance_type]


def host_rps(instance_type: str, cpu_percent: float) -> float:
    """Requests/s one app host serves while its autoscaler holds host CPU at `cpu_percent`:
    the cores in use at the target, at most one per Node.js process."""
    cores = min(vcpus(instance_type) * cpu_percent / 100, APP_PROCESSES_PER_HOST.value)
    return cores * APP_RPS_PER_CORE.value


def app_rps(cores: float, cpu_percent: float) -> float:
    """Requests/s one pod requesting `cores` (one Node.js process) serves at the HPA's target."""
    return min(cores, APP_PROCESSES_PER_HOST.value) * APP_RPS_PER_CORE.value * cpu_percent / 100


def target_tracking_problem(instance_type: str, cpu_percent: float) -> str | None:
    """Why a CPU target can never be reached on this host type with one Node.js process, if so."""
    ceiling = 100 * min(vcpus(instance_type), APP_PROCESSES_PER_HOST.value) / vcpus(instance_type)
    if cpu_percent < ceiling:
        return None
    return (f"{instance_type} has {vcpus(instance_type)} vCPUs and runs {APP_PROCESSES_PER_HOST.value:g} Node.js "
            f"process(es): host CPU tops out at {ceiling:g} %, so a {cpu_percent:g} % target never scales out")


def pgbouncer_rps_per_process() -> float:
    """App requests/s one PgBouncer process carries at its CPU target."""
    return PGBOUNCER_TPS_PER_CORE.value * PGBOUNCER_CPU_TARGET.value / 100 / DB_TRANSACTIONS_PER_REQUEST.value


def replicas_for(demand: float, per_replica: float) -> int:
    """Smallest count whose capacity covers `demand` (at least 1)."""
    return max(1, math.ceil(demand / per_replica - 1e-9))


def clamp(n: int, low: int, high: int) -> int:
    return max(low, min(high, n))


# ---------------------------------------------------------------------------
# EKS nodes


def node_usable_cpu(node_type: str) -> float:
    """Allocatable CPU left for our pods on one node: vCPUs less kubeReserved and DaemonSets."""
    n = vcpus(node_type)
    return n - aws_facts.eks_kube_reserved_cpu(n) - DAEMONSET_CPU.value


def node_allocatable_share(node_type: str) -> float:
    """The share of a node's vCPUs our pods can request (the rest: kubeReserved, DaemonSets)."""
    return node_usable_cpu(node_type) / vcpus(node_type)


def node_pod_slots(node_type: str) -> int:
    return aws_facts.EKS_MAX_PODS[node_type] - int(DAEMONSET_PODS.value)


def system_pod_cpus() -> list[float]:
    return [cpu for _, cpu, count in SYSTEM_PODS for _ in range(count)]


def nodes_for(pod_cpus: list[float], node_type: str) -> int:
    """Nodes the scheduler needs for pods with these CPU requests: first-fit decreasing over
    each node's usable CPU and pod slots (a lower bound on what the scheduler achieves)."""
    usable, slots = node_usable_cpu(node_type), node_pod_slots(node_type)
    nodes: list[list[float]] = []  # [cpu left, slots left]
    for cpu in sorted(pod_cpus, reverse=True):
        if cpu > usable:
            raise ValueError(f"a pod requesting {cpu:g} CPU cannot fit on {node_type} ({usable:.2f} usable)")
        for node in nodes:
            if node[0] + 1e-9 >= cpu and node[1] >= 1:
                node[0] -= cpu
                node[1] -= 1
                break
        else:
            nodes.append([usable - cpu, slots - 1])
    return max(1, len(nodes))


def cluster_pods(app: int, workers: int, pgbouncer: int, app_cpu: float = APP_POD_CPU.value,
                 worker_cpu: float = WORKER_POD_CPU.value, pgbouncer_cpu: float = PGBOUNCER_POD_CPU.value) -> list[float]:
    """CPU requests of every pod phase 6 schedules at these replica counts."""
    return [app_cpu] * app + [worker_cpu] * workers + [pgbouncer_cpu] * pgbouncer + system_pod_cpus()


# ---------------------------------------------------------------------------
# A stack's maximum capacity


@dataclass(frozen=True)
class Capacity:
    requests_per_s: float
    jobs_per_s: float
    bound_by: str
    """The tier that caps requests/s at maximum scale."""
    tiers: dict[str, float]
    """Requests/s each tier could carry at its maximum."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def capacity_of(cfg: StackConfig) -> Capacity:
    """The stack's MAXIMUM capacity: requests/s and jobs/s at maximum scale, at its CPU targets."""
    tiers: dict[str, float] = {}
    if cfg.phase == 1:  # one VM: nginx, one api and one worker container
        tiers["app"] = host_rps(cfg.app_tier.instance_type, cfg.app_tier.cpu_target)
        jobs = WORKER_JOBS_PER_S.value
    elif cfg.phase <= 5:
        t = cfg.app_tier
        hosts = t.desired if cfg.load_balancer == "nginx" else t.max  # nginx fronts a fixed set
        tiers["app"] = hosts * host_rps(t.instance_type, t.cpu_target)
        jobs = cfg.workers.max * WORKER_JOBS_PER_S.value
    else:
        h = cfg.eks.hpa
        per_pod = app_rps(APP_POD_CPU.value, h.cpu_percent)
        tiers["app"] = h.max_replicas * per_pod
        tiers["nodes"] = _pods_on_nodes(cfg) * per_pod
        jobs = cfg.workers.max * WORKER_JOBS_PER_S.value
    if cfg.uses_pgbouncer:
        tiers["pgbouncer"] = cfg.pgbouncer.instances * pgbouncer_rps_per_process()
    bound = min(tiers, key=tiers.__getitem__)
    return Capacity(round(tiers[bound], 1), round(jobs, 1), bound, {k: round(v, 1) for k, v in tiers.items()})


def _pods_on_nodes(cfg: StackConfig) -> int:
    """App pods that fit on eks.nodesMax nodes next to the workers and PgBouncer at their maximum."""
    e = cfg.eks
    fits = 0
    for app in range(1, e.hpa.max_replicas + 1):
        if nodes_for(cluster_pods(app, cfg.workers.max, cfg.pgbouncer.instances), e.node_instance_type) > e.nodes_max:
            break
        fits = app
    return fits


# ---------------------------------------------------------------------------
# Phase 6 defaults, from phase 5's shape and phase 6's target


def eks_defaults(phase5: dict[str, Any], users: int, messages_per_day: int,
                 a: dict[str, float] | None = None) -> dict[str, Any]:
    """Phase 6's HPA, worker, PgBouncer and node bounds (camelCase, as a catalog delta).

    maxReplicas covers the larger of phase 6's peak (with HEADROOM) and phase 5's maximum
    capacity; minReplicas is phase 5's desired app capacity in pods, so the HPA does not
    start below what phase 5 runs on climb day; workers and PgBouncer likewise; node bounds
    are the nodes those pods need at minimum and maximum scale."""
    a = a or default_assumptions()
    peak = peak_load(users, messages_per_day, a)
    tier, eks, w, pb = phase5["appTier"], phase5["eks"], phase5["workers"], phase5["pgbouncer"]
    per_host = host_rps(tier["instanceType"], tier["cpuTarget"])
    per_pod = app_rps(APP_POD_CPU.value, eks["hpa"]["cpuPercent"])
    max_app = max(replicas_for(peak.requests_per_s * HEADROOM.value, per_pod), replicas_for(tier["max"] * per_host, per_pod))
    min_app = max(2, replicas_for(tier["desired"] * per_host, per_pod))
    max_workers = max(replicas_for(peak.jobs_per_s * HEADROOM.value, WORKER_JOBS_PER_S.value), w["max"])
    pgbouncers = max(replicas_for(peak.requests_per_s * HEADROOM.value, pgbouncer_rps_per_process()), pb["instances"])
    node = eks["nodeInstanceType"]
    nodes_max = nodes_for(cluster_pods(max_app, max_workers, pgbouncers), node)
    nodes_min = max(eks["nodesMin"], nodes_for(cluster_pods(min_app, w["min"], pgbouncers), node))
    return {"workers": {"max": max_workers}, "pgbouncer": {"instances": pgbouncers},
            "eks": {"nodesMin": nodes_min, "nodesMax": nodes_max,
                    "hpa": {"minReplicas": min_app, "maxReplicas": max_app}}}


def millicores(cores: float) -> str:
    """A Kubernetes CPU quantity for `cores` (1 -> "1000m")."""
    return f"{round(cores * 1000)}m"
