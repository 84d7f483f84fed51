"""Which step of a climb one `pulumi up` may take, judged against what the last `up` left.

A climb that changes the serving path takes several `up`s (README, "Climbing, step by
step"). The program records in its stack outputs what each `up` brought to a serving state
and reads them back next time (components/phase.py, through a StackReference to the stack
itself), so it can refuse, naming the key, a step whose new path has not served yet:

- 1 -> 2: the phase-1 VM (its Elastic IP is the app's address) stays while
  `climb.keepSingleHost` is set; it may go only once the load balancer has served
  (the app group was created with healthy targets: `min_elb_capacity`).
- 2 -> 3: the app moves to PgBouncer (`climb.appDatabaseRoute: pgbouncer`) only once a
  previous `up` created the PgBouncer group with healthy NLB targets
  (`wait_for_elb_capacity`); the direct app -> RDS rules stay until the `up` after the move.
- the step backs 2 -> 1 and 3 -> 2 go through the same intermediate states in reverse.
- after a rolling change (the hosts' launch templates changed, their instance refresh started and
  not awaited): the `up` that removes the old path (2 -> 3 step 3: the direct app -> RDS rules;
  3 -> 4 step 3: cluster mode `enabled`, which ends the primary endpoint) only once
  `climb.refreshedTemplates` confirms the template versions that `up` recorded.
- one phase at a time: phase 6 straight from phases 1-4 is refused (5 -> 6: ladder/climb_eks.py).
- `cdn.apiPath` (phases 5-6) moves between `cloudfront` and `loadBalancer` only through an `up` that
  serves both (phase 5 with `climb.keepAlbOpen`: the load balancer open to the internet with its
  REGIONAL web ACL while CloudFront still carries the API); DNS moves while both serve
  (docs/api-path.md). Phase 6 has no such state: the switch is refused there.

Stacks deployed before an output existed lack it: a last `up` at phase 1 without `fleetServed`
counts as the VM being the only serving path, whether or not `singleHostIp` was recorded.

Pure functions over plain values: the tests call them directly and through the program.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import aws_facts, edge
from .config import ConfigError, StackConfig, key

# Stack outputs the program writes for the next `up` to read (one name each, used by both sides).
OUT_PHASE = "phase"
OUT_SINGLE_HOST = "singleHostIp"  # the phase-1 VM's Elastic IP, while the VM exists
OUT_SINGLE_HOST_TYPE = "singleHostType"  # the phase-1 VM's instance type (kept while climb.keepSingleHost)
OUT_FLEET_SERVED = "fleetServed"  # the app group (or nginx LB host), resolved once it has served
OUT_DB_ROUTE = "appDatabaseRoute"  # the route the app hosts of that `up` were given
OUT_PGBOUNCER_SERVED = "pgbouncerGroup"  # the PgBouncer group, resolved once its NLB targets are healthy
OUT_AMI = "hostsAmi"  # the AMI the x86_64 EC2 hosts were launched from (every host, before arm64 hosts)
OUT_AMI_ARM64 = "hostsAmiArm64"  # the AMI the arm64 (Graviton) EC2 hosts were launched from
# The output keeping each CPU architecture's AMI (ladder/aws_facts.py names; components/app_host.py).
AMI_OUTPUTS = {aws_facts.X86_64: OUT_AMI, aws_facts.ARM64: OUT_AMI_ARM64}
OUT_CDN = "cdnDistributionArn"  # the CloudFront distribution, once created
OUT_ALB_OPEN = "albOpen"  # phase 5: the load balancer served direct clients (climb.keepAlbOpen, cdn.apiPath loadBalancer)
OUT_API_PATH = "apiPath"  # phases 5-6: cloudfront | loadBalancer | both (ladder.edge.api_path_state)
# Rolling changes: the launch template versions the last `up` wrote (its instance refresh rolls the
# hosts onto them, not awaited by `pulumi up`), and what that `up` kept of the old path.
OUT_APP_TEMPLATE = "appTemplateVersion"  # the app group's launch template (ALB mode; nginx mode has none)
OUT_WORKER_TEMPLATE = "workerTemplateVersion"  # the worker group's launch template
OUT_DIRECT_DB_RULES = "directDbRules"  # the direct app/workers -> RDS rules stayed beside PgBouncer's
OUT_REDIS_MODE = "redisClusterMode"  # the Redis group's cluster mode
REFRESH_KEYS = (OUT_APP_TEMPLATE, OUT_WORKER_TEMPLATE, OUT_DIRECT_DB_RULES, OUT_REDIS_MODE)
PREVIOUS_KEYS = (OUT_PHASE, OUT_SINGLE_HOST, OUT_FLEET_SERVED, OUT_DB_ROUTE, OUT_PGBOUNCER_SERVED, OUT_AMI, OUT_CDN,
                 OUT_ALB_OPEN, OUT_API_PATH, *REFRESH_KEYS)


@dataclass(frozen=True)
class Step:
    """What this `up` keeps of the old path, decided from the previous outputs."""

    keep_direct_db_rules: bool  # app/workers -> RDS security-group rules beside PgBouncer's


def previous_route(previous: Mapping[str, Any]) -> str | None:
    """The route the deployed app hosts use (None for a stack never deployed)."""
    if previous.get(OUT_DB_ROUTE):
        return str(previous[OUT_DB_ROUTE])
    phase = previous.get(OUT_PHASE)
    if phase in (None, ""):
        return None
    return "direct" if int(phase) <= 2 else "pgbouncer"


def refreshed_templates(previous: Mapping[str, Any]) -> str | None:
    """The `climb.refreshedTemplates` value that confirms the last `up`'s templates ("APP/WORKER",
    `-` for nginx mode's app hosts, which are instances); None when that `up` had no groups."""
    worker = previous.get(OUT_WORKER_TEMPLATE)
    if worker in (None, ""):
        return None
    app = previous.get(OUT_APP_TEMPLATE)
    return f"{'-' if app in (None, '') else int(app)}/{int(worker)}"


def _unrefreshed(cfg: StackConfig, previous: Mapping[str, Any], removes: str) -> list[str]:
    expected = refreshed_templates(previous)
    got = cfg.climb.refreshed_templates
    if expected is None or got == expected:
        return []
    return [
        f"{key('climb.refreshedTemplates')}: this `pulumi up` removes {removes}; the last `pulumi up` wrote the app/"
        f"worker launch templates {expected} (outputs {OUT_APP_TEMPLATE}/{OUT_WORKER_TEMPLATE}) and only started "
        "their instance refresh; once `aws autoscaling describe-instance-refreshes --auto-scaling-group-name "
        "<group>` says Successful for the app and worker groups, set this key to the versions they rolled onto "
        f"(got {got!r}); allowed now: {expected!r}"]


def problems(cfg: StackConfig, previous: Mapping[str, Any]) -> list[str]:
    """Why this `up` would take the app off its serving path; [] when it may go ahead."""
    out: list[str] = []
    deployed = bool(previous.get(OUT_PHASE))
    phase_before = int(previous[OUT_PHASE]) if deployed else None
    fleet_served = bool(previous.get(OUT_FLEET_SERVED))
    # A phase-1 stack deployed before `singleHostIp` existed still runs its VM (and no fleet).
    single_host = previous.get(OUT_SINGLE_HOST) or ("no singleHostIp recorded" if phase_before == 1 and not fleet_served
                                                    else None)
    vm_refused = 2 <= cfg.phase <= 6 and bool(single_host) and not fleet_served and not cfg.climb.keep_single_host
    if vm_refused:
        if cfg.phase == 2:
            out.append(
                f"{key('climb.keepSingleHost')}: the phase-1 VM ({single_host}) is the app's only serving path and "
                "no load balancer has served yet; set true for this `pulumi up` (the VM stays while the load "
                "balancer and groups come up healthy), point DNS at the `url` output, then remove it; "
                "allowed now: true")
        else:
            out.append(
                f"{key('phase')}: the phase-1 VM ({single_host}) is the app's only serving path; climb one phase "
                f"at a time: phase 2 with {key('climb.keepSingleHost')}: true first (got phase {cfg.phase}); "
                "allowed now: 1, 2")
    if cfg.phase == 6 and phase_before is not None and phase_before <= 4 and not vm_refused:
        out.append(
            f"{key('phase')}: the last `pulumi up` was at phase {phase_before}; climb one phase at a time (phase 6 "
            f"comes only from phase 5, through {key('climb.keepEc2Tier')}: true); got phase 6; allowed now: "
            + ", ".join(str(n) for n in range(max(1, phase_before - 1), phase_before + 2)))
    if cfg.phase == 1 and fleet_served and not single_host:
        out.append(
            f"{key('phase')}: stepping back to 1 would delete the load balancer the app is served from before a "
            f"VM serves; first `pulumi up` at phase 2 with {key('climb.keepSingleHost')}: true (the VM comes up "
            "beside the load balancer; point DNS at its `singleHostIp`), then phase 1; allowed now: 2")
    # 4 -> 5: from phase 5 the load balancer answers only CloudFront (origin-verify header, HTTPS);
    # clients whose DNS still points at it would get 403s until DNS moved to the distribution.
    if cfg.phase == 5 and phase_before == 4 and not previous.get(OUT_CDN) and not cfg.climb.keep_alb_open:
        out.append(
            f"{key('climb.keepAlbOpen')}: clients reach the load balancer directly and no CloudFront distribution "
            "serves yet; set true for this `pulumi up` (the load balancer keeps answering them while the "
            "distribution comes up), point DNS at the `url` output, then remove it; allowed now: true")
    if cfg.phase == 4 and phase_before == 5 and not previous.get(OUT_ALB_OPEN):
        out.append(
            f"{key('phase')}: stepping back to 4 deletes the distribution clients reach the app through while the "
            f"load balancer refuses them; first `pulumi up` at phase 5 with {key('climb.keepAlbOpen')}: true, point "
            "DNS at the load balancer (`originUrl`), then phase 4; allowed now: 5")
    out += _api_path_problems(cfg, previous)
    route = previous_route(previous)
    if (cfg.phase <= 5 and cfg.app_database_route == "pgbouncer" and deployed and route == "direct"
            and not previous.get(OUT_PGBOUNCER_SERVED)):
        out.append(
            f"{key('climb.appDatabaseRoute')}: the app reaches RDS directly and PgBouncer has not served yet "
            "(no previous `pulumi up` brought its group up with healthy NLB targets); set direct for this "
            "`pulumi up` (it creates the replicas and PgBouncer), then remove it to move the app; allowed now: direct")
    if not cfg.uses_pgbouncer and route == "pgbouncer":
        out.append(
            f"{key('phase')}: the app reaches RDS through PgBouncer, which phase {cfg.phase} removes; first "
            f"`pulumi up` at phase 3 with {key('climb.appDatabaseRoute')}: direct (the app moves back to RDS "
            "while PgBouncer still serves), then this phase; allowed now: 3")
    # The old path goes only once every host runs the templates the last `up` wrote.
    if previous.get(OUT_DIRECT_DB_RULES) and cfg.app_database_route == "pgbouncer":
        out += _unrefreshed(cfg, previous, "the direct app/workers -> RDS rules, which hosts not yet replaced "
                                           "still connect through")
    if previous.get(OUT_REDIS_MODE) == "compatible" and cfg.redis.cluster_mode == "enabled":
        out += _unrefreshed(cfg, previous, "Redis's primary endpoint (cluster mode enabled), which hosts not yet "
                                           "replaced still use")
    return out


def previous_api_path(previous: Mapping[str, Any]) -> str | None:
    """The API path the last `up` served (None without a distribution); stacks deployed before the
    `apiPath` output had CloudFront carry the API."""
    if previous.get(OUT_API_PATH):
        return str(previous[OUT_API_PATH])
    return "cloudfront" if previous.get(OUT_CDN) else None


def _api_path_problems(cfg: StackConfig, previous: Mapping[str, Any]) -> list[str]:
    """A switch of `cdn.apiPath` that would drop the path clients use before DNS moved: from
    `cloudfront` the distribution loses its app origin, from `loadBalancer` the load balancer
    closes to all but CloudFront. Both need an `up` that serves both ways first."""
    before = previous_api_path(previous)
    if cfg.phase < 5 or before not in ("cloudfront", "loadBalancer"):
        return []
    now = edge.api_path_state(cfg)
    if now in ("both", before):
        return []
    where = ("CloudFront would stop carrying the API while clients' DNS still points at it" if before == "cloudfront"
             else "the load balancer would refuse the clients that reach it directly")
    if cfg.phase == 6:
        return [f"{key('cdn.apiPath')}: the last `pulumi up` served the API by {before}; {where}, and phase 6 "
                f"has no `up` serving both; switch it in phase 5 (with {key('climb.keepAlbOpen')}: true first); "
                f"allowed now: {before}"]
    return [f"{key('climb.keepAlbOpen')}: the last `pulumi up` served the API by {before} and this one by {now}; "
            f"{where}; set true for this `pulumi up` (both paths serve: the load balancer open to the internet "
            "with its REGIONAL web ACL, CloudFront still carrying the API; with cdn.apiPath loadBalancer in that "
            "`up` HTTP is redirected, not forwarded), move the API's DNS name, then remove it; allowed now: true"]


def step(cfg: StackConfig, previous: Mapping[str, Any]) -> Step:
    """The step this `up` takes; raises ConfigError (naming the key) for a refused one."""
    found = problems(cfg, previous)
    if found:
        raise ConfigError(found)
    route = previous_route(previous)
    # The old direct rules go only in the `up` after every app host was given the PgBouncer route.
    keep = cfg.uses_pgbouncer and cfg.phase <= 5 and cfg.app_database_route == "pgbouncer" and route == "direct"
    return Step(keep_direct_db_rules=keep)
