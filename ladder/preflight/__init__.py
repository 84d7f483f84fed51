"""Preflight: what `pulumi preview` (the provider's checks) and `pulumi up` (AWS's refusals)
would reject, checked on the offline plan before it is accepted.

`check` runs the provider's rules (`provider.py`, ported from terraform-provider-aws) and
AWS's rules (`aws.py`, from the AWS documentation) over a plan; the engine raises
`PreflightError` with every violation, one line each, like a failed preview.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from .base import Violation

__all__ = ["PreflightError", "Violation", "check", "format_violation"]


def _provider_rules() -> Callable[[Any], list[Violation]] | None:
    """The provider's rules, when `provider.py` exists (it is written alongside this file)."""
    try:
        module = importlib.import_module(f"{__name__}.provider")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.provider":
            raise  # a broken import inside provider.py must not pass as "no provider rules"
        return None
    rules: Callable[[Any], list[Violation]] = module.check_provider
    return rules


def check(plan: Any, previous_outputs: dict[str, Any] | None = None) -> list[Violation]:
    """Every violation in `plan`: the provider's first (preview fails before up), then AWS's;
    each group in resource order, so the same plan always prints the same report.

    `previous_outputs` are the deployed stack's outputs (absent: a new stack); the rules about
    changes (engine downgrades, major upgrades) compare with them.
    """
    from . import aws

    order = {r.urn: i for i, r in enumerate(plan.resources)}
    provider = _provider_rules()
    groups = [provider(plan) if provider is not None else [], aws.check_aws(plan, previous_outputs)]
    # within a group: by the resource's place in the plan; sorted() is stable, so one
    # resource's violations keep the rules' order
    return [v for group in groups for v in sorted(group, key=lambda v: order.get(v.urn, len(order)))]


def _shown(value: Any) -> str:
    """A value as the report prints it: secrets (anywhere inside) as [secret]."""
    from ..engine import public

    return repr(public(value))


def format_violation(v: Violation) -> str:
    """One report line: resource, input, value, rule, source (the shape of a preview error)."""
    return f"{v.type} {v.name!r}: {v.input} = {_shown(v.value)}: {v.rule} [{v.source}]"


class PreflightError(Exception):
    """The plan has inputs the provider or AWS would refuse; `violations` lists them."""

    def __init__(self, violations: list[Violation]) -> None:
        self.violations = list(violations)
        lines = [format_violation(v) for v in self.violations]
        count = len(lines)
        head = f"preflight: {count} input{'s' if count != 1 else ''} the provider or AWS would refuse:"
        super().__init__("\n".join([head, *(f"  {line}" for line in lines)]))
