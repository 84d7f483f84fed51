"""`python -m ladder cost STACK`: monthly USD per resource, per component and in total.

Prices come from the catalog (`ladder/catalog/prices.yaml`); every resource type a plan
holds is either priced by a rule below or listed as free there. Traffic-driven figures
(egress, requests, LCUs, NAT GB, S3 requests, log ingestion) come from usage/defaults.yml
and usage/phaseN.yml, derived from the phase's capacity target, and are marked
`usage_driven`. Counting rules: app and worker Auto Scaling groups, and EKS nodes, run what the
capacity model (ladder/capacity.py) needs at the priced load's monthly average, within the
group's min/max (other groups: their desired capacity); each RDS read replica is an instance of its own
with the source's storage; Multi-AZ RDS bills instance and storage twice; ElastiCache bills
shards x (1 + replicas) nodes, or num_cache_clusters. A month is 730 hours.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from . import capacity, engine
from .cli import COMMANDS
from .diff import PlanUnavailable, load
from .phases import PHASES
from .prices import PriceCatalog, catalog

HOURS = 730
USAGE_DIR = engine.REPO / "usage"


# ---------------------------------------------------------------------------
# Usage: assumptions -> monthly quantities


BANDS_FILE = USAGE_DIR / "bands.yml"


def bands() -> dict[str, dict[str, float]]:
    """Usage bands (usage/bands.yml): assumption overrides for lean / default / heavy."""
    return {name: dict(over or {}) for name, over in (yaml.safe_load(BANDS_FILE.read_text())["bands"]).items()}


def load_usage(phase: int, path: Path | None = None,
               band: str | None = None) -> tuple[dict[str, float], dict[str, float], list[str]]:
    """(assumptions, monthly overrides, files read) for `phase`; `path` replaces usage/phaseN.yml;
    `band` (usage/bands.yml) overrides assumptions last."""
    files = [USAGE_DIR / "defaults.yml"]
    assumptions = dict(yaml.safe_load(files[0].read_text())["assumptions"])
    override = path or USAGE_DIR / f"phase{phase}.yml"
    monthly: dict[str, float] = {}
    if override.exists():
        files.append(override)
        data = yaml.safe_load(override.read_text()) or {}
        unknown = set(data.get("assumptions") or {}) - set(assumptions)
        if unknown:
            raise ValueError(f"{override}: unknown assumptions {sorted(unknown)}; allowed: {', '.join(assumptions)}")
        assumptions.update(data.get("assumptions") or {})
        monthly = dict(data.get("monthly") or {})
    if band is not None:
        table = bands()
        if band not in table:
            raise ValueError(f"{BANDS_FILE.name}: no band {band!r}; allowed: {', '.join(table)}")
        unknown = set(table[band]) - set(assumptions)
        if unknown:
            raise ValueError(f"{BANDS_FILE.name}: band {band}: unknown assumptions {sorted(unknown)}")
        assumptions.update(table[band])
        files.append(BANDS_FILE)
    return assumptions, monthly, [str(f.relative_to(engine.REPO)) if f.is_relative_to(engine.REPO) else str(f)
                                  for f in files]


def derive(phase: int, a: dict[str, float], monthly: dict[str, float], users: float | None = None,
           messages_per_day: float | None = None) -> dict[str, float]:
    """Monthly quantities at a load: the phase's capacity target unless `users` (peak concurrent
    users) and `messages_per_day` say otherwise."""
    spec = PHASES[phase]
    peak_users = spec.concurrent_users if users is None else users
    messages = spec.messages_per_day if messages_per_day is None else messages_per_day
    users = peak_users * a["average_concurrency_share"]
    q: dict[str, float] = {"peak_concurrent_users": peak_users, "messages_per_day": messages,
                           "average_concurrent_users": users, "user_hours": users * HOURS}
    q["api_requests"] = q["user_hours"] * 60 * a["requests_per_user_minute"]
    q["page_loads"] = q["user_hours"] * a["page_loads_per_user_hour"]
    q["static_requests"] = q["page_loads"] * a["objects_per_page_load"]
    q["messages"] = messages * HOURS / 24
    q["api_gb"] = q["api_requests"] * a["kb_per_api_response"] / 1e6
    q["static_gb"] = q["page_loads"] * a["kb_static_per_page_load"] / 1e6
    q["egress_gb"] = q["api_gb"] + q["static_gb"]
    q["db_gb"] = q["api_requests"] * a["kb_db_per_request"] / 1e6
    q["nat_gb"] = a["nat_gb_base"] + (q["api_requests"] * a["kb_nat_per_request"]
                                      + q["messages"] * a["kb_nat_per_message"]) / 1e6
    q["s3_storage_gb"] = a["static_assets_gb"]
    q["s3_get_requests"] = q["static_requests"] * (1 - a["cdn_cache_hit_ratio"])
    q["s3_put_requests"] = a["s3_put_requests"]
    q["cdn_log_gb"] = (q["api_requests"] + q["static_requests"]) * a["kb_cdn_log_per_request"] / 1e6
    q["cdn_log_put_requests"] = a["cdn_log_put_requests"]
    q["log_gb_per_source"] = a["log_gb_per_source"]
    q["secret_api_calls"] = a["secret_api_calls"]
    unknown = set(monthly) - set(q)
    if unknown:
        raise ValueError(f"usage monthly: unknown quantities {sorted(unknown)}; allowed: {', '.join(q)}")
    return {**q, **{k: float(v) for k, v in monthly.items()}}


# ---------------------------------------------------------------------------
# Line items


@dataclass
class LineItem:
    resource: str
    type: str
    name: str
    component: str
    sku: str
    quantity: float
    unit: str
    unit_price_usd: float
    monthly_usd: float
    usage_driven: bool
    note: str = ""


@dataclass
class Context:
    plan: dict[str, Any]
    prices: PriceCatalog
    q: dict[str, float]
    a: dict[str, float]
    by_urn: dict[str, dict[str, Any]] = field(default_factory=dict)
    entries: list[str] = field(default_factory=list)  # URNs that send traffic to the internet

    @property
    def region(self) -> str:
        return self.plan["region"]

    def item(self, res: dict[str, Any], table: str, quantity: float, key: str | None = None,
             usage: bool = False, note: str = "") -> LineItem:
        price = self.prices.price(self.region, table, key)
        return LineItem(res["urn"], res["type"], res["name"], component_of(res, self.by_urn),
                        f"{table}:{key}" if key else table, round(quantity, 4), self.prices.unit(table), price,
                        round(quantity * price, 2), usage, note)

    def dependency(self, res: dict[str, Any], type_: str) -> dict[str, Any] | None:
        deps = [self.by_urn[u] for u in (res.get("options") or {}).get("dependsOn") or [] if u in self.by_urn]
        return next((d for d in deps if d["type"] == type_), None)

    @property
    def has_cdn(self) -> bool:
        return any(r["type"] == "aws:cloudfront/distribution:Distribution" for r in self.plan["resources"])

    def egress(self, res: dict[str, Any]) -> list[LineItem]:
        if res["urn"] not in self.entries:
            return []
        share = self.q["egress_gb"] / len(self.entries)
        part = "" if len(self.entries) == 1 else f", 1/{len(self.entries)} of the stack's"
        return [self.item(res, "data_transfer_out_gb", share, usage=True, note=f"internet egress{part}")]


def component_of(res: dict[str, Any], by_urn: dict[str, dict[str, Any]]) -> str:
    """The name of the top-level component `res` belongs to ("(stack)" for top-level resources)."""
    top = res
    while top.get("parent") in by_urn:
        top = by_urn[top["parent"]]
    return top["name"] if top is not res or not res.get("custom") else "(stack)"


Rule = Callable[[dict[str, Any], Context], list[LineItem]]
RULES: dict[str, Rule] = {}


def rule(*types: str) -> Callable[[Rule], Rule]:
    def register(fn: Rule) -> Rule:
        for t in types:
            RULES[t] = fn
        return fn

    return register


def _num(value: Any, default: float) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default


def _depends(res: dict[str, Any], on: dict[str, Any]) -> bool:
    return on["urn"] in ((res.get("options") or {}).get("dependsOn") or [])


def _ipv4(ctx: Context, res: dict[str, Any], count: float, note: str) -> list[LineItem]:
    return [ctx.item(res, "public_ipv4_hour", HOURS * count, note=note)] if count else []


@rule("aws:ec2/instance:Instance")
def _instance(res: dict[str, Any], ctx: Context) -> list[LineItem]:
    i = res["inputs"]
    disk = _num((i.get("rootBlockDevice") or {}).get("volumeSize"), 8)
    disk += sum(_num(d.get("volumeSize"), 8) for d in i.get("ebsBlockDevices") or [])
    has_eip = any(r["type"] == "aws:ec2/eip:Eip" and _depends(r, res)
                  for r in ctx.plan["resources"])
    return ([ctx.item(res, "ec2_instance_hour", HOURS, key=i.get("instanceType")),
             ctx.item(res, "ebs_gp3_gb_month", disk, note="EBS volumes")]
            + _ipv4(ctx, res, bool(i.get("associatePublicIpAddress")) and not has_eip, "auto-assigned public IPv4")
            + ctx.egress(res))


def _average_rates(ctx: Context) -> tuple[float, float]:
    """(requests/s, jobs/s) averaged over the month at the priced load."""
    seconds = HOURS * 3600
    return ctx.q["api_requests"] / seconds, ctx.q["messages"] / seconds


def _cpu_target(ctx: Context, group_name: Any) -> float | None:
    """The CPU % a target-tracking policy holds the group at, if one does."""
    for r in ctx.plan["resources"]:
        t = (r["inputs"].get("targetTrackingConfiguration") or {}) if r["type"] == "aws:autoscaling/policy:Policy" else {}
        if r["inputs"].get("autoscalingGroupName") == group_name and (
                (t.get("predefinedMetricSpecification") or {}).get("predefinedMetricType") == "ASGAverageCPUUtilization"):
            return _num(t.get("targetValue"), 0) or None
    return None


def _group_count(res: dict[str, Any], ctx: Context, instance_type: Any) -> tuple[float, str]:
    """Instances an Auto Scaling group runs on average at the priced load (capacity model), within
    min/max; groups the model does not size (PgBouncer: fixed) run their desired capacity."""
    i = res["inputs"]
    low, high = int(_num(i.get("minSize"), 0)), int(_num(i.get("maxSize"), 0))
    rps, jobs = _average_rates(ctx)
    name = str(i.get("name") or res["name"])
    target = _cpu_target(ctx, i.get("name"))
    if name.endswith("-app") and target and instance_type:
        per = capacity.host_rps(str(instance_type), target)
        need = capacity.replicas_for(rps, per)
        return capacity.clamp(need, low, high), (f"{rps:,.0f} req/s average needs {need} at {per:,.0f} req/s each "
                                                  f"(capacity model, CPU {target:g} %); {_bounds(need, low, high)}")
    if name.endswith("-workers"):
        per = capacity.WORKER_JOBS_PER_S.value
        need = capacity.replicas_for(jobs, per)
        return capacity.clamp(need, low, high), (f"{jobs:,.1f} jobs/s average needs {need} at {per:g} jobs/s each; "
                                                  f"{_bounds(need, low, high)}")
    count = _num(i.get("desiredCapacity"), low or 1)
    return count, f"desired {count:g} instance(s) (min {low}, max {high})"


def _bounds(need: int, low: int, high: int) -> str:
    """The group's bounds, and a warning when the load needs more than its maximum."""
    over = f"; OVER CAPACITY: the load needs {need}, the maximum is {high}" if need > high else ""
    return f"min {low}, max {high}{over}"


@rule("aws:autoscaling/group:Group")
def _asg(res: dict[str, Any], ctx: Context) -> list[LineItem]:
    lt = ctx.dependency(res, "aws:ec2/launchTemplate:LaunchTemplate")
    if lt is None:
        raise ValueError(f"{res['urn']}: no launch template among its dependencies; cannot price its instances")
    li = lt["inputs"]
    count, note = _group_count(res, ctx, li.get("instanceType"))
    disk = sum(_num((m.get("ebs") or {}).get("volumeSize"), 8) for m in li.get("blockDeviceMappings") or []) or 8
    public = any(n.get("associatePublicIpAddress") in (True, "true") for n in li.get("networkInterfaces") or [])
    return ([ctx.item(res, "ec2_instance_hour", HOURS * count, key=li.get("instanceType"), note=note),
             ctx.item(res, "ebs_gp3_gb_month", disk * count, note=f"{disk:g} GB per instance")]
            + _ipv4(ctx, res, count if public else 0, "public IPv4 per instance") + ctx.egress(res))


@rule("aws:ec2/eip:Eip")
def _eip(res: dict[str, Any], ctx: Context) -> list[LineItem]:
    return _ipv4(ctx, res, 1, "Elastic IP")


@rule("aws:ec2/natGateway:NatGateway")
def _nat(res: dict[str, Any], ctx: Context) -> list[LineItem]:
    nats = sum(r["type"] == res["type"] for r in ctx.plan["resources"])
    share = "NAT traffic" if nats == 1 else f"1/{nats} of NAT traffic"
    return [ctx.item(res, "nat_gateway_hour", HOURS, note="public IPv4 priced on its Elastic IP"),
            ctx.item(res, "nat_gateway_gb", ctx.q["nat_gb"] / nats, usage=True, note=share)]


def _capacity_units(ctx: Context, internal: bool, kind: str, share: float) -> tuple[float, str]:
    """Average LCUs (ALB) / NLCUs (NLB): the largest dimension, from monthly averages."""
    q, a = ctx.q, ctx.a
    if internal:  # the internal load balancer in this design fronts PgBouncer: app <-> DB traffic
        gb, requests, active = q["db_gb"], 0.0, 0.0
    else:
        gb = (q["api_gb"] + (0 if ctx.has_cdn else q["static_gb"])) * share
        requests = (q["api_requests"] + (0 if ctx.has_cdn else q["static_requests"])) * share
        active = q["average_concurrent_users"] * a["connections_per_active_user"] * share
    new_per_s = requests / a["requests_per_connection"] / (HOURS * 3600)
    per_unit = {"alb": (25, 3000), "nlb": (800, 100_000)}[kind]
    dims = {"new connections": new_per_s / per_unit[0], "active connections": active / per_unit[1],
            "processed GB": gb / HOURS}
    biggest = max(dims, key=dims.__getitem__)
    return dims[biggest], f"average {dims[biggest]:.2f} units/h, bound by {biggest}"


def _load_balancer(res: dict[str, Any], ctx: Context, kind: str, internal: bool, subnets: int) -> list[LineItem]:
    share = 1 / max(1, len(ctx.entries)) if res["urn"] in ctx.entries else 0.0
    units, note = _capacity_units(ctx, internal, kind, share or 1.0)
    table = "alb" if kind == "alb" else "nlb"
    unit_table = "alb_lcu_hour" if kind == "alb" else "nlb_nlcu_hour"
    return ([ctx.item(res, f"{table}_hour", HOURS), ctx.item(res, unit_table, units * HOURS, usage=True, note=note)]
            + _ipv4(ctx, res, 0 if internal else subnets, "one public IPv4 per AZ") + ctx.egress(res))


@rule("aws:lb/loadBalancer:LoadBalancer")
def _lb(res: dict[str, Any], ctx: Context) -> list[LineItem]:
    i = res["inputs"]
    kind = "nlb" if i.get("loadBalancerType") == "network" else "alb"
    subnets = len(i.get("subnets") or i.get("subnetMappings") or []) or 2
    return _load_balancer(res, ctx, kind, bool(i.get("internal")), subnets)


@rule("aws:rds/instance:Instance")
def _rds(res: dict[str, Any], ctx: Context) -> list[LineItem]:
    i = res["inputs"]
    copies = 2 if i.get("multiAz") is True else 1
    az = "Multi-AZ: instance and standby" if copies == 2 else "Single-AZ"
    storage = i.get("allocatedStorage")
    note = f"{az}"
    if storage is None and i.get("replicateSourceDb"):  # a replica's storage follows its source
        sources = [r["inputs"].get("allocatedStorage") for r in ctx.plan["resources"]
                   if r["type"] == res["type"] and not r["inputs"].get("replicateSourceDb")]
        storage, note = max([_num(s, 20) for s in sources] or [20]), f"{az}; read replica, storage as its source"
    storage = _num(storage, 20)
    out = [ctx.item(res, "rds_postgres_instance_hour", HOURS * copies, key=i.get("instanceClass"), note=az),
           ctx.item(res, "rds_gp3_gb_month", storage * copies, note=f"{storage:g} GB; {note}")]
    if i.get("manageMasterUserPassword"):
        out.append(ctx.item(res, "secretsmanager_secret_month", 1, note="master password secret managed by RDS"))
    logs = len(i.get("enabledCloudwatchLogsExports") or [])
    if logs:
        out.append(_log_ingest(res, ctx, logs, f"{logs} exported log type(s)"))
    return out


@rule("aws:elasticache/replicationGroup:ReplicationGroup")
def _redis(res: dict[str, Any], ctx: Context) -> list[LineItem]:
    i = res["inputs"]
    if i.get("numNodeGroups") is not None or i.get("clusterMode") == "enabled":
        shards, replicas = _num(i.get("numNodeGroups"), 1), _num(i.get("replicasPerNodeGroup"), 0)
        nodes, note = shards * (1 + replicas), f"{shards:g} shard(s) x (1 + {replicas:g} replica(s))"
    else:
        nodes = _num(i.get("numCacheClusters"), 1)
        note = f"{nodes:g} node(s) (num_cache_clusters)"
    return [ctx.item(res, "elasticache_node_hour", HOURS * nodes, key=i.get("nodeType"), note=note)]


@rule("aws:elasticache/cluster:Cluster")
def _cache_cluster(res: dict[str, Any], ctx: Context) -> list[LineItem]:
    i = res["inputs"]
    if i.get("replicationGroupId"):
        return []  # a member of a replication group, priced there
    nodes = _num(i.get("numCacheNodes"), 1)
    return [ctx.item(res, "elasticache_node_hour", HOURS * nodes, key=i.get("nodeType"), note=f"{nodes:g} node(s)")]


@rule("aws:eks/cluster:Cluster")
def _eks(res: dict[str, Any], ctx: Context) -> list[LineItem]:
    logs = len(res["inputs"].get("enabledClusterLogTypes") or [])
    out = [ctx.item(res, "eks_cluster_hour", HOURS, note="control plane")]
    if logs and not ctx.dependency(res, LOG_GROUP):  # else priced on the log group the program creates
        out.append(_log_ingest(res, ctx, logs, f"{logs} control-plane log type(s)"))
    return out


def _cpu_cores(quantity: Any) -> float:
    """A Kubernetes CPU quantity ("250m", "1", 0.5) in cores."""
    text = str(quantity or 0)
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def _k8s(ctx: Context, type_: str, name: str) -> dict[str, Any] | None:
    return next((r for r in ctx.plan["resources"] if r["type"] == type_
                 and ((r["inputs"].get("metadata") or {}).get("name")) == name), None)


def _pod_cpu(deployment: dict[str, Any] | None, default: float) -> float:
    if deployment is None:
        return default
    containers = ((deployment["inputs"].get("spec") or {}).get("template") or {}).get("spec", {}).get("containers") or []
    return sum(_cpu_cores(((c.get("resources") or {}).get("requests") or {}).get("cpu")) for c in containers) or default


def _cluster_pods(ctx: Context) -> tuple[list[float], str]:
    """CPU requests of the pods phase 6 runs on average at the priced load: the app within its
    HPA bounds, the workers within KEDA's, PgBouncer's fixed replicas, the cluster services."""
    rps, jobs = _average_rates(ctx)
    deploy = "kubernetes:apps/v1:Deployment"
    hpa = (_k8s(ctx, "kubernetes:autoscaling/v2:HorizontalPodAutoscaler", "app") or {}).get("inputs", {}).get("spec", {})
    scaled = (_k8s(ctx, "kubernetes:keda.sh/v1alpha1:ScaledObject", "workers") or {}).get("inputs", {}).get("spec", {})
    pgb = _k8s(ctx, deploy, "pgbouncer")
    app_cpu = _pod_cpu(_k8s(ctx, deploy, "app"), capacity.APP_POD_CPU.value)
    worker_cpu = _pod_cpu(_k8s(ctx, deploy, "workers"), capacity.WORKER_POD_CPU.value)
    pgb_cpu = _pod_cpu(pgb, capacity.PGBOUNCER_POD_CPU.value)
    target = next((m["resource"]["target"].get("averageUtilization") for m in hpa.get("metrics") or []
                   if (m.get("resource") or {}).get("name") == "cpu"), 70)
    app = capacity.clamp(capacity.replicas_for(rps, capacity.app_rps(app_cpu, target)),
                         int(_num(hpa.get("minReplicas"), 1)), int(_num(hpa.get("maxReplicas"), 1)))
    workers = capacity.clamp(capacity.replicas_for(jobs, capacity.WORKER_JOBS_PER_S.value),
                             int(_num(scaled.get("minReplicaCount"), 0)), int(_num(scaled.get("maxReplicaCount"), 1)))
    pgbouncers = int(_num(((pgb or {}).get("inputs", {}).get("spec") or {}).get("replicas"), 0))
    pods = capacity.cluster_pods(app, workers, pgbouncers, app_cpu, worker_cpu, pgb_cpu)
    return pods, (f"{rps:,.0f} req/s average: {app} app pods, {workers} workers, {pgbouncers} PgBouncer "
                  f"+ {len(capacity.system_pod_cpus())} cluster-service pods")


@rule("aws:eks/nodeGroup:NodeGroup")
def _node_group(res: dict[str, Any], ctx: Context) -> list[LineItem]:
    i = res["inputs"]
    scaling = i.get("scalingConfig") or {}
    low = int(_num(scaling.get("minSize"), _num(scaling.get("desiredSize"), 1)))
    high = int(_num(scaling.get("maxSize"), low))
    types = i.get("instanceTypes") or []
    lt = ctx.dependency(res, "aws:ec2/launchTemplate:LaunchTemplate")
    itype = types[0] if types else (lt or {}).get("inputs", {}).get("instanceType")
    disk = _num(i.get("diskSize"), 20)
    pods, why = _cluster_pods(ctx)
    need = capacity.nodes_for(pods, str(itype))
    nodes = capacity.clamp(need, low, high)
    note = f"{why} need {need} nodes (capacity model); {_bounds(need, low, high)}"
    return [ctx.item(res, "ec2_instance_hour", HOURS * nodes, key=itype, note=note),
            ctx.item(res, "ebs_gp3_gb_month", disk * nodes, note=f"{disk:g} GB per node")]


@rule("aws:cloudwatch/metricAlarm:MetricAlarm")
def _alarm(res: dict[str, Any], ctx: Context) -> list[LineItem]:
    i = res["inputs"]
    queries = i.get("metricQueries") or []
    metrics = sum(1 for m in queries if m.get("metric")) or 1
    periods = [_num(i.get("period"), 60)] + [_num((m.get("metric") or {}).get("period"), 60) for m in queries]
    table = "cloudwatch_alarm_high_res_metric_month" if min(periods) < 60 else "cloudwatch_alarm_metric_month"
    note = f"metric math over {metrics} metrics" if queries else (
        f"percentile {i['extendedStatistic']}" if i.get("extendedStatistic") else "")
    return [ctx.item(res, table, metrics, note=note)]


LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"


@rule(LOG_GROUP)
def _log_group(res: dict[str, Any], ctx: Context) -> list[LineItem]:
    """One log source, or as many as the EKS log types of a cluster that writes to this group."""
    sources = sum(len(r["inputs"].get("enabledClusterLogTypes") or []) for r in ctx.plan["resources"]
                  if r["type"] == "aws:eks/cluster:Cluster" and _depends(r, res))
    return [_log_ingest(res, ctx, max(1, sources),
                        f"ingestion, {sources} EKS control-plane log type(s)" if sources else "ingestion")]


def _log_ingest(res: dict[str, Any], ctx: Context, sources: int, note: str) -> LineItem:
    """CloudWatch Logs ingestion: a usage-driven volume per log source (usage/defaults.yml)."""
    return ctx.item(res, "cloudwatch_logs_ingest_gb", sources * ctx.q["log_gb_per_source"], usage=True, note=note)


@rule("aws:secretsmanager/secret:Secret")
def _secret(res: dict[str, Any], ctx: Context) -> list[LineItem]:
    return [ctx.item(res, "secretsmanager_secret_month", 1),
            ctx.item(res, "secretsmanager_api_calls_10k", ctx.q["secret_api_calls"] / 1e4, usage=True)]


@rule("aws:kms/key:Key")
def _kms(res: dict[str, Any], ctx: Context) -> list[LineItem]:
    return [ctx.item(res, "kms_key_month", 1)]


@rule("aws:cloudfront/distribution:Distribution")
def _cloudfront(res: dict[str, Any], ctx: Context) -> list[LineItem]:
    requests = ctx.q["api_requests"] + ctx.q["static_requests"]
    return [ctx.item(res, "cloudfront_gb_out", ctx.q["egress_gb"], usage=True, note="all viewer traffic"),
            ctx.item(res, "cloudfront_https_requests_10k", requests / 1e4, usage=True, note="API + static requests")]


@rule("aws:wafv2/webAcl:WebAcl")
def _web_acl(res: dict[str, Any], ctx: Context) -> list[LineItem]:
    """Every request that enters through the protected ALB or distribution is inspected: API and
    static alike (phases 2-4 serve static files through the ALB; CloudFront's web ACL sees /static too)."""
    rules = len(res["inputs"].get("rules") or [])
    requests = ctx.q["api_requests"] + ctx.q["static_requests"]
    return [ctx.item(res, "waf_web_acl_month", 1),
            ctx.item(res, "waf_rule_month", rules, note=f"{rules} rules (rate limit + managed groups)"),
            ctx.item(res, "waf_requests_1m", requests / 1e6, usage=True, note="API + static requests inspected")]


def _bucket_role(res: dict[str, Any], ctx: Context) -> str:
    """"origin" (CloudFront serves it), "cdn-logs" (CloudFront logs to it) or "other". A bucket's
    name starts with its `bucket`/`bucketPrefix` input, else with its logical name (autonaming)."""
    prefix = res["inputs"].get("bucket") or res["inputs"].get("bucketPrefix") or res["name"] + "-"
    for dist in ctx.plan["resources"]:
        if dist["type"] != "aws:cloudfront/distribution:Distribution":
            continue
        if str((dist["inputs"].get("loggingConfig") or {}).get("bucket", "")).startswith(prefix):
            return "cdn-logs"
        if any(str(o.get("domainName", "")).startswith(prefix) for o in dist["inputs"].get("origins") or []):
            return "origin"
    return "other"


def _retention_months(res: dict[str, Any], ctx: Context) -> float:
    """How long objects stay: the shortest expiration of the bucket's lifecycle rules, else a year."""
    days = [_num((rule.get("expiration") or {}).get("days"), 0) for r in ctx.plan["resources"]
            if r["type"].startswith("aws:s3/bucketLifecycleConfiguration")
            and _depends(r, res) for rule in r["inputs"].get("rules") or []]
    days = [d for d in days if d > 0]
    return min(days) / 30 if days else 12.0


@rule("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
def _bucket(res: dict[str, Any], ctx: Context) -> list[LineItem]:
    q = ctx.q
    role = _bucket_role(res, ctx)
    if role == "cdn-logs":
        months = _retention_months(res, ctx)
        return [ctx.item(res, "s3_standard_gb_month", q["cdn_log_gb"] * months, usage=True,
                         note=f"CloudFront logs kept {months:g} month(s)"),
                ctx.item(res, "s3_put_requests_1k", q["cdn_log_put_requests"] / 1e3, usage=True,
                         note="log file deliveries")]
    out = [ctx.item(res, "s3_standard_gb_month", q["s3_storage_gb"], usage=True,
                    note="static assets" if role == "origin" else "assumed as large as the static assets")]
    if role == "origin":
        out.append(ctx.item(res, "s3_get_requests_1k", q["s3_get_requests"] / 1e3, usage=True, note="CDN cache misses"))
    return out + [ctx.item(res, "s3_put_requests_1k", q["s3_put_requests"] / 1e3, usage=True, note="uploads")]


@rule("aws:ec2/vpcEndpoint:VpcEndpoint")
def _endpoint(res: dict[str, Any], ctx: Context) -> list[LineItem]:
    i = res["inputs"]
    if i.get("vpcEndpointType", "Gateway") != "Interface":
        return []  # gateway endpoints (S3, DynamoDB) are free
    azs = len(i.get("subnetIds") or []) or 1
    return [ctx.item(res, "vpc_interface_endpoint_hour", HOURS * azs, note=f"{azs} AZ(s)")]


def _annotations(res: dict[str, Any]) -> dict[str, str]:
    return ((res["inputs"].get("metadata") or {}).get("annotations")) or {}


# Kubernetes objects the AWS Load Balancer Controller turns into load balancers, and the
# annotation saying whether it faces the internet (the controller's default is internal).
K8S_LOAD_BALANCERS = {"kubernetes:core/v1:Service": "service.beta.kubernetes.io/aws-load-balancer-scheme",
                      "kubernetes:networking.k8s.io/v1:Ingress": "alb.ingress.kubernetes.io/scheme"}


def _k8s_scheme(res: dict[str, Any]) -> str:
    return _annotations(res).get(K8S_LOAD_BALANCERS[res["type"]], "internal")


@rule("kubernetes:core/v1:Service")
def _k8s_service(res: dict[str, Any], ctx: Context) -> list[LineItem]:
    if (res["inputs"].get("spec") or {}).get("type") != "LoadBalancer":
        return []
    return _load_balancer(res, ctx, "nlb", _k8s_scheme(res) != "internet-facing", 2)


@rule("kubernetes:networking.k8s.io/v1:Ingress")
def _k8s_ingress(res: dict[str, Any], ctx: Context) -> list[LineItem]:
    notes = _annotations(res)
    cls = (res["inputs"].get("spec") or {}).get("ingressClassName") or notes.get("kubernetes.io/ingress.class")
    group = notes.get("alb.ingress.kubernetes.io/group.name")
    if cls != "alb" or (group and _first_in_group(res, ctx, group) != res["urn"]):
        return []  # not an ALB, or an ALB another Ingress of its group already pays for
    return _load_balancer(res, ctx, "alb", _k8s_scheme(res) != "internet-facing", 2)


def _first_in_group(res: dict[str, Any], ctx: Context, group: str) -> str:
    return min(r["urn"] for r in ctx.plan["resources"] if r["type"] == res["type"]
               and _annotations(r).get("alb.ingress.kubernetes.io/group.name") == group)


def _public_load_balancer(r: dict[str, Any]) -> bool:
    if r["type"] == "aws:lb/loadBalancer:LoadBalancer":
        return not r["inputs"].get("internal")
    if r["type"] == "kubernetes:core/v1:Service" and (r["inputs"].get("spec") or {}).get("type") != "LoadBalancer":
        return False
    return r["type"] in K8S_LOAD_BALANCERS and _k8s_scheme(r) == "internet-facing"


def internet_entries(plan: dict[str, Any]) -> list[str]:
    """Where user traffic leaves AWS for the internet: CloudFront if present, else the
    internet-facing load balancers, else instances with a public address."""
    res = plan["resources"]
    cdn = [r["urn"] for r in res if r["type"] == "aws:cloudfront/distribution:Distribution"]
    if cdn:
        return cdn
    lbs = [r["urn"] for r in res if _public_load_balancer(r)]
    if lbs:
        return lbs
    with_eip = {u for r in res if r["type"] == "aws:ec2/eip:Eip" for u in r["options"].get("dependsOn") or []}
    return [r["urn"] for r in res if r["type"] == "aws:ec2/instance:Instance"
            and (r["urn"] in with_eip or r["inputs"].get("associatePublicIpAddress"))]


# ---------------------------------------------------------------------------
# Reports


@dataclass
class CostReport:
    plan: dict[str, Any]
    items: list[LineItem]
    unpriced: list[str]
    usage: dict[str, Any]
    band: dict[str, float] = field(default_factory=dict)
    """Total under each usage band (usage/bands.yml) at the same load."""

    @property
    def phase(self) -> int:
        return int(self.plan["phase"])

    @property
    def total(self) -> float:
        return round(sum(i.monthly_usd for i in self.items), 2)

    def components(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for i in self.items:
            out[i.component] = round(out.get(i.component, 0) + i.monthly_usd, 2)
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))

    @property
    def users(self) -> float:
        """Peak concurrent users the report is priced at."""
        return float(self.usage["quantities"]["peak_concurrent_users"])

    @property
    def per_1000_users(self) -> float:
        return round(self.total / self.users * 1000, 2)

    @property
    def load(self) -> dict[str, float]:
        q = self.usage["quantities"]
        return {"peak_concurrent_users": q["peak_concurrent_users"], "messages_per_day": q["messages_per_day"]}

    def compute(self) -> float:
        """Instance-hours (EC2 hosts and EKS nodes): what the capacity model counts."""
        return round(sum(i.monthly_usd for i in self.items if i.sku.startswith("ec2_instance_hour")), 2)

    def to_json(self) -> dict[str, Any]:
        spec = PHASES[self.phase]
        return {"stack": self.plan.get("stack"), "phase": self.phase, "region": self.plan["region"],
                "currency": catalog().currency, "prices": catalog().meta(self.plan["region"]),
                "capacity": {"concurrent_users": spec.concurrent_users, "messages_per_day": spec.messages_per_day},
                "priced_load": self.load, "band_monthly_usd": self.band,
                "usage": self.usage, "items": [asdict(i) for i in self.items], "components": self.components(),
                "total_monthly_usd": self.total, "compute_monthly_usd": self.compute(),
                "usage_driven_monthly_usd": round(sum(i.monthly_usd for i in self.items if i.usage_driven), 2),
                "per_1000_users_usd": self.per_1000_users, "unpriced_types": self.unpriced}


def price_plan(plan: dict[str, Any], usage_file: Path | None = None, users: float | None = None,
               messages_per_day: float | None = None, band: str | None = None,
               with_band: bool = True) -> CostReport:
    """Price `plan` at a load: its phase's capacity target unless `users`/`messages_per_day` are
    given; `with_band` also prices it under each usage band (usage/bands.yml) at the same load."""
    phase = int(plan["phase"])
    assumptions, monthly, files = load_usage(phase, usage_file, band)
    q = derive(phase, assumptions, monthly, users, messages_per_day)
    ctx = Context(plan, catalog(), q, assumptions, {r["urn"]: r for r in plan["resources"]}, internet_entries(plan))
    items: list[LineItem] = []
    unpriced: set[str] = set()
    for res in sorted(plan["resources"], key=lambda r: r["urn"]):
        if res["type"] in RULES:
            items += RULES[res["type"]](res, ctx)
        elif not ctx.prices.is_free(res["type"]):
            unpriced.add(res["type"])
    totals: dict[str, float] = {}
    for i in items:
        totals[i.component] = totals.get(i.component, 0) + i.monthly_usd
    items.sort(key=lambda i: (-totals[i.component], i.component))  # stable: URN order within a component
    usage = {"files": files, "assumptions": assumptions, "overrides": monthly,
             "quantities": {k: round(v, 2) for k, v in q.items()}}
    report = CostReport(plan, items, sorted(unpriced), usage)
    if with_band:
        report.band = {name: price_plan(plan, usage_file, q["peak_concurrent_users"], q["messages_per_day"], name,
                                        with_band=False).total for name in bands()}
    return report


def _lines(report: CostReport) -> dict[tuple[str, str, str], float]:
    out: dict[tuple[str, str, str], float] = {}
    for i in report.items:
        k = (i.component, i.name, i.sku)
        out[k] = round(out.get(k, 0.0) + i.monthly_usd, 2)
    return out


def delta(a: CostReport, b: CostReport) -> dict[str, Any]:
    """Per component and per line item (component, resource, sku); both reports should be
    priced at the same load (`equal_load_delta`) for the delta to mean what a climb costs."""
    ca, cb = a.components(), b.components()
    rows = {c: {"a": ca.get(c, 0.0), "b": cb.get(c, 0.0), "delta": round(cb.get(c, 0.0) - ca.get(c, 0.0), 2)}
            for c in sorted(set(ca) | set(cb))}
    la, lb = _lines(a), _lines(b)
    lines = [{"component": k[0], "resource": k[1], "sku": k[2], "a": la.get(k, 0.0), "b": lb.get(k, 0.0),
              "delta": round(lb.get(k, 0.0) - la.get(k, 0.0), 2)} for k in sorted(set(la) | set(lb))]
    side = {"a": a, "b": b}
    return {**{n: {"source": r.plan.get("source"), "phase": r.phase, "total_monthly_usd": r.total,
                   "compute_monthly_usd": r.compute(), "per_1000_users_usd": r.per_1000_users,
                   "priced_load": r.load, "band_monthly_usd": r.band} for n, r in side.items()},
            "load": a.load if a.load == b.load else None,
            "components": dict(sorted(rows.items(), key=lambda kv: -abs(kv[1]["delta"]))),
            "lines": sorted((ln for ln in lines if ln["delta"]), key=lambda ln: -abs(ln["delta"])),
            "band_delta_usd": {n: round(b.band[n] - a.band[n], 2) for n in a.band if n in b.band},
            "total_delta_usd": round(b.total - a.total, 2)}


def equal_load(a: dict[str, Any], b: dict[str, Any], users: float | None = None) -> tuple[float, float]:
    """(peak users, messages/day) both plans of a diff are priced at: the higher phase's
    capacity target, or `users` with that phase's messages per user."""
    top = PHASES[max(int(a["phase"]), int(b["phase"]))]
    if users is None:
        return float(top.concurrent_users), float(top.messages_per_day)
    return float(users), users * top.messages_per_day / top.concurrent_users


def usd(value: float, signed: bool = False) -> str:
    return f"{value:+,.2f}" if signed else f"{value:,.2f}"


def _qty(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.3g}"


def load_text(load: dict[str, float]) -> str:
    return (f"priced at {load['peak_concurrent_users']:,.0f} peak concurrent users, "
            f"{load['messages_per_day']:,.0f} messages/day")


def band_text(band: dict[str, float], signed: bool = False) -> str:
    return " / ".join(f"{name} {'' if signed else '$'}{usd(v, signed)}" for name, v in band.items())


def headline(report: CostReport) -> str:
    spec = PHASES[report.phase]
    band = f"; usage band {band_text(report.band)}" if report.band else ""
    return (f"${usd(report.total)}/month; ${usd(report.per_1000_users)} per 1,000 concurrent users "
            f"({load_text(report.load)}; phase {report.phase} target {spec.concurrent_users:,} users, "
            f"{spec.messages_per_day:,} messages/day{band})")


def cost_markdown(report: CostReport, heading: str = "###") -> str:
    meta = catalog().meta(report.plan["region"])
    lines = [f"{heading} Monthly cost: `{report.plan.get('source') or report.plan.get('stack')}` "
             f"(phase {report.phase}, {report.plan['region']})", "", f"**{headline(report)}**", "",
             "| component | USD/month |", "|---|---:|"]
    lines += [f"| {c} | {usd(v)} |" for c, v in report.components().items()]
    lines += [f"| **total** | **{usd(report.total)}** |", "", "<details><summary>Line items</summary>", "",
              "| component | resource | sku | quantity | unit | USD/unit | USD/month | |",
              "|---|---|---|---:|---|---:|---:|---|"]
    for i in report.items:
        lines.append(f"| {i.component} | {i.name} | `{i.sku}` | {_qty(i.quantity)} | {i.unit} | {i.unit_price_usd:g} "
                     f"| {usd(i.monthly_usd)} | {'usage' if i.usage_driven else ''} {i.note} |")
    lines += ["", "</details>", "", f"_On-demand list prices in {catalog().currency} as of {meta['retrieved']} "
              f"(ladder/catalog/prices.yaml); {load_text(report.load)}; \"usage\" rows and app/worker/node counts derive from that load and "
              f"{', '.join(report.usage['files'])}._"]
    if report.unpriced:
        lines += ["", f"> [!WARNING]\n> Unpriced resource types: {', '.join(report.unpriced)}"]
    return "\n".join(lines)


def _delta_load(d: dict[str, Any]) -> str:
    if d.get("load"):
        return f"both {load_text(d['load'])}"
    return f"before {load_text(d['a']['priced_load'])}; after {load_text(d['b']['priced_load'])}"


def delta_markdown(d: dict[str, Any], heading: str = "###") -> str:
    a, b = d["a"], d["b"]
    lines = [f"{heading} Cost delta: `{a['source']}` -> `{b['source']}`", "",
             f"**{usd(d['total_delta_usd'], signed=True)} USD/month** "
             f"({usd(a['total_monthly_usd'])} -> {usd(b['total_monthly_usd'])}; per 1,000 users "
             f"{usd(a['per_1000_users_usd'])} -> {usd(b['per_1000_users_usd'])}; {_delta_load(d)})", ""]
    if d.get("band_delta_usd"):
        lines += [f"Usage band (usage/bands.yml), delta: {band_text(d['band_delta_usd'], signed=True)}", ""]
    lines += ["| component | before | after | delta |", "|---|---:|---:|---:|"]
    lines += [f"| {c} | {usd(r['a'])} | {usd(r['b'])} | {usd(r['delta'], signed=True)} |"
              for c, r in d["components"].items()]
    return "\n".join(lines)


def print_report(report: CostReport, console: Console) -> None:
    table = Table(title=f"{report.plan.get('source') or report.plan.get('stack')}: phase {report.phase}, "
                        f"{report.plan['region']}", title_justify="left")
    for col, right in (("component", False), ("resource", False), ("sku", False), ("quantity", True), ("unit", False),
                       ("USD/unit", True), ("USD/month", True), ("", False)):
        table.add_column(col, justify="right" if right else "left", overflow="fold")
    for i in report.items:
        table.add_row(escape(i.component), escape(i.name), escape(i.sku), _qty(i.quantity), i.unit,
                      f"{i.unit_price_usd:g}", usd(i.monthly_usd),
                      ("[cyan]usage[/] " if i.usage_driven else "") + escape(i.note))
    console.print(table)
    totals = Table(title="Per component", title_justify="left")
    totals.add_column("component")
    totals.add_column("USD/month", justify="right")
    for c, v in report.components().items():
        totals.add_row(escape(c), usd(v))
    totals.add_row("[bold]total[/]", f"[bold]{usd(report.total)}[/]")
    console.print(totals)
    console.print(f"[bold]{escape(headline(report))}[/]")
    meta = catalog().meta(report.plan["region"])
    console.print(f"[dim]On-demand list prices, {meta['retrieved']}. Rows marked usage derive from "
                  f"{', '.join(report.usage['files'])}.[/]")
    if report.unpriced:
        console.print(f"[yellow]Unpriced resource types:[/] {', '.join(report.unpriced)}")


def print_delta(d: dict[str, Any], console: Console) -> None:
    table = Table(title=f"Cost delta {d['a']['source']} -> {d['b']['source']}", title_justify="left")
    for col in ("component", "before", "after", "delta"):
        table.add_column(col, justify="left" if col == "component" else "right")
    for c, r in d["components"].items():
        table.add_row(escape(c), usd(r["a"]), usd(r["b"]), usd(r["delta"], signed=True))
    table.add_row("[bold]total[/]", usd(d["a"]["total_monthly_usd"]), usd(d["b"]["total_monthly_usd"]),
                  f"[bold]{usd(d['total_delta_usd'], signed=True)}[/]")
    console.print(table)
    console.print(f"per 1,000 users: {usd(d['a']['per_1000_users_usd'])} -> {usd(d['b']['per_1000_users_usd'])}; "
                  f"compute {usd(d['a']['compute_monthly_usd'])} -> {usd(d['b']['compute_monthly_usd'])}")
    console.print(escape(_delta_load(d)))
    if d.get("band_delta_usd"):
        console.print(f"usage band (usage/bands.yml): before {band_text(d['a']['band_monthly_usd'])}; after "
                      f"{band_text(d['b']['band_monthly_usd'])}; delta {band_text(d['band_delta_usd'], signed=True)}")


# ---------------------------------------------------------------------------
# CLI


def cost_of(spec: str, usage_file: Path | None = None, users: float | None = None,
            messages_per_day: float | None = None) -> CostReport:
    plan = load(spec)
    plan["source"] = spec
    return price_plan(plan, usage_file, users, messages_per_day)


def equal_load_delta(spec_a: str, spec_b: str, usage_file: Path | None = None, users: float | None = None) -> dict[str, Any]:
    """`cost --diff A B`: both plans priced at the same load (`equal_load`)."""
    plans = []
    for spec in (spec_a, spec_b):
        plan = load(spec)
        plan["source"] = spec
        plans.append(plan)
    peak, messages = equal_load(plans[0], plans[1], users)
    return delta(*(price_plan(p, usage_file, peak, messages) for p in plans))


def cmd_cost(args: argparse.Namespace) -> int:
    console = Console(highlight=False, emoji=False, width=None if sys.stdout.isatty() else 160)
    if args.users is not None and args.users < 1:
        print("error: --users must be a positive number of peak concurrent users", file=sys.stderr)
        return 2
    try:
        if args.diff:
            d = equal_load_delta(args.diff[0], args.diff[1], args.usage, args.users)
            print(json.dumps(d, indent=2) if args.json else delta_markdown(d)) if args.json or args.markdown \
                else print_delta(d, console)
            return 0
        if not args.stack:
            print("error: cost needs STACK or --diff A B", file=sys.stderr)
            return 2
        report = cost_of(args.stack, args.usage, args.users,
                         None if args.users is None else args.users * _messages_per_user(args.stack))
    except (PlanUnavailable, ValueError, KeyError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    elif args.markdown:
        print(cost_markdown(report))
    else:
        print_report(report, console)
    return 1 if report.unpriced else 0


def _cost_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("stack", nargs="?", help="STACK, STACK@GITREV or a `plan --json` file")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="line items, totals per component, cost per 1,000 users")
    fmt.add_argument("--markdown", action="store_true", help="PR-comment markdown")
    p.add_argument("--usage", type=Path, help="usage file replacing usage/phaseN.yml (overrides usage/defaults.yml)")
    p.add_argument("--diff", nargs=2, metavar=("A", "B"),
                   help="monthly delta per component and line item, both plans priced at the same load "
                        "(the higher phase's capacity target unless --users)")
    p.add_argument("--users", type=int, metavar="N",
                   help="price at N peak concurrent users (messages/day scale with the phase's messages per user)")


def _messages_per_user(spec: str) -> float:
    plan = load(spec)
    target = PHASES[int(plan["phase"])]
    return target.messages_per_day / target.concurrent_users


COMMANDS["cost"] = ("monthly cost per resource, component and total; --diff A B for the delta", _cost_args, cmd_cost)
