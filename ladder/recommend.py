"""`python -m ladder recommend`: which phase fits today's load, and what it costs.

The rule, from the one catalog of capacity targets and triggers (ladder/phases.py, the
same thresholds the stacks' alarms use):
1. Capacity: the lowest phase whose targets cover both the concurrent users and the
   messages per day. Beyond phase 6's target the answer stays 6 (scale its knobs).
2. Triggers: the measurements given (p95, CPU, error rate, queue depth ...) are taken on
   the phase that fits. A trigger fires when its value exceeds the threshold. Any fired
   trigger means that phase is already saturated at this load, so the recommendation
   moves one rung up (at most phase 6), once, however many fired.
The recommended phase's monthly cost and cost per 1,000 users come from `ladder cost`
on its preset stack (`phaseN`).
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import asdict, dataclass
from typing import Any

from rich.console import Console
from rich.table import Table

from .cli import COMMANDS
from .cost import cost_of, usd
from .phases import PHASES, TRIGGERS, Trigger

TOP = max(PHASES)
# Short spellings accepted besides the flag derived from each trigger key.
ALIASES = {"p95LatencyMs": ["--p95-ms"], "errorRatePercent": ["--error-rate"], "cpuPercent": ["--cpu"]}


def flag(trigger: Trigger) -> str:
    return "--" + re.sub(r"(?<!^)(?=[A-Z])", "-", trigger.key).lower()


def fitting_phase(users: int, messages_per_day: int) -> int:
    for n, spec in sorted(PHASES.items()):
        if spec.concurrent_users >= users and spec.messages_per_day >= messages_per_day:
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
    reason = (f"phase {fits} ({spec.name}) is the lowest whose target covers {users:,} users and "
              f"{messages_per_day:,} messages/day (target {spec.concurrent_users:,} / {spec.messages_per_day:,})")
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
        report = cost_of(f"phase{rec.phase}")
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
        console.print(f"Phase {rec.phase} preset: ${usd(rec.monthly_usd)}/month, ${usd(rec.per_1000_users_usd)} per "
                      f"1,000 concurrent users (`python -m ladder cost phase{rec.phase}` for the line items)")
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
