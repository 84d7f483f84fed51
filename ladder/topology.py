"""Who may reach whom, per phase: pure data the Firewall component turns into
security groups and rules, and the tests read as policy.

Each tier admits only the tier in front of it. The database and Redis never
admit anything but the tiers that use them; nothing but the public edge admits
the internet.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import edge
from .config import StackConfig

INTERNET = "0.0.0.0/0"
CLOUDFRONT = "cloudfront"
"""A rule source naming CloudFront's origin-facing servers (the AWS-managed prefix list,
components/cdn.py CLOUDFRONT_ORIGIN_FACING): phase 5's load balancer admits nothing else."""
HTTP, HTTPS, POSTGRES, PGBOUNCER, REDIS = 80, 443, 5432, 6432, 6379


@dataclass(frozen=True)
class Rule:
    tier: str  # the security group that receives
    port: int
    source: str  # a tier name, or a CIDR
    description: str


@dataclass(frozen=True)
class FirewallPlan:
    tiers: tuple[str, ...]  # security groups to create
    rules: tuple[Rule, ...]
    outbound: tuple[str, ...]  # tiers that may open connections out (instances, LBs)
    external: tuple[str, ...] = ()  # source tiers owned elsewhere (the EKS cluster SG)


SINGLE_HOST_RULE = Rule("app", HTTP, INTERNET, "HTTP from the internet to nginx on the VM")


def db_clients(cfg: StackConfig) -> tuple[str, ...]:
    return ("app",) if cfg.phase == 1 else ("app", "workers") if cfg.phase <= 5 else ("eks",)


def direct_db_rules(cfg: StackConfig) -> list[Rule]:
    """The app tiers' own rules into PostgreSQL (same names in every phase: a climb keeps them in place)."""
    return [Rule("db", POSTGRES, c, f"{c} to PostgreSQL") for c in db_clients(cfg)]


def firewall_plan(cfg: StackConfig) -> FirewallPlan:
    p = cfg.phase
    rules: list[Rule] = []
    if p == 1:
        clients: tuple[str, ...] = ("app",)
        tiers = ["app", "db", "redis"]
        rules.append(SINGLE_HOST_RULE)
    elif p <= 5:
        clients = ("app", "workers")
        tiers = ["lb", "app", "workers", "db", "redis"]
        rules += [
            # Phase 5: CloudFront is the only way in (HTTPS to the origin; one prefix-list rule:
            # the list weighs 55 of a group's 60 rules); the listener also checks the origin header.
            # While climb.keepAlbOpen serves direct clients (4 -> 5, 5 -> 4) the internet rules stay
            # beside it (55 + 2 of 60), under phase 4's names: the climb keeps them in place.
            # With cdn.apiPath loadBalancer clients reach the ALB for the API (CloudFront serves /static
            # from S3 and never reaches the ALB): the internet rules, and no prefix-list rule.
            *([Rule("lb", HTTPS, CLOUDFRONT, "HTTPS from CloudFront's origin-facing servers only")]
              if p == 5 and edge.api_via_cloudfront(cfg) else []),
            *([Rule("lb", HTTP, INTERNET, "HTTP from the internet"),
               Rule("lb", HTTPS, INTERNET, "HTTPS from the internet")] if p < 5 or edge.alb_faces_clients(cfg) else []),
            Rule("app", HTTP, "lb", "load balancer to nginx on app instances"),
        ]
        if cfg.climb.keep_single_host:  # the phase-1 VM (app tier, public subnet) serves until DNS moved
            rules.append(SINGLE_HOST_RULE)
    else:
        clients = ("eks",)
        tiers = ["db", "redis"]

    if cfg.uses_pgbouncer and p <= 5:
        tiers += ["pgbouncer-nlb", "pgbouncer"]
        rules += [Rule("pgbouncer-nlb", PGBOUNCER, c, f"{c} to the PgBouncer NLB") for c in clients]
        rules.append(Rule("pgbouncer", PGBOUNCER, "pgbouncer-nlb", "NLB to PgBouncer (traffic and health checks)"))
        rules.append(Rule("db", POSTGRES, "pgbouncer", "only PgBouncer reaches PostgreSQL"))
    if not (cfg.uses_pgbouncer and p <= 5) or cfg.app_database_route == "direct":
        # Phases 1-2, and the first `up` of the 2 -> 3 climb (the app stays direct while PgBouncer
        # comes up). The `up` that moves the app keeps them too (ladder.climb, Firewall later_rules).
        rules += direct_db_rules(cfg)
    rules += [Rule("redis", REDIS, c, f"{c} to Redis") for c in clients]

    outbound = tuple(t for t in tiers if t not in ("db", "redis"))
    return FirewallPlan(tuple(tiers), tuple(rules), outbound, external=("eks",) if p == 6 else ())
