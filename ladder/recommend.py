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
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import asdict, dataclass
from functools import cache
from typing import Any

from rich.console import Console
from rich.table import Table

from . import capacity, engine
from .cli import COMMANDS
from .cost import cost_of, usd
from .phases import PHASES, TRIGGERS, Trigger

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


def covers(phase: int, users: int, messages_per_day: int) -> bool:
    """Does the preset's maximum capacity carry the peak of this load?"""
    cap = preset_capacity(phase)
    peak = capacity.peak_load(users, messages_per_day, capacity.default_assumptions())
    return cap is None or (cap.requests_per_s >= peak.requests_per_s and cap.jobs_per_s >= peak.jobs_per_s)


def fitting_phase(users: int, messages_per_day: int) -> int:
    for n, spec in sorted(PHASES.items()):
        if spec.concurrent_users >= users and spec.messages_per_day >= messages_per_day \
                and covers(n, users, messages_per_day):
            return n
    return TOP


@dataclass
class Recommendation:
    concurrent_users: int
    messages_per_day: int
    fits: int
    fired: list[dict[str, Any]]
    phase: int
    reason: str
    monthly_usd: float | None = None
    per_1000_users_usd: float | None = None
    cost_error: str | None = None


def recommend(users: int, messages_per_day: int, metrics: dict[str, float | None]) -> Recommendation:
    fits = fitting_phase(users, messages_per_day)
    fired = [{"key": t.key, "description": t.description, "value": metrics[t.key], "threshold": t.threshold,
              "unit": t.unit} for t in TRIGGERS if (value := metrics.get(t.key)) is not None and value > t.threshold]
    spec = PHASES[fits]
    cap = preset_capacity(fits)
    reason = (f"phase {fits} ({spec.name}) is the lowest whose target covers {users:,} users and "
              f"{messages_per_day:,} messages/day (target {spec.concurrent_users:,} / {spec.messages_per_day:,})"
              + (f" and whose preset carries the peak at maximum scale ({cap.requests_per_s:,.0f} req/s, "
                 f"{cap.jobs_per_s:,.0f} jobs/s; capacity model)" if cap else ""))
    if fits == TOP and (users > spec.concurrent_users or messages_per_day > spec.messages_per_day):
        reason = f"the load exceeds phase {TOP}'s target; stay on phase {TOP} and raise its limits"
    phase = fits
    if fired:
        phase = min(fits + 1, TOP)
        names = ", ".join(str(f["description"]) for f in fired)
        reason += (f"; {len(fired)} trigger(s) fired on it ({names}), so one rung up" if phase > fits
                   else f"; trigger(s) fired ({names}) but phase {TOP} is the top rung: raise its limits")
    return Recommendation(users, messages_per_day, fits, fired, phase, reason)


def with_cost(rec: Recommendation) -> Recommendation:
    try:
        report = cost_of(f"phase{rec.phase}", users=max(rec.concurrent_users, 1),
                         messages_per_day=rec.messages_per_day)
        rec.monthly_usd, rec.per_1000_users_usd = report.total, report.per_1000_users
    except Exception as err:  # the preset of a phase under construction may not plan yet
        rec.cost_error = f"{type(err).__name__}: {err}"
    return rec


def cmd_recommend(args: argparse.Namespace) -> int:
    metrics = {t.key: getattr(args, t.key) for t in TRIGGERS}
    rec = with_cost(recommend(args.concurrent_users, args.messages_per_day, metrics))
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
        console.print(f"Phase {rec.phase} preset at this load: ${usd(rec.monthly_usd)}/month, "
                      f"${usd(rec.per_1000_users_usd)} per 1,000 concurrent users "
                      f"(`python -m ladder cost phase{rec.phase} --users {rec.concurrent_users}` for the line items)")
    else:
        console.print(f"[yellow]Cost of phase {rec.phase} unavailable:[/] {rec.cost_error}")
    return 0


def _recommend_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--concurrent-users", type=int, required=True, help="peak concurrent users today")
    p.add_argument("--messages-per-day", type=int, default=0, help="queue jobs per day today")
    for t in TRIGGERS:
        p.add_argument(flag(t), *ALIASES.get(t.key, []), dest=t.key, type=float, metavar="N",
                       help=f"measured {t.description}, {t.unit} (trigger over {t.threshold:g})")
    p.add_argument("--json", action="store_true", help="machine-readable answer")


COMMANDS["recommend"] = ("which phase fits today's load, which triggers fired, and its cost per 1,000 users",
                         _recommend_args, cmd_recommend)
