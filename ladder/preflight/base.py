"""What every preflight rule shares: the violation it reports and the rule shapes.

A rule is data with a source: the provider file and attribute it was ported from
(terraform-provider-aws `internal/service/...`, pulumi-aws `provider/resources.go`) or
the AWS documentation page that states the refusal. `check` in `ladder.preflight`
runs every rule over a plan and returns the violations; the engine refuses a plan
with any, like `pulumi preview` (provider checks) or `pulumi up` (AWS) would.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Violation:
    """One input of one resource that the provider or AWS would refuse."""

    urn: str
    type: str  # Pulumi type token, e.g. aws:ec2/securityGroup:SecurityGroup
    name: str  # logical name
    input: str  # camelCase input path, e.g. name, parameters[0].applyMethod
    value: Any
    rule: str  # what is wrong, in the provider's or AWS's words
    source: str  # where the rule comes from (provider file + attribute, or AWS doc page)

    def __str__(self) -> str:
        return f"{self.type} {self.name!r}: {self.input} = {self.value!r}: {self.rule} [{self.source}]"


Check = Callable[[Any], "str | None"]
"""A value check: None when the value is accepted, else the refusal in the provider's words."""


@dataclass(frozen=True)
class FieldRule:
    """A provider validation of one attribute (`ValidateFunc` in terraform-provider-aws)."""

    type: str  # Pulumi type token
    input: str  # camelCase attribute; `a.b` for a nested block, `a[].b` for every item of a list
    check: Check
    source: str
