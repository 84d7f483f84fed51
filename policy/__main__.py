"""scaleladder's CrossGuard policy pack: `pulumi preview --policy-pack policy`.

Each rule in `rules.py` becomes one policy (a resource policy, or a stack policy for
the rules that join resources); the same functions run offline in `python -m ladder
policy`. Mandatory unless the rule says advisory.
"""

from __future__ import annotations

from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyPack,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

try:  # imported as `policy.__main__` (tests, the repo root on sys.path)
    from . import rules
except ImportError:  # run by the Pulumi CLI: the pack directory is the script's directory
    import rules  # type: ignore[no-redef]

LEVELS = {"mandatory": EnforcementLevel.MANDATORY, "advisory": EnforcementLevel.ADVISORY}


def view(resource_type: str, name: str, urn: str, props: Any, protect: bool,
         property_dependencies: dict[str, list[Any]] | None = None) -> rules.Resource:
    """A CrossGuard resource as the rules see it. retainOnDelete is not passed to packs."""
    refs = {k: tuple(d.urn for d in deps) for k, deps in (property_dependencies or {}).items()}
    return rules.Resource(type=resource_type, name=name, urn=urn, props=props, protect=bool(protect),
                          retain_on_delete=None, refs=refs)


def resource_policy(rule: rules.Rule) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if args.resource_type not in rule.types:
            return
        resource = view(args.resource_type, args.name, args.urn, args.props, args.opts.protect)
        try:
            for message in rule.check(resource):
                report_violation(message, None)
        except rules.NotVisible as why:
            args.not_applicable(str(why))

    return ResourceValidationPolicy(name=rule.name, description=rule.description, validate=validate,
                                    enforcement_level=LEVELS[rule.level], remediation_steps=rule.remediation)


def stack_policy(rule: rules.Rule) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        stack = rules.Stack(view(r.resource_type, r.name, r.urn, r.props, r.opts.protect, r.property_dependencies)
                            for r in args.resources)
        for resource, message in rule.check(stack):
            report_violation(message, resource.urn)

    return StackValidationPolicy(name=rule.name, description=rule.description, validate=validate,
                                 enforcement_level=LEVELS[rule.level], remediation_steps=rule.remediation)


def policies() -> list[ResourceValidationPolicy | StackValidationPolicy]:
    return [stack_policy(r) if r.stack else resource_policy(r) for r in rules.RULES]


if __name__ == "__main__":
    PolicyPack(name="scaleladder", policies=policies(), enforcement_level=EnforcementLevel.MANDATORY,
               description="scaleladder: no public data, encryption everywhere, least-open network, "
                           "data that survives every phase change")
