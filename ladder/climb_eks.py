"""The 5 -> 6 climb and the step back 6 -> 5, as steps the program enforces (README,
"Climbing, step by step"). Judged against the stack's own last outputs, like ladder/climb.py
(the 1 -> 5 climbs), by pure functions over plain values.

5 -> 6 takes two `pulumi up`s:
1. `phase: 6` with `climb.keepEc2Tier: true`: EKS, the workloads and the Ingress's ALB come up
   beside the phase-5 EC2 tier (app and worker groups, their ALB, the PgBouncer hosts), which
   the program still builds as phase 5 did. CloudFront's app origin moves to the Ingress's ALB
   only after the app Deployment is ready (Pulumi awaits its rollout; its pods are ready only
   once the ALB reports them healthy: components/workloads.py), so the distribution depends on
   it. The `up` records `eksServed` (resolved only after that distribution update).
   With `app.certificateArn` CloudFront's origin is `cdn.originDomain`, a DNS name the
   operator manages: it still points at the phase-5 ALB; point it at the `ingressHostname`
   output, then confirm with `climb.originDomainTarget: <that hostname>`.
2. Remove `climb.keepEc2Tier`: the EC2 tier goes. Refused while the last `up` has not recorded
   `eksServed`, and, with a certificate, while `climb.originDomainTarget` is not the
   `ingressHostname` that `up` recorded.

Why the operator confirms DNS instead of the program managing the record: the name may live
in any DNS service (or a Route 53 zone in another account); the program cannot see where it
resolves, and the confirmation names the exact load balancer the previous `up` made.

6 -> 5 is the same in reverse: `phase: 6` with `climb.keepEc2Tier: true` first (the EC2 tier
comes up beside EKS, the groups wait for healthy targets), then `phase: 5`; with a
certificate, point `cdn.originDomain` at the `ec2AlbHostname` output and confirm it in
`climb.originDomainTarget` first. Phase 5 with the last `up` at 6 and no kept EC2 tier is
refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .config import ConfigError, StackConfig, key

OUT_PHASE = "phase"
OUT_EKS_SERVED = "eksServed"
"""The Ingress's ALB hostname, resolved only once the distribution (which depends on the ready
app Deployment) was created or updated in that `up`."""
OUT_INGRESS = "ingressHostname"
OUT_EC2_KEPT = "ec2TierKept"
"""True when a phase-6 `up` built the EC2 tier beside EKS."""
OUT_EC2_ALB = "ec2AlbHostname"
"""The phase-5 tier's ALB DNS name, while it exists."""
PREVIOUS_KEYS = (OUT_PHASE, OUT_EKS_SERVED, OUT_INGRESS, OUT_EC2_KEPT, OUT_EC2_ALB)


def _phase(previous: Mapping[str, Any]) -> int | None:
    value = previous.get(OUT_PHASE)
    return None if value in (None, "") else int(value)


def ec2_tier_deployed(previous: Mapping[str, Any]) -> bool:
    """The last `up` left the EC2 app tier (phases 2-5, or phase 6 that kept it)."""
    phase = _phase(previous)
    return phase is not None and (2 <= phase <= 5 or (phase == 6 and bool(previous.get(OUT_EC2_KEPT))))


def eks_deployed(previous: Mapping[str, Any]) -> bool:
    return _phase(previous) == 6


def problems(cfg: StackConfig, previous: Mapping[str, Any]) -> list[str]:
    """Why this `up` would take the app off its serving path between phases 5 and 6; [] if none."""
    out: list[str] = []
    keep = cfg.climb.keep_ec2_tier
    https = cfg.app.certificate_arn is not None
    target = cfg.climb.origin_domain_target
    if cfg.phase == 6 and not keep and ec2_tier_deployed(previous):
        served = previous.get(OUT_EKS_SERVED)
        if not served or not eks_deployed(previous):
            out.append(
                f"{key('climb.keepEc2Tier')}: the EC2 tier (load balancer, app and worker groups, PgBouncer hosts) "
                "is the app's serving path and no `pulumi up` has brought the EKS path up serving yet (the app "
                "Deployment ready behind the Ingress's load balancer, CloudFront moved to it: output "
                f"{OUT_EKS_SERVED}); set true for this `pulumi up` and remove it in the next; allowed now: true")
        elif https and target != previous.get(OUT_INGRESS):
            out.append(
                f"{key('climb.originDomainTarget')}: CloudFront reaches the app at {key('cdn.originDomain')} "
                f"({cfg.cdn.origin_domain}), which must point at the Ingress's load balancer before the EC2 tier "
                f"goes; point it there and set this key to the {OUT_INGRESS} output (got {target!r}); allowed "
                f"now: {previous.get(OUT_INGRESS)!r} (or keep {key('climb.keepEc2Tier')}: true)")
    if cfg.phase == 5 and eks_deployed(previous):
        if not previous.get(OUT_EC2_KEPT):
            out.append(
                f"{key('phase')}: stepping back to 5 would point CloudFront at a load balancer with no app hosts "
                f"behind it yet; first `pulumi up` at phase 6 with {key('climb.keepEc2Tier')}: true (the EC2 tier "
                "comes up healthy beside EKS), then phase 5; allowed now: 6")
        elif https and target != previous.get(OUT_EC2_ALB):
            out.append(
                f"{key('climb.originDomainTarget')}: CloudFront reaches the app at {key('cdn.originDomain')} "
                f"({cfg.cdn.origin_domain}), which must point at the EC2 tier's load balancer before EKS goes; "
                f"point it there and set this key to the {OUT_EC2_ALB} output (got {target!r}); allowed now: "
                f"{previous.get(OUT_EC2_ALB)!r}")
    return out


def check(cfg: StackConfig, previous: Mapping[str, Any]) -> bool:
    """Raise ConfigError (naming the key) for a refused step; else True (a value to depend on)."""
    found = problems(cfg, previous)
    if found:
        raise ConfigError(found)
    return True
