"""`python -m ladder policy STACK|--all`: the policy pack's rules applied to the offline plan.

The second runner of `policy/rules.py` (the first is the CrossGuard pack in
`policy/__main__.py`, which the Pulumi CLI loads). Same rule functions; this side
turns a `Plan` into the rules' `Resource` view: secrets unwrapped (CrossGuard sees
plain values too), Kubernetes names the provider would assign filled in, and every
property's references resolved by the ids, ARNs and names the mocks answered (the
real engine hands policies these as property dependencies).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from typing import Any

from policy import rules

from . import engine
from .cli import COMMANDS


@dataclass(frozen=True)
class Violation:
    rule: str
    level: str  # "mandatory" blocks (exit 1, and `pulumi up` with the pack); "advisory" warns
    urn: str
    type: str
    name: str
    message: str


def _plain(value: Any) -> Any:
    if isinstance(value, engine.Secret):
        return _plain(value.value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


# Outputs other resources refer to a resource by (besides its id).
_HANDLES = ("arn", "name", "bucket", "identifier")


def views(plan: engine.Plan) -> list[rules.Resource]:
    """The plan's resources as the rules see them."""
    handles: dict[str, set[str]] = {}
    for r in plan.resources:
        # The EKS cluster's own security group is an output of the cluster: under the real engine a
        # rule referring to it has the cluster as its property dependency.
        nested = [r.state["vpcConfig"].get("clusterSecurityGroupId")] if isinstance(r.state.get("vpcConfig"), dict) else []
        for handle in [r.id, r.urn, *(r.state.get(k) for k in _HANDLES), *nested]:
            if isinstance(handle, str) and handle:
                handles.setdefault(handle, set()).add(r.urn)
    out = []
    for r in plan.resources:
        props = _plain(r.inputs)
        if r.type.startswith("kubernetes:") and isinstance(r.state.get("metadata"), dict):
            # The provider auto-names objects that set no metadata.name before policies see them.
            props = {**props, "metadata": {**r.state["metadata"], **(props.get("metadata") or {})}}
        refs = {key: tuple(sorted({u for s in engine.strings(value) for u in handles.get(s, ()) if u != r.urn}))
                for key, value in props.items()}
        out.append(rules.Resource(type=r.type, name=r.name, urn=r.urn, props=props,
                                  protect=bool(r.options.get("protect")),
                                  retain_on_delete=bool(r.options.get("retainOnDelete")),
                                  refs={k: v for k, v in refs.items() if v}))
    return out


def mandatory(violations: list[Violation]) -> list[Violation]:
    return [v for v in violations if v.level == "mandatory"]


def check(plan: engine.Plan, selected: list[rules.Rule] | None = None) -> list[Violation]:
    """Every violation of every rule (or of `selected`) in the plan."""
    resources = views(plan)
    return [Violation(rule.name, rule.level, res.urn, res.type, res.name, message)
            for rule in (selected or rules.RULES) for res, message in rules.apply(rule, resources)]


# ---------------------------------------------------------------------------
# CLI


def _args(p: argparse.ArgumentParser) -> None:
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("stack", nargs="?", help="preset stack name, e.g. phase2")
    which.add_argument("--all", action="store_true", help="every preset stack")
    which.add_argument("--rules", action="store_true", help="list the rules with their remediation")
    p.add_argument("--json", action="store_true", help="machine-readable violations")


def cmd_policy(args: argparse.Namespace) -> int:
    if args.rules:
        for r in rules.RULES:
            print(f"{r.name}{' (advisory)' if r.level != 'mandatory' else ''}: {r.description}\n"
                  f"    fix: {r.remediation}")
        advisory = sum(r.level != "mandatory" for r in rules.RULES)
        print(f"\n{len(rules.RULES)} rules: {len(rules.RULES) - advisory} mandatory, {advisory} advisory")
        return 0
    stacks = engine.stack_names() if args.all else [args.stack]
    found: dict[str, list[Violation]] = {}
    for stack in stacks:
        plan = engine.run(stack)
        found[stack] = check(plan)
        if not args.json:
            blocking = len(mandatory(found[stack]))
            warnings = len(found[stack]) - blocking
            status = f"{blocking} violation(s)" if blocking else "ok"
            status += f", {warnings} advisory" if warnings else ""
            print(f"{stack}: {len(plan.resources)} resources, {len(rules.RULES)} rules: {status}")
            for v in found[stack]:
                print(f"  {'warn ' if v.level != 'mandatory' else 'FAIL '}[{v.rule}] {v.type} {v.name}: {v.message}")
    if args.json:
        print(json.dumps({s: [asdict(v) for v in vs] for s, vs in found.items()}, indent=2))
    return 1 if any(mandatory(vs) for vs in found.values()) else 0


COMMANDS["policy"] = ("the policy pack's rules on the offline plan; exit 1 on a mandatory violation", _args, cmd_policy)
