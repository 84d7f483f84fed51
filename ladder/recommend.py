"""`python -m ladder recommend`: which phase fits today's load, and what it costs.

The rule, from the one catalog of capacity targets and triggers (ladder/phases.py, the
same thresholds the stacks' alarms use):
1. Capacity: the lowest phase whose targets cover both the concurrent users and the
   messages per day, and whose preset's maximum capacity (ladder/capacity.py: requests/s
   and jobs/s at maximum scale) covers that load's peak. Beyond phase 6 the answer stays 6
   (scale its knobs).
2. Triggers: the measurements given (p95, CPU, error rate, queue depth ...) are taken on
   the phase that fits. A trigger fires when its value exceeds the threshold. Any fired
   trigger means that phase is already saturated at this load, so the recommendation
   moves one rung up (at most phase 6), once, however many fired.
The recommended phase's monthly cost and cost per 1,000 users come from `ladder cost`
on its preset stack (`phaseN`), priced at the given load (the same capacity model counts
its instances, pods and nodes).

What a switch saves (`savings`): for that preset, or the stack `--stack` names, every tier's
type switched to the cheapest catalog type of the same or more capacity (vCPUs, memory, the
capacity model's requests/s per app host, pods per EKS node; burstable only for burstable),
Graviton included, and Redis OSS -> Valkey. Each variant is a plan of its own
(`ladder.engine.run` with the one override) priced by `ladder.cost.price_plan` at the same
load, so a saving is the difference of two priced plans, never a second price formula.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import cache
from typing import Any

from rich.console import Console
from rich.table import Table

from . import aws_facts, capacity, engine, redis_settings
from .cli import COMMANDS
from .config import APP_IMAGE_TIERS, ConfigError, StackConfig
from .cost import cost_of, price_plan, usd
from .phases import PHASES, TRIGGERS, Trigger, deep_merge
from .preflight import PreflightError
from .prices import catalog

TOP = max(PHASES)
# Short spellings accepted besides the flag derived from each trigger key.
ALIASES = {"p95LatencyMs": ["--p95-ms"], "errorRatePercent": ["--error-rate"], "cpuPercent": ["--cpu"]}


def flag(trigger: Trigger) -> str:
    return "--" + re.sub(r"(?<!^)(?=[A-Z])", "-", trigger.key).lower()


@cache
def preset_capacity(phase: int) -> capacity.Capacity | None:
    """The preset stack's maximum capacity (None if the preset does not validate)."""
    try:
        return capacity.capacity_of(engine.validate_stack(engine.read_stack(f"phase{phase}"), stack=f"phase{phase}"))
    except Exception:  # a preset under construction: judged by its targets alone
        return None


def covers(phase: int, users: int, messages_per_day: float) -> bool:
    """Does the preset's maximum capacity carry the peak of this load?"""
    cap = preset_capacity(phase)
    peak = capacity.peak_load(users, messages_per_day, capacity.default_assumptions())
    return cap is None or (cap.requests_per_s >= peak.requests_per_s and cap.jobs_per_s >= peak.jobs_per_s)


def messages_per_user(phase: int) -> float:
    """The phase's target messages/day per concurrent user: what `cost --users N` scales the queue
    load by (cost._messages_per_user), so a load given as users alone is priced the same in both."""
    return PHASES[phase].messages_per_user


def fitting_phase(users: int, messages_per_day: float | None) -> int:
    """The lowest phase that fits; messages/day unknown (None) = users x that phase's messages per user."""
    for n, spec in sorted(PHASES.items()):
        messages = users * messages_per_user(n) if messages_per_day is None else messages_per_day
        if spec.concurrent_users >= users and spec.messages_per_day >= messages \
                and covers(n, users, messages):
            return n
    return TOP


@dataclass
class Recommendation:
    concurrent_users: int
    messages_per_day: float
    fits: int
    fired: list[dict[str, Any]]
    phase: int
    reason: str
    monthly_usd: float | None = None
    per_1000_users_usd: float | None = None
    cost_error: str | None = None
    savings_stack: str | None = None
    savings: list[dict[str, Any]] = field(default_factory=list)
    savings_error: str | None = None
    # Switches the config refuses for this stack (key, from, to, why): reported, not silently skipped.
    refused_switches: list[dict[str, Any]] = field(default_factory=list)
    # messages_per_day was not given: users x the priced phase's messages per user (as `cost --users`).
    messages_assumed: bool = False


def recommend(users: int, messages_per_day: float | None, metrics: dict[str, float | None]) -> Recommendation:
    """messages_per_day None: users x the phase's messages per user, as `cost --users` assumes."""
    fits = fitting_phase(users, messages_per_day)
    assumed = messages_per_day is None
    fired = [{"key": t.key, "description": t.description, "value": metrics[t.key], "threshold": t.threshold,
              "unit": t.unit} for t in TRIGGERS if (value := metrics.get(t.key)) is not None and value > t.threshold]
    spec = PHASES[fits]
    cap = preset_capacity(fits)
    fit_messages = users * messages_per_user(fits) if messages_per_day is None else messages_per_day
    reason = (f"phase {fits} ({spec.name}) is the lowest whose target covers {users:,} users and "
              f"{fit_messages:,.0f} messages/day" + (f" (assumed: {messages_per_user(fits):g} per user, the "
                                                      f"phase's target ratio; give --messages-per-day)" if assumed else "")
              + f" (target {spec.concurrent_users:,} / {spec.messages_per_day:,})"
              + (f" and whose preset carries the peak at maximum scale ({cap.requests_per_s:,.0f} req/s, "
                 f"{cap.jobs_per_s:,.0f} jobs/s; capacity model)" if cap else ""))
    if fits == TOP and (users > spec.concurrent_users or fit_messages > spec.messages_per_day):
        reason = f"the load exceeds phase {TOP}'s target; stay on phase {TOP} and raise its limits"
    phase = fits
    if fired:
        phase = min(fits + 1, TOP)
        names = ", ".join(str(f["description"]) for f in fired)
        reason += (f"; {len(fired)} trigger(s) fired on it ({names}), so one rung up" if phase > fits
                   else f"; trigger(s) fired ({names}) but phase {TOP} is the top rung: raise its limits")
    # The recommended phase is priced at this figure: with it assumed, `cost phaseN --users` gives the same total.
    messages = users * messages_per_user(phase) if messages_per_day is None else messages_per_day
    return Recommendation(users, messages, fits, fired, phase, reason, messages_assumed=assumed)


def with_cost(rec: Recommendation) -> Recommendation:
    try:
        report = cost_of(f"phase{rec.phase}", users=max(rec.concurrent_users, 1),
                         messages_per_day=rec.messages_per_day)
        rec.monthly_usd, rec.per_1000_users_usd = report.total, report.per_1000_users
    except Exception as err:  # the preset of a phase under construction may not plan yet
        rec.cost_error = f"{type(err).__name__}: {err}"
    return rec


# --- what a switch saves ------------------------------------------------------------------------


@dataclass(frozen=True)
class Tier:
    """A tier whose type a switch may change: its config key, whether the stack runs it, its type."""

    key: str
    runs: Callable[[StackConfig], bool]
    current: Callable[[StackConfig], str]

    def table(self, cfg: StackConfig) -> str:
        return redis_settings.node_price_table(cfg.redis.engine) if self.key == "redis.nodeType" else "ec2_instance_hour"


TIERS = (
    Tier("appTier.instanceType", lambda c: c.phase <= 5, lambda c: c.app_tier.instance_type),
    Tier("workers.instanceType", lambda c: 2 <= c.phase <= 5, lambda c: c.workers.instance_type),
    Tier("pgbouncer.instanceType", lambda c: c.uses_pgbouncer and c.phase <= 5, lambda c: c.pgbouncer.instance_type),
    Tier("eks.nodeInstanceType", lambda c: c.phase == 6, lambda c: c.eks.node_instance_type),
    Tier("redis.nodeType", lambda c: True, lambda c: c.redis.node_type),
)


def _burstable(type_: str) -> bool:
    """t-family types run at a baseline and spend credits above it ("Burstable performance instances",
    EC2 User Guide): their sustained capacity is not a fixed-performance type's, so neither replaces
    the other."""
    return aws_facts.burstable_family(type_.removeprefix("cache.")) is not None


def _spec(tier: Tier, type_: str) -> tuple[float, float] | None:
    """(vCPUs, memory GiB) of a type from ladder/aws_facts.py; None when a fact is missing (no guess)."""
    try:
        if tier.key == "redis.nodeType":
            vcpu, mem = aws_facts.ELASTICACHE_NODE_SPECS[type_]
            return float(vcpu), mem
        return float(capacity.vcpus(type_)), aws_facts.ec2_memory_gib(type_)
    except (KeyError, ValueError):
        return None


def same_or_more(tier: Tier, cfg: StackConfig, current: str, candidate: str) -> bool:
    """Does `candidate` carry at least what `current` does: vCPUs, memory, the same burstable class,
    and for app hosts the capacity model's requests/s at the stack's CPU target (a target the
    candidate can reach), for EKS nodes as many pods?"""
    now, new = _spec(tier, current), _spec(tier, candidate)
    if now is None or new is None or _burstable(current) != _burstable(candidate):
        return False
    if new[0] < now[0] or new[1] < now[1]:
        return False
    if tier.key == "appTier.instanceType":
        target = cfg.app_tier.cpu_target
        if capacity.target_tracking_problem(candidate, target) is not None:
            return False
        if capacity.host_rps(candidate, target) < capacity.host_rps(current, target):
            return False
    if tier.key == "eks.nodeInstanceType":
        return aws_facts.EKS_MAX_PODS.get(candidate, 0) >= aws_facts.EKS_MAX_PODS.get(current, 10**6)
    return True


def candidates(tier: Tier, cfg: StackConfig) -> list[str]:
    """Catalog types of the same or more capacity that cost less per hour than the current one,
    cheapest first (the first whose plan the config accepts is the one proposed)."""
    prices, table, current = catalog(), tier.table(cfg), tier.current(cfg)
    listed = prices.instance_types(cfg.region, table)
    if current not in listed:
        return []
    price = prices.price(cfg.region, table, current)
    found = [(prices.price(cfg.region, table, t), t) for t in listed
             if t != current and same_or_more(tier, cfg, current, t)]
    return [t for p, t in sorted(found) if p < price]


def _override(values: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """The stack's `scaleladder:*` values with `path` (section.key) set, deep-merged like a stack file."""
    out = copy.deepcopy(values)
    section, _, rest = path.partition(".")
    full = f"scaleladder:{section}"
    nested: dict[str, Any] = value
    for part in reversed(rest.split(".")):
        nested = {part: nested}
    out[full] = deep_merge(out[full], nested) if isinstance(out.get(full), dict) else nested
    return out


@cache
def _priced(stack: str, overrides: str, users: int, messages_per_day: float) -> float:
    """Monthly total of `stack` with `overrides` (JSON: [[path, value], ...]) at this load: one plan
    per variant, priced by the cost code; cached for the process."""
    values = engine.read_stack(stack)
    for path, value in json.loads(overrides):
        values = _override(values, path, value)
    plan = engine.run(stack, values=values).to_json()
    plan["source"] = stack
    return price_plan(plan, users=users, messages_per_day=messages_per_day, with_band=False).total


def _variants(cfg: StackConfig) -> list[tuple[str, str, list[tuple[str, list[tuple[str, Any]]]]]]:
    """(key, current, [(candidate, overrides), ...]) for every tier the stack runs, and the engine."""
    out = []
    for tier in TIERS:
        if tier.runs(cfg):
            options = [(t, [(tier.key, t), *_platform_override(cfg, tier.key, t)]) for t in candidates(tier, cfg)]
            out.append((tier.key, tier.current(cfg), options))
    if cfg.redis.engine == "redis":
        valkey = aws_facts.ELASTICACHE_ENGINE_VERSIONS["valkey"][-1]
        out.append(("redis.engine", "redis",
                    [("valkey", [("redis.engine", "valkey"), ("redis.engineVersion", valkey)])]))
    return out


def _platform_override(cfg: StackConfig, key: str, candidate: str) -> list[tuple[str, Any]]:
    """A switch of a tier running the app image to another CPU architecture is priced as if the image
    had that platform too (`app.imagePlatforms`, which the config checks); its caveat says so."""
    from .config import IMAGE_PLATFORM_OF_ARCHITECTURE

    platform = IMAGE_PLATFORM_OF_ARCHITECTURE.get(aws_facts.ec2_architecture(candidate))
    if key not in APP_IMAGE_TIERS or platform is None or platform in cfg.app.image_platforms:
        return []
    return [("app.imagePlatforms", [*cfg.app.image_platforms, platform])]


def caveats(cfg: StackConfig, key: str, current: str, candidate: str) -> list[str]:
    """What a switch costs besides money, each a short phrase (printed after the line, listed in --json)."""
    out: list[str] = []
    image = image_caveat(key, current, candidate)
    if image:
        out.append(image)
        if key == "appTier.instanceType" and cfg.phase == 1:
            out.append(VM_CAVEAT)
    if key == "redis.engine" and cfg.redis.replicas_per_shard == 0:
        out.append(VALKEY_NO_REPLICA_CAVEAT)
    if key == "eks.nodeInstanceType":
        out.append(NODE_GROUP_CAVEAT)
    return out


def switch_savings(stack: str, users: int, messages_per_day: float | None, tries: int = 3,
                   refused: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """What each switch saves on `stack` at this load: base total minus the variant's total, both
    priced plans. Per tier the cheapest candidate the config accepts whose total saves (at most
    `tries` plans: a cheaper hour can need more hosts or credits); the candidates the config or the
    preflight refuses go to `refused` with the reason. Any other error (a bug in a cost rule) raises.
    messages_per_day None: users x the stack's phase's messages per user, as `cost --users`."""
    cfg = engine.validate_stack(engine.read_stack(stack), stack=stack)
    if messages_per_day is None:
        messages_per_day = users * messages_per_user(cfg.phase)
    base = _priced(stack, "[]", users, messages_per_day)
    out: list[dict[str, Any]] = []
    for key, current, options in _variants(cfg):
        for candidate, overrides in options[:tries]:
            try:
                total = _priced(stack, json.dumps(overrides), users, messages_per_day)
            except (ConfigError, PreflightError) as err:  # a variant the config or the preflight refuses: try the next
                if refused is not None:
                    refused.append({"key": key, "from": current, "to": candidate,
                                    "reason": " ".join(str(err).split())})
                continue
            saved = round(base - total, 2)
            if saved > 0:
                out.append({"key": key, "from": current, "to": candidate, "monthly_usd_saved": saved,
                            "percent": round(100 * saved / base, 1) if base else 0.0,
                            "base_monthly_usd": base, "variant_monthly_usd": total,
                            "caveats": caveats(cfg, key, current, candidate)})
                break
    return out


# Tiers that run the user's app image (app/worker hosts, phase 1's VM, EKS nodes): the image may be
# amd64-only, so a switch to another CPU architecture is the user's call, never a preset's.
IMAGE_CAVEAT = "needs an arm64 or multi-arch image"
# EC2 keeps an instance's CPU architecture (components/app_host.vm_architecture_problems): the config
# refuses this switch once the VM is deployed; it holds for a new VM only.
VM_CAVEAT = "refused for a deployed VM, which keeps its CPU architecture"
# Phases 1-2 run one node per shard: AWS upgrades such a group with the primary unavailable (AWS
# Knowledge Center "How do I upgrade my Amazon ElastiCache for Redis engine version and what is the
# impact of upgrading?"); the config refuses it unless climb.acceptCacheInterruption is set.
VALKEY_NO_REPLICA_CAVEAT = "interrupts Redis during the upgrade (no replica)"
# instanceTypes/amiType force a new managed node group (terraform-provider-aws
# internal/service/eks/node_group.go): a deployed group's switch is refused unless
# eks.replaceNodeGroupFrom confirms it, with eks.nodesMin raised first (ladder/climb_eks.py).
NODE_GROUP_CAVEAT = ("replaces aws:eks/nodeGroup (new group at eks.nodesMin, old one drained): raise eks.nodesMin "
                     "and confirm with eks.replaceNodeGroupFrom")


def image_caveat(key: str, current: str, candidate: str) -> str | None:
    """The caveat of a switch that moves a tier running the app image to another CPU architecture."""
    if key not in APP_IMAGE_TIERS:
        return None
    if aws_facts.ec2_architecture(candidate) == aws_facts.ec2_architecture(current):
        return None
    return IMAGE_CAVEAT if aws_facts.ec2_architecture(candidate) == aws_facts.ARM64 else "needs an amd64 or multi-arch image"


def savings_line(s: dict[str, Any]) -> str:
    caveat = f" ({'; '.join(s['caveats'])})" if s.get("caveats") else ""
    return (f"switch {s['key']} {s['from']} -> {s['to']}: -${usd(s['monthly_usd_saved'])}/month "
            f"(-{s['percent']:g} %){caveat}")


def with_savings(rec: Recommendation, stack: str | None = None) -> Recommendation:
    rec.savings_stack = stack or f"phase{rec.phase}"
    try:
        rec.savings = switch_savings(rec.savings_stack, max(rec.concurrent_users, 1),
                                     None if rec.messages_assumed else rec.messages_per_day,
                                     refused=rec.refused_switches)
    except Exception as err:  # noqa: BLE001 - the stack may not plan; the recommendation stands
        rec.savings_error = f"{type(err).__name__}: {err}"
    return rec


def cmd_recommend(args: argparse.Namespace) -> int:
    metrics = {t.key: getattr(args, t.key) for t in TRIGGERS}
    rec = with_cost(recommend(args.concurrent_users, args.messages_per_day, metrics))
    if not args.no_savings:
        rec = with_savings(rec, args.stack)
    if args.json:
        print(json.dumps(asdict(rec), indent=2))
        return 0
    console = Console(highlight=False, emoji=False)
    spec = PHASES[rec.phase]
    console.print(f"[bold]Recommended: phase {rec.phase} ({spec.name})[/]")
    console.print(rec.reason)
    table = Table(title="Triggers", title_justify="left")
    for col in ("trigger", "value", "threshold", "fired"):
        table.add_column(col, justify="left" if col == "trigger" else "right")
    fired = {f["key"] for f in rec.fired}
    for t in TRIGGERS:
        value = metrics[t.key]
        table.add_row(f"{t.description} ({flag(t)})", "-" if value is None else f"{value:g} {t.unit}",
                      f"{t.threshold:g} {t.unit}", "[red]yes[/]" if t.key in fired else "no")
    console.print(table)
    if rec.monthly_usd is not None and rec.per_1000_users_usd is not None:
        pointer = (f"`python -m ladder cost phase{rec.phase} --users {rec.concurrent_users}` for the line items"
                   if rec.messages_assumed else "`cost --users` assumes the phase's messages per user instead")
        console.print(f"Phase {rec.phase} preset at this load ({rec.messages_per_day:,.0f} messages/day): "
                      f"${usd(rec.monthly_usd)}/month, ${usd(rec.per_1000_users_usd)} per 1,000 concurrent users "
                      f"({pointer})")
    else:
        console.print(f"[yellow]Cost of phase {rec.phase} unavailable:[/] {rec.cost_error}")
    if rec.savings_error:
        console.print(f"[yellow]Savings of {rec.savings_stack} unavailable:[/] {rec.savings_error}")
    elif rec.savings_stack:
        console.print(f"What a switch saves on {rec.savings_stack} at this load (each alone, same or more capacity):")
        for s in rec.savings:
            console.print(f"  {savings_line(s)}")
        if not rec.savings:
            console.print("  nothing: every tier already runs the cheapest type of its capacity")
        for r in rec.refused_switches:
            console.print(f"  refused: {r['key']} {r['from']} -> {r['to']}: {r['reason']}")
    return 0


def _recommend_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--concurrent-users", type=int, required=True, help="peak concurrent users today")
    p.add_argument("--messages-per-day", type=int, default=None,
                   help="queue jobs per day today (default: users x the phase's messages per user, as "
                        "`cost --users` assumes)")
    for t in TRIGGERS:
        p.add_argument(flag(t), *ALIASES.get(t.key, []), dest=t.key, type=float, metavar="N",
                       help=f"measured {t.description}, {t.unit} (trigger over {t.threshold:g})")
    p.add_argument("--stack", metavar="NAME", help="price the switches on this stack (default: the recommended "
                                                   "phase's preset, phaseN)")
    p.add_argument("--no-savings", action="store_true", help="skip what a switch saves (one plan per variant)")
    p.add_argument("--json", action="store_true", help="machine-readable answer")


COMMANDS["recommend"] = ("which phase fits today's load, which triggers fired, and its cost per 1,000 users",
                         _recommend_args, cmd_recommend)
