"""`python -m ladder cost STACK`: monthly USD per resource, per component and in total.

Prices come from the catalog (`ladder/catalog/prices.yaml`); every resource type a plan
holds is either priced by a rule below or listed as free there. Traffic-driven figures
(egress, requests, LCUs, NAT GB, S3 requests, log ingestion) come from usage/defaults.yml
and usage/phaseN.yml, derived from the phase's capacity target, and are marked
`usage_driven`. Counting rules: app and worker Auto Scaling groups, and EKS nodes, run what the
capacity model (ladder/capacity.py) needs at the priced load's monthly average, within the
group's min/max (other groups: their desired capacity); each RDS read replica is an instance of its own
with the source's storage; Multi-AZ RDS bills instance and storage twice; ElastiCache bills
shards x (1 + replicas) nodes, or num_cache_clusters. A month is 730 hours. Tiered tables (internet
egress, CloudFront) are priced once on the stack's monthly total less the free allowance, after the
account's other stacks' usage (`ACCOUNT_OTHER`), and apportioned by share (`Pool`); inter-AZ transfer comes from the plan's placement (`inter_az_items`).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from . import aws_facts, capacity, engine, redis_settings, userdata
from . import metrics as metrics_contract
from .cli import COMMANDS
from .diff import PlanUnavailable, load
from .phases import PHASES
from .prices import PriceCatalog, catalog, tiered_cost
from .topology import PGBOUNCER

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
    q["cache_gb"] = q["api_requests"] * a["kb_cache_per_request"] / 1e6
    # NAT: the outbound bytes leave AWS (internet egress); image pulls and updates come in (free in)
    q["nat_egress_gb"] = (q["api_requests"] * a["kb_nat_per_request"] + q["messages"] * a["kb_nat_per_message"]) / 1e6
    q["nat_gb"] = a["nat_gb_base"] + q["nat_egress_gb"]
    q["s3_storage_gb"] = a["static_assets_gb"]
    q["s3_get_requests"] = q["static_requests"] * (1 - a["cdn_cache_hit_ratio"])
    q["s3_put_requests"] = a["s3_put_requests"]
    q["cdn_log_gb"] = (q["api_requests"] + q["static_requests"]) * a["kb_cdn_log_per_request"] / 1e6
    q["cdn_log_put_requests"] = a["cdn_log_put_requests"]
    q["log_gb_per_source"] = a["log_gb_per_source"]
    q["secret_api_calls"] = a["secret_api_calls"]
    share = a.get("free_allowance_share", 1.0)
    if not isinstance(share, (int, float)) or isinstance(share, bool) or not 0 <= share <= 1:
        raise ValueError(f"usage assumption free_allowance_share: {share!r}; allowed: a number from 0 (the AWS "
                         "Organization uses the free tier elsewhere) to 1 (this stack has the account's own)")
    unknown = set(monthly) - set(q)
    if unknown:
        raise ValueError(f"usage monthly: unknown quantities {sorted(unknown)}; allowed: {', '.join(q)}")
    return {**q, **{k: float(v) for k, v in monthly.items()}}


# ---------------------------------------------------------------------------
# Line items


DISTRIBUTION = "aws:cloudfront/distribution:Distribution"


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
    pools: dict[str, Pool] = field(default_factory=dict)  # tiered tables priced on the stack's total

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
        return any(r["type"] == DISTRIBUTION for r in self.plan["resources"])

    @property
    def api_via_cdn(self) -> bool:
        """The distribution carries the API: it has an app (custom) origin (`cdn.apiPath: cloudfront`).
        Else it serves /static only and the API enters at the load balancer (`loadBalancer`)."""
        return any((o or {}).get("customOriginConfig") for r in self.plan["resources"] if r["type"] == DISTRIBUTION
                   for o in r["inputs"].get("origins") or [])

    def cdn_quantity(self, what: str) -> float:
        """Monthly `gb` or `requests` through CloudFront: /static always, the API only when it rides it."""
        static, api = {"gb": ("static_gb", "api_gb"), "requests": ("static_requests", "api_requests")}[what]
        return self.q[static] + (self.q[api] if self.api_via_cdn else 0.0)

    def direct_entries(self) -> list[str]:
        """The entries other than CloudFront: they carry what CloudFront does not (all of it without one)."""
        return [u for u in self.entries if self.by_urn.get(u, {}).get("type") != DISTRIBUTION]

    def egress(self, res: dict[str, Any]) -> list[LineItem]:
        """`res`'s internet egress (entries and NAT gateways), its share of the stack's tiered pool."""
        return self.pooled(res, EGRESS)

    def pool(self, table: str) -> Pool:
        if table not in self.pools:
            self.pools[table] = build_pool(self, table)
        return self.pools[table]

    def pooled(self, res: dict[str, Any], table: str) -> list[LineItem]:
        """`res`'s line of a pooled table: its quantity, and the pool's cost apportioned by its share."""
        pool = self.pool(table)
        quantity = pool.shares.get(res["urn"], 0.0)
        if quantity <= 0:
            return []
        usd = pool.part(res["urn"])
        return [LineItem(res["urn"], res["type"], res["name"], component_of(res, self.by_urn), table,
                         round(quantity, 4), self.prices.unit(table), round(usd / quantity, 6), round(usd, 2), True,
                         f"{pool.notes[res['urn']]}; {pool.describe(self.prices.unit(table))}")]


# ---------------------------------------------------------------------------
# Data transfer (issue 17 item 1): AWS tiers the ACCOUNT's monthly total, so each tiered table is
# one pool over the stack's resources (sources: ladder/catalog/prices.yaml comments).

EGRESS = "data_transfer_out_gb"
CDN_GB = "cloudfront_gb_out"
CDN_REQUESTS = "cloudfront_https_requests_10k"
NAT_GATEWAY = "aws:ec2/natGateway:NatGateway"


@dataclass(frozen=True)
class Pool:
    """A table's monthly quantity summed over its contributors, priced once through the tiers less
    the stack's share of the always-free allowance, and apportioned by each contributor's share."""
    table: str
    shares: dict[str, float]  # URN -> monthly quantity
    notes: dict[str, str]
    usd: float
    free: float  # allowance units applied (off the first units)
    other: float = 0.0  # the account's other stacks' units ahead of this stack's on the ladder (ACCOUNT_OTHER)

    @property
    def total(self) -> float:
        return sum(self.shares.values())

    def part(self, urn: str) -> float:
        return self.usd * self.shares.get(urn, 0.0) / self.total if self.total > 0 else 0.0

    def describe(self, unit: str) -> str:
        whose = (f"tiered on the stack's {self.total:,.0f} {unit} over {len(self.shares)} resources, cost apportioned "
                 "by share") if len(self.shares) > 1 else "tiered on the stack's total"
        free = f", first {self.free:,.0f} {unit} free" if self.free > 0 else ", no free allowance"
        other = f", after the account's other {self.other:,.0f} {unit} ({ACCOUNT_OTHER[self.table]})" if self.other else ""
        return whose + free + other


def _free_units(ctx: Context, table: str) -> float:
    """The stack's part of `table`'s always-free monthly allowance: `free_allowance_share` of it."""
    return ctx.prices.free_per_month(table) * float(ctx.a.get("free_allowance_share", 1.0))


def pool_contributors(ctx: Context, table: str) -> dict[str, tuple[float, str]]:
    """URN -> (monthly quantity, note) of every resource a pooled table charges."""
    q = ctx.q
    if table == EGRESS:
        direct = ctx.direct_entries()
        # Beside a distribution (cdn.apiPath loadBalancer) the load balancers send the API's bytes only.
        gb = q["api_gb"] if ctx.has_cdn else q["egress_gb"]
        what = "API egress (CloudFront serves /static)" if ctx.has_cdn else "internet egress"
        part = "" if len(direct) == 1 else f", 1/{len(direct)} of the stack's"
        out = {u: (gb / len(direct), f"{what}{part}") for u in direct}
        nats = sorted(r["urn"] for r in ctx.plan["resources"] if r["type"] == NAT_GATEWAY)
        share = "" if len(nats) == 1 else f", 1/{len(nats)} of it"
        out.update({u: (q["nat_egress_gb"] / len(nats), f"NAT egress to the internet (outbound API calls, webhooks)"
                        f"{share}") for u in nats})
        return out
    dists = sorted(r["urn"] for r in ctx.plan["resources"] if r["type"] == DISTRIBUTION)
    what = "API + static" if ctx.api_via_cdn else "static (the API goes to the load balancer)"
    part = "" if len(dists) == 1 else f", 1/{len(dists)} of the stack's"
    if table == CDN_GB:
        return {u: (ctx.cdn_quantity("gb") / len(dists), f"{what} viewer traffic{part}") for u in dists}
    if table == CDN_REQUESTS:
        return {u: (ctx.cdn_quantity("requests") / 1e4 / len(dists), f"{what} requests{part}") for u in dists}
    raise KeyError(f"{table} is not a pooled table; pooled: {EGRESS}, {CDN_GB}, {CDN_REQUESTS}")


# The volume tiers count the whole consolidated-billing family's usage, not one stack's: "AWS
# combines the usage from all accounts to determine which volume pricing tiers to apply" (AWS
# Billing User Guide, "Understanding consolidated bills", Volume discounts). Each pooled table's
# usage assumption says how many units the account's OTHER stacks (staging, the old stack during a
# climb's cutover) already put on the ladder this month; this stack's units start after them. The
# free allowance stays `free_allowance_share`'s: set it to 0 when those stacks use it.
# CloudFront requests have one flat price (no tiers), so other stacks' requests move nothing.
ACCOUNT_OTHER = {EGRESS: "account_other_egress_gb", CDN_GB: "account_other_cloudfront_gb"}


def _account_other(ctx: Context, table: str) -> float:
    key = ACCOUNT_OTHER.get(table)
    if key is None:
        return 0.0
    value = ctx.a.get(key, 0.0)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
        raise ValueError(f"usage assumption {key}: {value!r}; allowed: a number >= 0 (units the account's other "
                         "stacks use this month; 0 = this stack alone)")
    return float(value)


def build_pool(ctx: Context, table: str) -> Pool:
    """The table's tiers priced on positions [other + free, other + total): the account's other stacks'
    units first, then this stack's, its free allowance off its own first units."""
    contributors = pool_contributors(ctx, table)
    total = sum(quantity for quantity, _ in contributors.values())
    free = min(_free_units(ctx, table), total)
    other = _account_other(ctx, table)
    usd = tiered_cost(other + total, ctx.prices.tiers(ctx.region, table), other + free)
    return Pool(table, {u: quantity for u, (quantity, _) in contributors.items()},
                {u: note for u, (_, note) in contributors.items()}, usd, free, other)


# -- Inter-AZ transfer, from the topology ----------------------------------------------------
# AWS charges $0.01/GB out of one AZ and $0.01/GB into the other (prices.yaml `inter_az_gb`); ALB
# -> targets is free ("Exploring Data Transfer Costs for Classic and Application Load Balancers",
# AWS Networking & Content Delivery blog: no charge between an ALB and its targets across AZs); an
# NLB with cross-zone on pays it ("When enabling cross-zone load balancing for a Network Load
# Balancer, EC2 data transfer charges apply", ELB docs "Cross-zone load balancing for target
# groups"); RDS Multi-AZ standby replication and in-Region read-replica replication are free (RDS
# pricing "Data Transfer"; AWS Architecture blog "Exploring Data Transfer Costs for AWS Managed
# Databases"). ElastiCache replication between nodes is not priced (not confirmed on an AWS page).

SUBNET = "aws:ec2/subnet:Subnet"
ASG = "aws:autoscaling/group:Group"
RDS = "aws:rds/instance:Instance"
REDIS = "aws:elasticache/replicationGroup:ReplicationGroup"
K8S_SERVICE = "kubernetes:core/v1:Service"
LISTENER = "aws:lb/listener:Listener"
TARGET_GROUP = "aws:lb/targetGroup:TargetGroup"


def cross_az_share(senders: frozenset[str], receivers: frozenset[str]) -> float:
    """Share of flows that cross an AZ when senders spread evenly over `senders` and each flow goes
    to a receiver spread evenly over (or placed by AWS in one of) `receivers`: 1 - P(same AZ)."""
    if not senders or not receivers:
        return 0.0
    return 1 - len(senders & receivers) / (len(senders) * len(receivers))


def _azs(ctx: Context, subnet_ids: Any) -> frozenset[str]:
    by_id = {r.get("id"): r["inputs"].get("availabilityZone") for r in ctx.plan["resources"] if r["type"] == SUBNET}
    return frozenset(str(by_id[i]) for i in subnet_ids or [] if by_id.get(i))


def _group_azs(ctx: Context, suffix: str) -> frozenset[str] | None:
    """AZs of the Auto Scaling group whose name ends with `suffix` (its vpcZoneIdentifiers)."""
    for r in ctx.plan["resources"]:
        if r["type"] == ASG and str(r["inputs"].get("name") or r["name"]).endswith(suffix):
            return _azs(ctx, r["inputs"].get("vpcZoneIdentifiers"))
    return None


def _app_azs(ctx: Context) -> tuple[frozenset[str], str]:
    """Where the app runs: its Auto Scaling group, else the EKS nodes (app pods), else its VM."""
    azs = _group_azs(ctx, "-app")
    if azs is not None:
        return azs, "app hosts"
    nodes = frozenset().union(*[_azs(ctx, r["inputs"].get("subnetIds")) for r in ctx.plan["resources"]
                                if r["type"] == "aws:eks/nodeGroup:NodeGroup"])
    if nodes:
        return nodes, "app pods on EKS nodes"
    vms = frozenset().union(*[_azs(ctx, [r["inputs"].get("subnetId")]) for r in ctx.plan["resources"]
                              if r["type"] == "aws:ec2/instance:Instance"])
    return vms, "app host"


def _subnet_group_azs(ctx: Context, type_: str, name: Any) -> frozenset[str]:
    """AZs of the subnet group `name` (a physical name: the resource's name plus a suffix)."""
    groups = [r for r in ctx.plan["resources"] if r["type"] == type_]
    match = [r for r in groups if name and (r["inputs"].get("name") == name or str(name).startswith(r["name"] + "-"))]
    chosen = match or (groups if len(groups) == 1 else [])
    return frozenset().union(*[_azs(ctx, r["inputs"].get("subnetIds")) for r in chosen])


def _writer_azs(ctx: Context, db: dict[str, Any]) -> frozenset[str]:
    az = db["inputs"].get("availabilityZone")
    return frozenset([str(az)]) if az else _subnet_group_azs(ctx, "aws:rds/subnetGroup:SubnetGroup",
                                                           db["inputs"].get("dbSubnetGroupName"))


def _cache_azs(ctx: Context, cache: dict[str, Any]) -> frozenset[str]:
    preferred = cache["inputs"].get("preferredCacheClusterAzs") or []
    return frozenset([str(preferred[0])]) if preferred else _subnet_group_azs(
        ctx, "aws:elasticache/subnetGroup:SubnetGroup", cache["inputs"].get("subnetGroupName"))


def _az_text(azs: frozenset[str]) -> str:
    return f"{len(azs)} AZ{'s' if len(azs) != 1 else ''}"


def _inter_az(ctx: Context, res: dict[str, Any], gb: float, hops: list[tuple[float, str]], what: str) -> list[LineItem]:
    """One line: `gb` a month over `hops` (share crossing, why), billed out of one AZ and into the other."""
    share = sum(s for s, _ in hops)
    if gb <= 0 or share <= 0:
        return []
    why = "; ".join(f"{text}: {s:.0%} cross" for s, text in hops)
    return [ctx.item(res, "inter_az_gb", 2 * gb * share, usage=True,
                     note=f"{what} {gb:,.0f} GB; {why}; billed out and in (x2)")]


def fronts_pgbouncer(ctx: Context, lb: dict[str, Any]) -> bool:
    """`lb` is the PgBouncer load balancer: a listener on it takes PgBouncer's port (topology.PGBOUNCER,
    6432) or forwards to a target group on it; a Kubernetes LoadBalancer Service exposes that port.
    By what it fronts, not by being internal: another internal LB (an admin API, an internal Ingress)
    carries none of the app <-> DB bytes."""
    if lb["type"] == K8S_SERVICE:
        return any(_num((p or {}).get("port"), 0) == PGBOUNCER
                   for p in (lb["inputs"].get("spec") or {}).get("ports") or [])
    for r in ctx.plan["resources"]:
        if r["type"] != LISTENER or not _depends(r, lb):
            continue
        groups = [ctx.by_urn[u] for u in (r.get("options") or {}).get("dependsOn") or []
                  if ctx.by_urn.get(u, {}).get("type") == TARGET_GROUP]
        if _num(r["inputs"].get("port"), 0) == PGBOUNCER or any(_num(g["inputs"].get("port"), 0) == PGBOUNCER
                                                                 for g in groups):
            return True
    return False


def _nlb_in_front_of(ctx: Context) -> dict[str, Any] | None:
    """The NLB in front of PgBouncer (`fronts_pgbouncer`), if any."""
    return next((r for r in ctx.plan["resources"] if r["type"] == "aws:lb/loadBalancer:LoadBalancer"
                 and r["inputs"].get("loadBalancerType") == "network" and fronts_pgbouncer(ctx, r)), None)


def inter_az_items(ctx: Context) -> list[LineItem]:
    """Inter-AZ transfer on the app's data paths: app -> (PgBouncer ->) DB writer, app <-> Redis."""
    app, who = _app_azs(ctx)
    out: list[LineItem] = []
    db = next((r for r in ctx.plan["resources"] if r["type"] == RDS and not r["inputs"].get("replicateSourceDb")), None)
    pgbouncer = _group_azs(ctx, "pgbouncer")
    service = _k8s(ctx, K8S_SERVICE, "pgbouncer")
    gb = ctx.q["db_gb"]
    if pgbouncer is not None and (nlb := _nlb_in_front_of(ctx)) is not None:
        nodes = _azs(ctx, nlb["inputs"].get("subnets"))
        cross_zone = bool(nlb["inputs"].get("enableCrossZoneLoadBalancing"))
        hops = [(cross_az_share(app, nodes), f"{who} ({_az_text(app)}) -> NLB node of the DNS answer ({_az_text(nodes)})"),
                (cross_az_share(nodes, pgbouncer) if cross_zone else 0.0,
                 f"cross-zone {'on' if cross_zone else 'off'}: NLB node -> PgBouncer host ({_az_text(pgbouncer)})")]
        out += _inter_az(ctx, nlb, gb, hops, "app <-> PgBouncer")
    elif service is not None:
        pgbouncer = app  # PgBouncer pods run on the same nodes; a ClusterIP Service picks any pod
        out += _inter_az(ctx, service, gb, [(cross_az_share(app, pgbouncer), f"{who} -> PgBouncer pod (ClusterIP, "
                                                                                 f"{_az_text(pgbouncer)})")],
                         "app <-> PgBouncer")
    if db is not None:
        writer = _writer_azs(ctx, db)
        src, src_who = (app, who) if pgbouncer is None else (pgbouncer, "PgBouncer")
        out += _inter_az(ctx, db, gb, [(cross_az_share(src, writer),
                                        f"{src_who} ({_az_text(src)}) -> writer placed in one of {_az_text(writer)}")],
                         "DB traffic (Multi-AZ and read-replica replication: free)")
    cache = next((r for r in ctx.plan["resources"] if r["type"] == REDIS), None)
    if cache is not None:
        primary = _cache_azs(ctx, cache)
        out += _inter_az(ctx, cache, ctx.q["cache_gb"],
                         [(cross_az_share(app, primary), f"{who} ({_az_text(app)}) -> primary in one of {_az_text(primary)}")],
                         "app <-> Redis (replication between nodes: not priced)")
    return out + _nat_cross_az(ctx)


def _nat_cross_az(ctx: Context) -> list[LineItem]:
    """Private hosts in an AZ without a NAT gateway route to one in another AZ: "routing traffic
    from one AZ to a NAT Gateway in a different AZ incurs additional inter-AZ data transfer
    charges" (AWS Trusted Advisor notice on shared NAT gateways; VPC docs "NAT gateways": create
    one per AZ for an AZ-independent architecture). Each NAT-less AZ's hosts are an even share."""
    nats = sorted((r for r in ctx.plan["resources"] if r["type"] == NAT_GATEWAY), key=lambda r: r["urn"])
    hosts = frozenset().union(*[_azs(ctx, r["inputs"].get("vpcZoneIdentifiers") or r["inputs"].get("subnetIds"))
                                for r in ctx.plan["resources"] if r["type"] in (ASG, "aws:eks/nodeGroup:NodeGroup")])
    nat_azs = frozenset().union(*[_azs(ctx, [r["inputs"].get("subnetId")]) for r in nats])
    if not nats or not hosts or not nat_azs:
        return []
    share = len(hosts - nat_azs) / len(hosts)
    return _inter_az(ctx, nats[0], ctx.q["nat_gb"], [(share, f"private hosts in {_az_text(hosts)}, NAT gateway(s) in "
                                                            f"{_az_text(nat_azs)}")], "NAT traffic")


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
            + ctx.egress(res) + _host_credits(res, ctx, i, 1) + _metric_lines(res, ctx))


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
            + _ipv4(ctx, res, count if public else 0, "public IPv4 per instance") + ctx.egress(res)
            + _host_credits(res, ctx, li, count, lt) + _metric_lines(res, ctx))


@rule("aws:ec2/eip:Eip")
def _eip(res: dict[str, Any], ctx: Context) -> list[LineItem]:
    return _ipv4(ctx, res, 1, "Elastic IP")


@rule("aws:ec2/natGateway:NatGateway")
def _nat(res: dict[str, Any], ctx: Context) -> list[LineItem]:
    nats = sum(r["type"] == res["type"] for r in ctx.plan["resources"])
    share = "NAT traffic" if nats == 1 else f"1/{nats} of NAT traffic"
    return [ctx.item(res, "nat_gateway_hour", HOURS, note="public IPv4 priced on its Elastic IP"),
            ctx.item(res, "nat_gateway_gb", ctx.q["nat_gb"] / nats, usage=True, note=f"{share} processed (both ways)")
            ] + ctx.egress(res)  # what leaves also pays data transfer out (AWS NAT gateway pricing)


def _capacity_units(ctx: Context, fronts: str, kind: str, share: float) -> tuple[float, str]:
    """Average LCUs (ALB) / NLCUs (NLB): the largest dimension, from monthly averages. `fronts`:
    "pgbouncer" (app <-> DB bytes), "internal" (another internal LB: the stated usage assumption
    `internal_lb_gb`, default 0, since no modelled traffic crosses it) or "public" (user traffic)."""
    q, a = ctx.q, ctx.a
    if fronts == "pgbouncer":
        gb, requests, active = q["db_gb"], 0.0, 0.0
    elif fronts == "internal":
        gb = float(a["internal_lb_gb"])
        units = gb / HOURS
        return units, (f"average {units:.2f} units/h: an internal LB not in front of PgBouncer, "
                       f"{gb:,.0f} GB/month processed (usage assumption internal_lb_gb; no modelled traffic)")
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
    direct = ctx.direct_entries()
    share = 1 / max(1, len(direct)) if res["urn"] in direct else 0.0
    fronts = ("pgbouncer" if fronts_pgbouncer(ctx, res) else "internal") if internal else "public"
    units, note = _capacity_units(ctx, fronts, kind, share or 1.0)
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
    return out + _log_lines(res, ctx) + _rds_credits(res, ctx)  # exports into groups it does not create


@rule("aws:elasticache/replicationGroup:ReplicationGroup")
def _redis(res: dict[str, Any], ctx: Context) -> list[LineItem]:
    i = res["inputs"]
    if i.get("numNodeGroups") is not None or i.get("clusterMode") == "enabled":
        shards, replicas = _num(i.get("numNodeGroups"), 1), _num(i.get("replicasPerNodeGroup"), 0)
        nodes, note = shards * (1 + replicas), f"{shards:g} shard(s) x (1 + {replicas:g} replica(s))"
    else:
        nodes = _num(i.get("numCacheClusters"), 1)
        note = f"{nodes:g} node(s) (num_cache_clusters)"
    return [ctx.item(res, redis_settings.node_price_table(str(i.get("engine") or "redis")), HOURS * nodes,
                     key=i.get("nodeType"), note=note)] + _backup_storage(res, ctx)


@rule("aws:elasticache/cluster:Cluster")
def _cache_cluster(res: dict[str, Any], ctx: Context) -> list[LineItem]:
    i = res["inputs"]
    if i.get("replicationGroupId"):
        return []  # a member of a replication group, priced there
    nodes = _num(i.get("numCacheNodes"), 1)
    return [ctx.item(res, redis_settings.node_price_table(str(i.get("engine") or "redis")), HOURS * nodes,
                     key=i.get("nodeType"), note=f"{nodes:g} node(s)")] + _backup_storage(res, ctx)


@rule("aws:eks/cluster:Cluster")
def _eks(res: dict[str, Any], ctx: Context) -> list[LineItem]:
    table, note = _eks_hour_table(res, ctx)
    # logs: here unless the program creates the cluster's log group (priced there)
    return [ctx.item(res, table, HOURS, note=note)] + _log_lines(res, ctx)


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
    counts, cpus = _pod_counts(ctx)
    app, workers, pgbouncers = counts["app"], counts["workers"], counts["pgbouncer"]
    pods = capacity.cluster_pods(app, workers, pgbouncers, cpus["app"], cpus["workers"], cpus["pgbouncer"])
    return pods, (f"{_average_rates(ctx)[0]:,.0f} req/s average: {app} app pods, {workers} workers, {pgbouncers} "
                  f"PgBouncer + {len(capacity.system_pod_cpus())} cluster-service pods")


def _pod_counts(ctx: Context) -> tuple[dict[str, int], dict[str, float]]:
    """(pods, CPU request per pod) of the app, workers and PgBouncer Deployments at the priced load."""
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
    return ({"app": app, "workers": workers, "pgbouncer": pgbouncers},
            {"app": app_cpu, "workers": worker_cpu, "pgbouncer": pgb_cpu})


@rule("aws:eks/nodeGroup:NodeGroup")
def _node_group(res: dict[str, Any], ctx: Context) -> list[LineItem]:
    types = res["inputs"].get("instanceTypes") or []
    lt = ctx.dependency(res, "aws:ec2/launchTemplate:LaunchTemplate")
    itype = types[0] if types else (lt or {}).get("inputs", {}).get("instanceType")
    nodes, note = _node_count_note(res, ctx, itype)
    disk, where = _node_disk(res, ctx)
    return ([ctx.item(res, "ec2_instance_hour", HOURS * nodes, key=itype, note=note),
             ctx.item(res, "ebs_gp3_gb_month", disk * nodes, note=f"{disk:g} GB {where}")]
            + _node_credits(res, ctx, str(itype), nodes) + _metric_lines(res, ctx))


def _node_count_note(res: dict[str, Any], ctx: Context, itype: Any) -> tuple[int, str]:
    """Nodes the capacity model needs for the pods at the priced load, within the group's bounds."""
    scaling = res["inputs"].get("scalingConfig") or {}
    low = int(_num(scaling.get("minSize"), _num(scaling.get("desiredSize"), 1)))
    high = int(_num(scaling.get("maxSize"), low))
    pods, why = _cluster_pods(ctx)
    need = capacity.nodes_for(pods, str(itype))
    return capacity.clamp(need, low, high), f"{why} need {need} nodes (capacity model); {_bounds(need, low, high)}"


def _node_count(res: dict[str, Any], ctx: Context, itype: Any) -> int:
    return _node_count_note(res, ctx, itype)[0]


@rule("aws:cloudwatch/metricAlarm:MetricAlarm")
def _alarm(res: dict[str, Any], ctx: Context) -> list[LineItem]:
    i = res["inputs"]
    queries = i.get("metricQueries") or []
    metrics = sum(1 for m in queries if m.get("metric")) or 1
    periods = [_num(i.get("period"), 60)] + [_num((m.get("metric") or {}).get("period"), 60) for m in queries]
    table = "cloudwatch_alarm_high_res_metric_month" if min(periods) < 60 else "cloudwatch_alarm_metric_month"
    note = f"metric math over {metrics} metrics" if queries else (
        f"percentile {i['extendedStatistic']}" if i.get("extendedStatistic") else "")
    if table == "cloudwatch_alarm_high_res_metric_month":  # the free 10 are standard-resolution only
        return [ctx.item(res, table, metrics, note=note)]
    lines = {r["urn"]: float(_alarm_metrics(r)[0]) for r in ctx.plan["resources"] if r["type"] == res["type"]
             and _alarm_metrics(r)[1] == table}
    return _less_free(ctx, res, table, lines, note)


def _alarm_metrics(res: dict[str, Any]) -> tuple[int, str]:
    """(metrics an alarm evaluates, its price table)."""
    i = res["inputs"]
    queries = i.get("metricQueries") or []
    periods = [_num(i.get("period"), 60)] + [_num((m.get("metric") or {}).get("period"), 60) for m in queries]
    table = "cloudwatch_alarm_high_res_metric_month" if min(periods) < 60 else "cloudwatch_alarm_metric_month"
    return sum(1 for m in queries if m.get("metric")) or 1, table


LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"


@rule(LOG_GROUP)
def _log_group(res: dict[str, Any], ctx: Context) -> list[LineItem]:
    """One log source, or the EKS log types of a cluster that writes to this group: ingestion and
    storage for its retention (`_log_lines`)."""
    return _log_lines(res, ctx)


@rule("aws:secretsmanager/secret:Secret")
def _secret(res: dict[str, Any], ctx: Context) -> list[LineItem]:
    return [ctx.item(res, "secretsmanager_secret_month", 1),
            ctx.item(res, "secretsmanager_api_calls_10k", ctx.q["secret_api_calls"] / 1e4, usage=True)]


@rule("aws:kms/key:Key")
def _kms(res: dict[str, Any], ctx: Context) -> list[LineItem]:
    return [ctx.item(res, "kms_key_month", 1)]


@rule("aws:cloudfront/distribution:Distribution")
def _cloudfront(res: dict[str, Any], ctx: Context) -> list[LineItem]:
    """Viewer bytes and requests: one tier ladder and one free allowance for all the stack's
    distributions (CloudFront tiers each geographic region's monthly total, not a distribution's).
    A distribution with an app origin (the API rides CloudFront) also bills the API requests' bytes
    it forwards to that origin ("data transfer out to origin", flat: prices.yaml cloudfront_origin_gb);
    S3 origin fetches' request bytes are left out (GETs of a few hundred bytes, 10 % of static requests)."""
    lines = ctx.pooled(res, CDN_GB) + ctx.pooled(res, CDN_REQUESTS)
    if any((o or {}).get("customOriginConfig") for o in res["inputs"].get("origins") or []):
        gb = ctx.q["api_requests"] * ctx.a["kb_per_api_request_in"] / 1e6
        lines.append(ctx.item(res, "cloudfront_origin_gb", gb, usage=True,
                              note=f"API requests to the app origin x {ctx.a['kb_per_api_request_in']:g} KB"))
    return lines


@rule("aws:wafv2/webAcl:WebAcl")
def _web_acl(res: dict[str, Any], ctx: Context) -> list[LineItem]:
    """Every request that enters through the protected ALB or distribution is inspected: API and
    static alike (phases 2-4 serve static files through the ALB; CloudFront's web ACL sees /static too).
    Beside a distribution a REGIONAL web ACL sees the API only, and CloudFront's sees the API only
    when the API rides it (`cdn.apiPath`)."""
    rules = len(res["inputs"].get("rules") or [])
    q = ctx.q
    if res["inputs"].get("scope") == "CLOUDFRONT":
        requests = ctx.cdn_quantity("requests")
        what = "API + static" if ctx.api_via_cdn else "static"
    else:
        requests = q["api_requests"] + (0.0 if ctx.has_cdn else q["static_requests"])
        what = "API" if ctx.has_cdn else "API + static"
    return [ctx.item(res, "waf_web_acl_month", 1),
            ctx.item(res, "waf_rule_month", rules, note=f"{rules} rules (rate limit + managed groups)"),
            ctx.item(res, "waf_requests_1m", requests / 1e6, usage=True, note=f"{what} requests inspected")]


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


K8S_SUBNETS = {"kubernetes:core/v1:Service": "service.beta.kubernetes.io/aws-load-balancer-subnets",
               "kubernetes:networking.k8s.io/v1:Ingress": "alb.ingress.kubernetes.io/subnets"}


def _k8s_lb_azs(res: dict[str, Any], ctx: Context) -> int:
    """AZs (= public IPv4s of an internet-facing LB, NLB nodes) the AWS Load Balancer Controller gives
    `res`: the subnets its annotation lists, else one per AZ among the subnets tagged for the scheme
    (kubernetes.io/role/elb public, kubernetes.io/role/internal-elb internal: the controller's
    "Subnet auto-discovery", kubernetes-sigs.github.io/aws-load-balancer-controller deploy/subnet_discovery,
    "selects one subnet per availability zone"), else the AZs the app runs in."""
    listed = [x for x in str(_annotations(res).get(K8S_SUBNETS[res["type"]]) or "").split(",") if x.strip()]
    if listed:
        return len(listed)
    role = "kubernetes.io/role/elb" if _k8s_scheme(res) == "internet-facing" else "kubernetes.io/role/internal-elb"
    tagged = {str(r["inputs"].get("availabilityZone")) for r in ctx.plan["resources"]
              if r["type"] == SUBNET and role in (r["inputs"].get("tags") or {})}
    return len(tagged) or len(_app_azs(ctx)[0]) or 2


@rule("kubernetes:core/v1:Service")
def _k8s_service(res: dict[str, Any], ctx: Context) -> list[LineItem]:
    if (res["inputs"].get("spec") or {}).get("type") != "LoadBalancer":
        return []
    return _load_balancer(res, ctx, "nlb", _k8s_scheme(res) != "internet-facing", _k8s_lb_azs(res, ctx))


@rule("kubernetes:networking.k8s.io/v1:Ingress")
def _k8s_ingress(res: dict[str, Any], ctx: Context) -> list[LineItem]:
    notes = _annotations(res)
    cls = (res["inputs"].get("spec") or {}).get("ingressClassName") or notes.get("kubernetes.io/ingress.class")
    group = notes.get("alb.ingress.kubernetes.io/group.name")
    if cls != "alb" or (group and _first_in_group(res, ctx, group) != res["urn"]):
        return []  # not an ALB, or an ALB another Ingress of its group already pays for
    return _load_balancer(res, ctx, "alb", _k8s_scheme(res) != "internet-facing", _k8s_lb_azs(res, ctx))


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
    cdn = [r["urn"] for r in res if r["type"] == DISTRIBUTION]
    lbs = [r["urn"] for r in res if _public_load_balancer(r)]
    if cdn:  # with the API straight to the load balancers (no app origin) they send the API's bytes
        api_via_cdn = any((o or {}).get("customOriginConfig") for r in res if r["type"] == DISTRIBUTION
                          for o in r["inputs"].get("origins") or [])
        return cdn if api_via_cdn else cdn + lbs
    if lbs:
        return lbs
    with_eip = {u for r in res if r["type"] == "aws:ec2/eip:Eip" for u in r["options"].get("dependsOn") or []}
    return [r["urn"] for r in res if r["type"] == "aws:ec2/instance:Instance"
            and (r["urn"] in with_eip or r["inputs"].get("associatePublicIpAddress"))]


# ---------------------------------------------------------------------------
# Compute rules (issue 17 item 1): CPU credits, detailed monitoring and custom metrics,
# ElastiCache snapshots, CloudWatch Logs storage, EKS extended support, Kubernetes volumes.
# Facts in ladder/aws_facts.py, prices and free allowances in ladder/catalog/prices.yaml.


def _free(ctx: Context, table: str, urn: str, lines: dict[str, float], free: float | None = None) -> float:
    """The part of an always-free monthly allowance (prices.yaml `free_per_month`, or `free`) that
    falls on the line of `urn`. AWS applies the allowance to the account's total of `table`
    (`lines`: URN -> quantity, the whole stack); the stack gets `free_allowance_share` of it
    (usage/defaults.yml; 0 when the Organization uses it elsewhere). It goes to the lines in URN
    order, so the total is exact and no line keeps a sliver."""
    allowance = (ctx.prices.free_per_month(table) if free is None else free) * float(ctx.a.get("free_allowance_share", 1.0))
    before = sum(q for u, q in lines.items() if u < urn)
    return max(0.0, min(lines.get(urn, 0.0), allowance - before))


def _less_free(ctx: Context, res: dict[str, Any], table: str, lines: dict[str, float], note: str,
               usage: bool = False, key: str | None = None) -> list[LineItem]:
    """This resource's `lines[urn]` of `table` less what the free allowance covers of it (`_free`);
    no line when nothing is left."""
    quantity = lines.get(res["urn"], 0.0)
    free = _free(ctx, table, res["urn"], lines)
    less = f"less {free:,.4g} free ({ctx.prices.unit(table)}, the account's allowance)"
    note = (f"{note}; {less}" if note else less) if free else note
    return _priced([ctx.item(res, table, quantity - free, key=key, usage=usage, note=note)])


def _priced(items: list[LineItem]) -> list[LineItem]:
    """The items worth a cent or more: a line that rounds to $0.00 (a sliver left after a free
    allowance, a few MB of logs) is left out rather than shown as a $0 usage line."""
    return [i for i in items if i.monthly_usd > 0]


# -- CPU credits ----------------------------------------------------------------------------

def _unlimited(spec: Any, instance_type: str) -> bool:
    """Whether surplus credits are billed: the launch's `creditSpecification.cpuCredits`, else the
    family's default (T3/T3a/T4g unlimited, T2 standard)."""
    family = aws_facts.burstable_family(instance_type)
    if family is None:
        return False
    chosen = (spec or {}).get("cpuCredits") if isinstance(spec, dict) else None
    return chosen == "unlimited" if chosen in ("standard", "unlimited") else aws_facts.BURSTABLE_DEFAULT_UNLIMITED[family]


def _cpu_credits(ctx: Context, res: dict[str, Any], instance_type: str, count: float, cpu: float, why: str,
                 table: str = "ec2_cpu_credit_vcpu_hour") -> list[LineItem]:
    """Surplus credits of `count` burstable instances averaging `cpu` % (of all vCPUs): AWS bills
    (average - baseline) x vCPUs x hours when the 24-hour average exceeds the baseline."""
    vcpus, baseline = aws_facts.BURSTABLE_BASELINE[instance_type.removeprefix("db.")]
    surplus = max(0.0, cpu - baseline)
    if surplus <= 0 or count <= 0:
        return []
    hours = surplus / 100 * vcpus * HOURS * count
    return _priced([ctx.item(res, table, hours, key=aws_facts.burstable_family(instance_type), usage=True,
                             note=f"{why}: {cpu:.1f} % average vs {baseline:g} % baseline x {vcpus} vCPUs "
                                  f"x {count:g} x {HOURS} h")])


def _host_cpu(ctx: Context, instance_type: str, count: float, roles: str) -> float:
    """Average CPU % of one of `count` hosts sharing the priced load of `roles` (api, worker,
    pgbouncer), from the capacity model's per-core rates: what target tracking holds a group at
    while the load sets its size, less when the group sits at its minimum."""
    if count <= 0:
        return 0.0
    rps, jobs = _average_rates(ctx)
    cores = 0.0
    if "api" in roles:
        cores += min(rps / count / capacity.APP_RPS_PER_CORE.value, capacity.APP_PROCESSES_PER_HOST.value)
    if "worker" in roles:
        cores += jobs / count * capacity.WORKER_POD_CPU.value / capacity.WORKER_JOBS_PER_S.value
    if "pgbouncer" in roles:
        cores += min(rps * capacity.DB_TRANSACTIONS_PER_REQUEST.value / count / capacity.PGBOUNCER_TPS_PER_CORE.value, 1)
    return min(100.0, 100 * cores / capacity.vcpus(instance_type))


def _roles(template_or_instance: dict[str, Any]) -> str:
    """What a host runs, from its user data: `ROLES="api worker"` (cloudinit/app.yaml.j2), or
    "pgbouncer" for the PgBouncer tier's hosts; "" when the plan carries no readable user data."""
    text = _user_data(template_or_instance)
    if "scaleladder-pgbouncer-metrics" in text:
        return "pgbouncer"
    match = re.search(r'ROLES="([^"]*)"', text)
    return match.group(1) if match else ""


def _user_data(res: dict[str, Any]) -> str:
    value = res["inputs"].get("userData") or res["inputs"].get("userDataBase64")
    return _decoded(value) if isinstance(value, str) else ""


@lru_cache(maxsize=64)
def _decoded(value: str) -> str:
    """User data as cloud-init reads it (base64, gzip or not: ladder.userdata.decode)."""
    try:
        return userdata.decode(value)
    except (ValueError, OSError, UnicodeDecodeError):
        return value


def _node_credits(res: dict[str, Any], ctx: Context, itype: str, nodes: float) -> list[LineItem]:
    """Burstable EKS nodes (a node group of t3/t4g...) bill surplus credits on the CPU the pods use
    at the priced load (app, workers, PgBouncer: the capacity model's per-core rates) spread over
    the nodes; `host_cpu_percent` replaces it when measured."""
    lt = ctx.dependency(res, "aws:ec2/launchTemplate:LaunchTemplate")
    if not nodes or not _unlimited(((lt or {}).get("inputs") or {}).get("creditSpecification"), itype):
        return []
    measured = _num(ctx.a.get("host_cpu_percent"), 0)
    if measured > 0:
        return _cpu_credits(ctx, res, itype, nodes, measured, "host_cpu_percent assumption")
    rps, jobs = _average_rates(ctx)
    cores = (rps / capacity.APP_RPS_PER_CORE.value + jobs * capacity.WORKER_POD_CPU.value / capacity.WORKER_JOBS_PER_S.value
             + rps * capacity.DB_TRANSACTIONS_PER_REQUEST.value / capacity.PGBOUNCER_TPS_PER_CORE.value)
    cpu = min(100.0, 100 * cores / (nodes * capacity.vcpus(itype)))
    return _cpu_credits(ctx, res, itype, nodes, cpu, "the pods' CPU at the priced load (capacity model)")


def _rds_credits(res: dict[str, Any], ctx: Context) -> list[LineItem]:
    """RDS db.t3/db.t4g run unlimited: surplus above the baseline at the `db_cpu_percent` assumption
    (the instance that serves: a Multi-AZ standby runs no queries)."""
    cls = str(res["inputs"].get("instanceClass") or "")
    if aws_facts.burstable_family(cls) not in aws_facts.RDS_UNLIMITED_FAMILIES:
        return []
    return _cpu_credits(ctx, res, cls, 1, _num(ctx.a.get("db_cpu_percent"), 0), "db_cpu_percent assumption",
                        "rds_cpu_credit_vcpu_hour")


def _host_credits(res: dict[str, Any], ctx: Context, launch: dict[str, Any], count: float,
                  template: dict[str, Any] | None = None) -> list[LineItem]:
    """Surplus credits of EC2 hosts (an instance, or a group's `count`) at the CPU the priced load
    puts on them (`_host_cpu`), unless their launch sets `creditSpecification.cpuCredits: standard`."""
    itype = str(launch.get("instanceType") or "")
    if not _unlimited(launch.get("creditSpecification"), itype):
        return []
    measured = _num(ctx.a.get("host_cpu_percent"), 0)
    if measured > 0:  # a team's measured average replaces the model's
        return _cpu_credits(ctx, res, itype, count, measured, "host_cpu_percent assumption")
    roles = _roles(template or res)
    if not roles:
        return []
    sharing = max(count, _api_hosts(ctx)) if "api" in roles and template is None else count
    cpu = _host_cpu(ctx, itype, sharing, roles)
    return _cpu_credits(ctx, res, itype, count, cpu, f"{roles} at the priced load (capacity model)")


# -- CloudWatch metrics: detailed monitoring and the hosts' publishers -------------------------

def _metric_lines(res: dict[str, Any], ctx: Context) -> list[LineItem]:
    """Custom-metric months and PutMetricData requests this resource causes, less its share of the
    account's free 10 metrics / 1M requests (apportioned over the whole stack)."""
    mine = _metrics_of(res, ctx)
    if mine is None:
        return []
    every = {r["urn"]: m for r in ctx.plan["resources"] if (m := _metrics_of(r, ctx)) is not None}
    return (_less_free(ctx, res, "cloudwatch_metric_month", {u: m[0] for u, m in every.items()}, mine[2])
            + _less_free(ctx, res, "cloudwatch_api_requests_1k", {u: m[1] / 1e3 for u, m in every.items()},
                         "PutMetricData calls, one flush a minute", usage=True))


def _monitored(res: dict[str, Any], ctx: Context) -> tuple[dict[str, Any] | None, float]:
    """(the launch settings, instance count) of an instance, group or node group; (None, 0) else."""
    if res["type"] == "aws:ec2/instance:Instance":
        return res["inputs"], 1.0
    if res["type"] == DEPLOYMENT and _publishes_itself(res, ctx):
        name = str((res["inputs"].get("metadata") or {}).get("name"))
        return {}, float(_pod_counts(ctx)[0].get(name, 0))
    if res["type"] in ("aws:autoscaling/group:Group", "aws:eks/nodeGroup:NodeGroup"):
        lt = ctx.dependency(res, "aws:ec2/launchTemplate:LaunchTemplate")
        if lt is None:
            return None, 0.0
        itype = lt["inputs"].get("instanceType") or (res["inputs"].get("instanceTypes") or [None])[0]
        count = (_group_count(res, ctx, itype)[0] if res["type"] == "aws:autoscaling/group:Group"
                 else _node_count(res, ctx, itype))
        return lt["inputs"], count
    return None, 0.0


def _metrics_of(res: dict[str, Any], ctx: Context) -> tuple[float, float, str] | None:
    """(metric-months, PutMetricData requests a month, note) of one resource, None if it has none.
    Detailed monitoring: 7 metrics per instance. Publishers (ladder/metrics.py contract): the app's
    ScaleLadder/App metrics carry only the Stack dimension, so every host publishes into the same
    metrics (counted once, on the API hosts); memory is one metric per group (or per lone instance),
    PgBouncer's three per group. Requests: each host calls once a minute per 20 data
    (metrics.MAX_DATA_PER_CALL), a timer taking one datum per 150 distinct values."""
    inputs, count = _monitored(res, ctx)
    if inputs is None or not count:
        return None
    if res["type"] == DEPLOYMENT:
        return _pod_metrics(res, ctx, count)
    monitoring = inputs.get("monitoring")
    detailed = monitoring is True or (isinstance(monitoring, dict) and monitoring.get("enabled") in (True, "true"))
    metrics = aws_facts.EC2_DETAILED_MONITORING_METRICS * count if detailed else 0.0
    parts = [f"detailed monitoring: {aws_facts.EC2_DETAILED_MONITORING_METRICS} metrics x {count:g}"] if detailed else []
    lt = ctx.dependency(res, "aws:ec2/launchTemplate:LaunchTemplate") or res
    text, roles = _user_data(lt), _roles(lt)
    requests, minutes = 0.0, HOURS * 60
    if "scaleladder-metrics" in text:
        api = "api" in roles
        if api and res["urn"] == min(_api_publishers(ctx)):  # one Stack dimension: the same metrics for all
            metrics += len(metrics_contract.app_metrics()) + 1  # + the ApiAnswers probe
            parts.append("the stack's ScaleLadder/App metrics")
        rps = _average_rates(ctx)[0] / max(1, _api_hosts(ctx)) if api else 0.0
        # ServerErrors (every host, 0 in a quiet minute) + QueueWaiting (workers) + ApiAnswers and the
        # RequestLatency values in datums of 150 (API hosts; every latency taken as distinct)
        data = 1 + ("worker" in roles) + (1 + math.ceil(rps * 60 / metrics_contract.MAX_VALUES_PER_DATUM) if api else 0)
        requests += count * minutes * math.ceil(data / metrics_contract.MAX_DATA_PER_CALL)
    if "scaleladder-host-metrics" in text:
        metrics += 1
        requests += count * minutes
        parts.append("MemoryUtilization")
    if "scaleladder-pgbouncer-metrics" in text:
        metrics += 3
        requests += count * minutes
        parts.append("3 PgBouncer metrics")
    if not metrics and not requests:
        return None
    return metrics, requests, "; ".join(parts)


DEPLOYMENT = "kubernetes:apps/v1:Deployment"


def _publishes_itself(res: dict[str, Any], ctx: Context) -> bool:
    """Phase 6: a Deployment whose env ConfigMap says METRICS_PUBLISH=cloudwatch (ladder.metrics
    direct_env): its pods call PutMetricData themselves."""
    refs = [str((e.get("configMapRef") or {}).get("name")) for c in
            (((res["inputs"].get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
            for e in c.get("envFrom") or []]
    return any(r["type"] == "kubernetes:core/v1:ConfigMap" and (r["inputs"].get("data") or {}).get("METRICS_PUBLISH")
               == "cloudwatch" and any(ref == (r["inputs"].get("metadata") or {}).get("name")
                                       or ref.startswith(r["name"] + "-") for ref in refs)
               for r in ctx.plan["resources"])


def _pod_metrics(res: dict[str, Any], ctx: Context, pods: float) -> tuple[float, float, str] | None:
    """The app pods publish the contract's ScaleLadder/App metrics (Stack dimension: counted once,
    here) with their request latencies; the worker pods QueueWaiting only (publisher_eks)."""
    name = str((res["inputs"].get("metadata") or {}).get("name"))
    minutes = HOURS * 60
    if name == "app":
        rps = _average_rates(ctx)[0] / pods
        data = 1 + math.ceil(rps * 60 / metrics_contract.MAX_VALUES_PER_DATUM)
        metrics = sum(1 for m in metrics_contract.CONTRACT if m.namespace == metrics_contract.APP_NAMESPACE
                      and m.publisher_eks)
        return metrics, pods * minutes * math.ceil(data / metrics_contract.MAX_DATA_PER_CALL), \
            f"the stack's ScaleLadder/App metrics, published by {pods:g} pods"
    if name == "workers":
        return 0.0, pods * minutes, f"QueueWaiting from {pods:g} worker pods"
    return None


def _api_publishers(ctx: Context) -> list[str]:
    """URNs of the instances and groups whose hosts run the API and its metrics publisher."""
    out = []
    for r in ctx.plan["resources"]:
        if r["type"] in ("aws:ec2/instance:Instance", "aws:autoscaling/group:Group"):
            lt = ctx.dependency(r, "aws:ec2/launchTemplate:LaunchTemplate") or r
            if "api" in _roles(lt) and "scaleladder-metrics" in _user_data(lt):
                out.append(r["urn"])
    return out


def _api_hosts(ctx: Context) -> float:
    """EC2 hosts running the API (the priced load is split over them)."""
    total = 0.0
    for r in ctx.plan["resources"]:
        if r["type"] in ("aws:ec2/instance:Instance", "aws:autoscaling/group:Group"):
            lt = ctx.dependency(r, "aws:ec2/launchTemplate:LaunchTemplate") or r
            if "api" in _roles(lt):
                total += _monitored(r, ctx)[1]
    return total


# -- ElastiCache snapshots ---------------------------------------------------------------------

def _dataset_gb(res: dict[str, Any], ctx: Context) -> tuple[float, str]:
    """GB one snapshot holds: usage `redis_dataset_gb` when set (> 0), else the data nodes' memory
    (one node per shard: replicas hold copies) x `redis_fill_share`, so the figure grows with the cache."""
    stated = _num(ctx.a.get("redis_dataset_gb"), 0)
    if stated > 0:
        return stated, "redis_dataset_gb"
    i = res["inputs"]
    node = str(i.get("nodeType"))
    if node not in aws_facts.ELASTICACHE_NODE_SPECS:
        raise ValueError(f"{res['urn']}: node type {node!r} has no memory in aws_facts.ELASTICACHE_NODE_SPECS; "
                         "set usage assumption redis_dataset_gb (GB per snapshot)")
    sharded = i.get("numNodeGroups") is not None or i.get("clusterMode") == "enabled"
    shards = _num(i.get("numNodeGroups"), 1) if sharded else 1.0
    gib = aws_facts.ELASTICACHE_NODE_SPECS[node][1]
    fill = float(ctx.a["redis_fill_share"])
    return shards * gib * fill, f"{shards:g} shard(s) x {gib:g} GiB of {node} x redis_fill_share {fill:g}"


def _backup_storage(res: dict[str, Any], ctx: Context) -> list[LineItem]:
    """Automatic snapshots kept `snapshotRetentionLimit` days: one per cluster is free, each other
    holds the dataset (`_dataset_gb`)."""
    kept = int(_num(res["inputs"].get("snapshotRetentionLimit"), 0))
    if kept <= 1:
        return []
    each, why = _dataset_gb(res, ctx)
    return _priced([ctx.item(res, "elasticache_backup_gb_month", each * (kept - 1), usage=True,
                             note=f"{kept} daily snapshots, one free: {kept - 1} x {each:,.2f} GB ({why})")])


# -- CloudWatch Logs ---------------------------------------------------------------------------

EKS_LOG_ASSUMPTIONS = {"audit": "eks_audit_log_gb", "api": "eks_api_log_gb"}


def _eks_log_gb(ctx: Context, types: list[str]) -> float:
    """Monthly GB of an EKS cluster's control-plane log types (audit and api: their own assumptions)."""
    return sum(_num(ctx.a.get(EKS_LOG_ASSUMPTIONS.get(t, "")), ctx.q["log_gb_per_source"]) for t in types)


def _rds_log_groups(res: dict[str, Any], ctx: Context) -> set[str]:
    """The exported log types whose group the program creates (/aws/rds/instance/<id>/<type>)."""
    ident = res["inputs"].get("identifier")
    names = {str(r["inputs"].get("name")) for r in ctx.plan["resources"] if r["type"] == LOG_GROUP}
    return {t for t in res["inputs"].get("enabledCloudwatchLogsExports") or [] if f"/aws/rds/instance/{ident}/{t}" in names}


def _log_volume(r: dict[str, Any], ctx: Context) -> tuple[float, float, str] | None:
    """(GB ingested a month, GB-months stored, what) of one log source: a log group the program
    creates, or the exports of an RDS instance / EKS cluster into a group it does not create.
    Stored = ingested x `log_storage_compression` x the retention in months (a year if never)."""
    if r["type"] == LOG_GROUP:
        types = [t for c in ctx.plan["resources"] if c["type"] == "aws:eks/cluster:Cluster" and _depends(c, r)
                 for t in c["inputs"].get("enabledClusterLogTypes") or []]
        gb = _eks_log_gb(ctx, types) if types else ctx.q["log_gb_per_source"]
        what = f"{len(types)} EKS control-plane log type(s)" if types else "ingestion"
        days = _num(r["inputs"].get("retentionInDays"), 0)
    elif r["type"] == "aws:rds/instance:Instance":
        exports = [t for t in r["inputs"].get("enabledCloudwatchLogsExports") or [] if t not in _rds_log_groups(r, ctx)]
        gb, what, days = len(exports) * ctx.q["log_gb_per_source"], f"{len(exports)} exported log type(s)", 0
    elif r["type"] == "aws:eks/cluster:Cluster" and not ctx.dependency(r, LOG_GROUP):
        types = list(r["inputs"].get("enabledClusterLogTypes") or [])
        gb, what, days = _eks_log_gb(ctx, types), f"{len(types)} control-plane log type(s)", 0
    else:
        return None
    if not gb:
        return None
    months = days / (365 / 12) if days else 12.0
    return gb, gb * _num(ctx.a.get("log_storage_compression"), 0) * months, what


def _log_lines(res: dict[str, Any], ctx: Context) -> list[LineItem]:
    """Ingestion and archived storage of one log source, less their share of the free 5 GB (which
    covers ingestion and storage together: taken off ingestion first, the dearer unit)."""
    mine = _log_volume(res, ctx)
    if mine is None:
        return []
    vols = {r["urn"]: v for r in ctx.plan["resources"] if (v := _log_volume(r, ctx)) is not None}
    ingest, stored, what = mine
    ingested = {u: v[0] for u, v in vols.items()}
    pool = ctx.prices.free_per_month("cloudwatch_logs_ingest_gb")  # ingestion and storage together
    free_in = _free(ctx, "cloudwatch_logs_ingest_gb", res["urn"], ingested)
    left = max(0.0, pool * float(ctx.a.get("free_allowance_share", 1.0)) - sum(ingested.values()))
    free_st = _free(ctx, "cloudwatch_logs_storage_gb_month", res["urn"], {u: v[1] for u, v in vols.items()},
                    free=left / max(float(ctx.a.get("free_allowance_share", 1.0)), 1e-9))
    days = _num(res["inputs"].get("retentionInDays"), 0) if res["type"] == LOG_GROUP else 0
    kept = f"kept {days:g} days" if days else "never expires: a year's logs"
    return _priced([ctx.item(res, "cloudwatch_logs_ingest_gb", ingest - free_in, usage=True,
                             note=what + (f"; less {free_in:.3g} GB of the free 5 GB" if free_in else "")),
                    ctx.item(res, "cloudwatch_logs_storage_gb_month", stored - free_st, usage=True,
                             note=f"{kept}, compressed x {_num(ctx.a.get('log_storage_compression'), 0):g}"
                                  + (f"; less {free_st:.3g} GB-month free" if free_st else ""))])


# -- EKS ---------------------------------------------------------------------------------------

def _eks_hour_table(res: dict[str, Any], ctx: Context) -> tuple[str, str]:
    """(price table, note): extended support when the version is past standard support on the
    catalog's date and the upgrade policy lets the cluster stay (EXTENDED, the default)."""
    version = res["inputs"].get("version")
    policy = (res["inputs"].get("upgradePolicy") or {}).get("supportType")
    if not version or str(version) not in aws_facts.EKS_CALENDAR:
        return "eks_cluster_hour", "control plane"
    day = date.fromisoformat(str(ctx.prices.meta(ctx.region)["retrieved"]))
    support = aws_facts.eks_support_on(str(version), policy, day)
    if support == "extended":
        return "eks_extended_support_cluster_hour", (f"control plane, {version} in extended support on {day} "
                                                     f"(upgradePolicy {policy or 'EXTENDED (default)'})")
    if support == "upgraded":
        return "eks_cluster_hour", f"control plane; {version} past standard support: AWS upgrades it (STANDARD)"
    return "eks_cluster_hour", "control plane"


def _node_disk(res: dict[str, Any], ctx: Context) -> tuple[float, str]:
    """GB per node: the launch template's block devices when the group uses one (EKS then ignores
    `diskSize`), else `diskSize` (20 GB default)."""
    lt = ctx.dependency(res, "aws:ec2/launchTemplate:LaunchTemplate")
    if lt is not None and res["inputs"].get("launchTemplate"):
        sizes = [_num((m.get("ebs") or {}).get("volumeSize"), 0) for m in lt["inputs"].get("blockDeviceMappings") or []]
        if sum(sizes):
            return sum(sizes), "per node, from the launch template"
    return _num(res["inputs"].get("diskSize"), 20), "per node (diskSize)"


# -- Kubernetes volumes --------------------------------------------------------------------------

def _k8s_gib(quantity: Any) -> float:
    """A Kubernetes storage quantity ("10Gi", "500Mi", "1Ti", "20G") in GiB (EBS bills GiB-months)."""
    text = str(quantity or 0)
    units = {"Ki": 2**-20, "Mi": 2**-10, "Gi": 1, "Ti": 2**10, "K": 1e3 / 2**30, "M": 1e6 / 2**30,
             "G": 1e9 / 2**30, "T": 1e12 / 2**30}
    for suffix in sorted(units, key=len, reverse=True):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * units[suffix]
    return float(text) / 2**30


STORAGE_CLASS = "kubernetes:storage.k8s.io/v1:StorageClass"
EBS_TABLES = {"gp3": "ebs_gp3_gb_month", "gp2": "ebs_gp2_gb_month"}


def _volume_table(ctx: Context, claim_spec: dict[str, Any]) -> tuple[str, str]:
    """(price table, class) of a claim: its storage class's EBS `type` (the EBS CSI driver's default
    is gp3; the in-tree kubernetes.io/aws-ebs provisioner's gp2), EKS's own `gp2` class without one."""
    name = claim_spec.get("storageClassName")
    classes = [r for r in ctx.plan["resources"] if r["type"] == STORAGE_CLASS]
    default = [r for r in classes if _annotations(r).get("storageclass.kubernetes.io/is-default-class") == "true"]
    cls = next((r for r in classes if (r["inputs"].get("metadata") or {}).get("name") == name), None) if name else (
        default[0] if default else None)
    if cls is None:  # a class the program does not create: EKS's own gp2, or one named after its type
        kind = name if name in EBS_TABLES else "gp2"
        return EBS_TABLES[kind], f"{name} (not in the plan: {kind})" if name else "gp2 (EKS's pre-installed class)"
    i = cls["inputs"]
    kind = (i.get("parameters") or {}).get("type") or ("gp2" if i.get("provisioner") == "kubernetes.io/aws-ebs" else "gp3")
    if kind not in EBS_TABLES:
        raise ValueError(f"{cls['urn']}: EBS volume type {kind!r} has no price; priced types: {', '.join(EBS_TABLES)}")
    return EBS_TABLES[kind], f"{(i.get('metadata') or {}).get('name')} ({kind})"


def _claim(ctx: Context, res: dict[str, Any], spec: dict[str, Any], copies: float, what: str) -> list[LineItem]:
    gib = _k8s_gib(((spec.get("resources") or {}).get("requests") or {}).get("storage"))
    table, cls = _volume_table(ctx, spec)
    return [ctx.item(res, table, gib * copies, note=f"{what}: {copies:g} x {gib:g} GiB, class {cls}")] if gib else []


@rule(DEPLOYMENT)
def _deployment(res: dict[str, Any], ctx: Context) -> list[LineItem]:
    """Pods cost nothing themselves (nodes are priced); the metrics they publish do."""
    return _metric_lines(res, ctx)


@rule("kubernetes:core/v1:PersistentVolumeClaim")
def _pvc(res: dict[str, Any], ctx: Context) -> list[LineItem]:
    """A claim the program creates: an EBS volume the CSI driver provisions (priced by class)."""
    return _claim(ctx, res, res["inputs"].get("spec") or {}, 1, "PersistentVolumeClaim")


@rule("kubernetes:apps/v1:StatefulSet")
def _statefulset(res: dict[str, Any], ctx: Context) -> list[LineItem]:
    """One volume per replica per volumeClaimTemplate."""
    spec = res["inputs"].get("spec") or {}
    replicas = _num(spec.get("replicas"), 1)
    return [item for t in spec.get("volumeClaimTemplates") or []
            for item in _claim(ctx, res, t.get("spec") or {}, replicas, "volumeClaimTemplate")]



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
    capacity_exceeded: list[dict[str, Any]] | None = None
    """Tiers whose maximum (capacity.capacity_of) is below the priced load's peak; None: not checked."""

    @property
    def phase(self) -> int:
        return int(self.plan["phase"])

    @property
    def total(self) -> float:
        return round(sum(i.monthly_usd for i in self.items), 2)

    def by_table(self) -> dict[str, float]:
        """Monthly USD per price table (the sku before its `:key`), unrounded: one row per pricing rule's table."""
        out: dict[str, float] = {}
        for i in self.items:
            table = i.sku.split(":", 1)[0]
            out[table] = out.get(table, 0.0) + i.monthly_usd
        return out

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
                "per_1000_users_usd": self.per_1000_users, "unpriced_types": self.unpriced,
                "capacity_exceeded": self.capacity_exceeded}


MAX_CAPACITY = "maxCapacity"
"""Key of a JSON plan that carries its stack's `capacity.capacity_of(cfg).to_json()` (the plan itself has no config)."""


def with_capacity(plan: dict[str, Any], cfg: Any) -> dict[str, Any]:
    """`plan` carrying its stack's maximum capacity, so `price_plan` can check the priced load against it."""
    plan[MAX_CAPACITY] = capacity.capacity_of(cfg).to_json()
    return plan


def capacity_exceeded(plan: dict[str, Any], q: dict[str, float], a: dict[str, float]) -> list[dict[str, Any]] | None:
    """Each tier whose maximum is below the priced load's PEAK (`capacity.peak_load`): the plan would drop
    requests or fall behind on the queue at that load. Counts are priced at the month's average within
    min/max, so without this a lower preset in `cost --diff` looks cheaper at a load it cannot carry.
    None when the plan carries no capacity (a `plan --json` file or STACK@REV). The capacity model has no
    database or cache tier: RDS and ElastiCache are not checked."""
    cap = plan.get(MAX_CAPACITY)
    if not cap:
        return None
    peak = capacity.peak_load(q["peak_concurrent_users"], q["messages_per_day"], a)
    out = [{"tier": tier, "unit": "req/s", "need": round(peak.requests_per_s, 1), "max": limit}
           for tier, limit in cap["tiers"].items() if limit < peak.requests_per_s]
    if cap["jobs_per_s"] < peak.jobs_per_s:
        out.append({"tier": "workers", "unit": "jobs/s", "need": round(peak.jobs_per_s, 1), "max": cap["jobs_per_s"]})
    return out


def capacity_text(exceeded: list[dict[str, Any]] | None) -> str:
    """One sentence on the check: which tiers the priced peak exceeds, or that it was not made."""
    if exceeded is None:
        return "capacity at peak not checked (no stack config with this plan)"
    if not exceeded:
        return "maximum capacity carries the priced peak"
    return "OVER CAPACITY at the priced peak: " + "; ".join(
        f"{e['tier']} needs {e['need']:,.0f} {e['unit']}, maximum {e['max']:,.0f}" for e in exceeded)


def price_plan(plan: dict[str, Any], usage_file: Path | None = None, users: float | None = None,
               messages_per_day: float | None = None, band: str | None = None,
               with_band: bool = True, free_tier: bool = True) -> CostReport:
    """Price `plan` at a load: its phase's capacity target unless `users`/`messages_per_day` are
    given; `with_band` also prices it under each usage band (usage/bands.yml) at the same load;
    `free_tier=False` (`--no-free-tier`) gives the stack none of the always-free allowances."""
    phase = int(plan["phase"])
    assumptions, monthly, files = load_usage(phase, usage_file, band)
    if not free_tier:
        assumptions["free_allowance_share"] = 0.0
    q = derive(phase, assumptions, monthly, users, messages_per_day)
    ctx = Context(plan, catalog(), q, assumptions, {r["urn"]: r for r in plan["resources"]}, internet_entries(plan))
    items: list[LineItem] = []
    unpriced: set[str] = set()
    for res in sorted(plan["resources"], key=lambda r: r["urn"]):
        if res["type"] in RULES:
            items += RULES[res["type"]](res, ctx)
        elif not ctx.prices.is_free(res["type"]):
            unpriced.add(res["type"])
    items += inter_az_items(ctx) + _no_entry(ctx)
    totals: dict[str, float] = {}
    for i in items:
        totals[i.component] = totals.get(i.component, 0) + i.monthly_usd
    items.sort(key=lambda i: (-totals[i.component], i.component))  # stable: URN order within a component
    usage = {"files": files, "assumptions": assumptions, "overrides": monthly,
             "quantities": {k: round(v, 2) for k, v in q.items()}}
    report = CostReport(plan, items, sorted(unpriced), usage, capacity_exceeded=capacity_exceeded(plan, q, assumptions))
    if with_band:
        report.band = {name: price_plan(plan, usage_file, q["peak_concurrent_users"], q["messages_per_day"], name,
                                        with_band=False, free_tier=free_tier).total for name in bands()}
    return report


def _no_entry(ctx: Context) -> list[LineItem]:
    """A $0 line that says so when users' bytes have no internet entry in the plan (no CloudFront,
    public load balancer or public instance: e.g. a private host behind a proxy the plan does not
    model), instead of leaving egress out silently (review cost-model finding 7)."""
    if ctx.entries or ctx.q["egress_gb"] <= 0:
        return []
    return [LineItem("(stack)", "", "(stack)", "(stack)", EGRESS, round(ctx.q["egress_gb"], 4),
                     ctx.prices.unit(EGRESS), 0.0, 0.0, True,
                     "no internet entry found (no CloudFront, public load balancer or public instance): "
                     "user egress NOT priced")]


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
                   "priced_load": r.load, "band_monthly_usd": r.band,
                   "capacity_exceeded": r.capacity_exceeded} for n, r in side.items()},
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
            f"{spec.messages_per_day:,} messages/day{band}); {capacity_text(report.capacity_exceeded)}")


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
    lines += [f"Before: {capacity_text(a.get('capacity_exceeded'))}. After: {capacity_text(b.get('capacity_exceeded'))}.",
              ""]
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
    for side, label in (("a", "before"), ("b", "after")):
        text = capacity_text(d[side].get("capacity_exceeded"))
        console.print(f"{label}: " + (f"[bold red]{escape(text)}[/]" if d[side].get("capacity_exceeded") else escape(text)))
    if d.get("band_delta_usd"):
        console.print(f"usage band (usage/bands.yml): before {band_text(d['a']['band_monthly_usd'])}; after "
                      f"{band_text(d['b']['band_monthly_usd'])}; delta {band_text(d['band_delta_usd'], signed=True)}")


# ---------------------------------------------------------------------------
# CLI


def _load_with_capacity(spec: str) -> dict[str, Any]:
    """The plan of `spec` with its stack's maximum capacity when `spec` names a stack of this tree
    (a `plan --json` file or STACK@REV has no config here: the check says it was not made)."""
    plan = load(spec)
    plan["source"] = spec
    if "@" not in spec and not spec.endswith(".json"):
        with_capacity(plan, engine.validate_stack(engine.read_stack(spec), stack=spec))
    return plan


def cost_of(spec: str, usage_file: Path | None = None, users: float | None = None,
            messages_per_day: float | None = None, free_tier: bool = True) -> CostReport:
    return price_plan(_load_with_capacity(spec), usage_file, users, messages_per_day, free_tier=free_tier)


def equal_load_delta(spec_a: str, spec_b: str, usage_file: Path | None = None, users: float | None = None,
                     free_tier: bool = True) -> dict[str, Any]:
    """`cost --diff A B`: both plans priced at the same load (`equal_load`)."""
    return delta(*priced_pair(_load_with_capacity(spec_a), _load_with_capacity(spec_b), usage_file, users, free_tier))


def priced_pair(a: dict[str, Any], b: dict[str, Any], usage_file: Path | None = None, users: float | None = None,
                free_tier: bool = True) -> tuple[CostReport, CostReport]:
    """Plans `a` and `b` priced at one load (`equal_load`): what a climb from a to b costs."""
    peak, messages = equal_load(a, b, users)
    return (price_plan(a, usage_file, peak, messages, free_tier=free_tier),
            price_plan(b, usage_file, peak, messages, free_tier=free_tier))


def cmd_cost(args: argparse.Namespace) -> int:
    console = Console(highlight=False, emoji=False, width=None if sys.stdout.isatty() else 160)
    if args.users is not None and args.users < 1:
        print("error: --users must be a positive number of peak concurrent users", file=sys.stderr)
        return 2
    try:
        if args.diff:
            d = equal_load_delta(args.diff[0], args.diff[1], args.usage, args.users, not args.no_free_tier)
            print(json.dumps(d, indent=2) if args.json else delta_markdown(d)) if args.json or args.markdown \
                else print_delta(d, console)
            return 0
        if not args.stack:
            print("error: cost needs STACK or --diff A B", file=sys.stderr)
            return 2
        report = cost_of(args.stack, args.usage, args.users,
                         None if args.users is None else args.users * _messages_per_user(args.stack),
                         free_tier=not args.no_free_tier)
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
    p.add_argument("--no-free-tier", action="store_true",
                   help="no always-free allowances (CloudFront 1 TB and 10M requests, 100 GB egress, ...): the "
                        "AWS Organization uses its one free tier elsewhere (usage assumption free_allowance_share 0)")


def _messages_per_user(spec: str) -> float:
    return PHASES[int(load(spec)["phase"])].messages_per_user


COMMANDS["cost"] = ("monthly cost per resource, component and total; --diff A B for the delta", _cost_args, cmd_cost)
