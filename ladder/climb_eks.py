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
OUT_NODE_TYPE = "nodeInstanceType"
"""The instance type the phase-6 managed node group runs (what a later `up` keeps unless
`eks.nodeInstanceType` says otherwise)."""
LEGACY_NODE_INSTANCE_TYPE = "m6i.large"
"""Phase 6's preset node type before 1255550 (m6i.large -> m6i.xlarge): what a phase-6 stack deployed
before `nodeInstanceType` was recorded runs when it never set `eks.nodeInstanceType`."""
PREVIOUS_KEYS = (OUT_PHASE, OUT_EKS_SERVED, OUT_INGRESS, OUT_EC2_KEPT, OUT_EC2_ALB, OUT_NODE_TYPE)


def _phase(previous: Mapping[str, Any]) -> int | None:
    value = previous.get(OUT_PHASE)
    return None if value in (None, "") else int(value)


def ec2_tier_deployed(previous: Mapping[str, Any]) -> bool:
    """The last `up` left the EC2 app tier (phases 2-5, or phase 6 that kept it)."""
    phase = _phase(previous)
    return phase is not None and (2 <= phase <= 5 or (phase == 6 and bool(previous.get(OUT_EC2_KEPT))))


def eks_deployed(previous: Mapping[str, Any]) -> bool:
    return _phase(previous) == 6


def deployed_node_type(cfg: StackConfig, previous: Mapping[str, Any]) -> str | None:
    """The type the deployed node group runs (None when no phase-6 `up` left one): the recorded
    `nodeInstanceType`; for a stack deployed before that output, the key it sets, else the preset of
    then (LEGACY_NODE_INSTANCE_TYPE). A stack that set the key and changed it in the same edit as this
    upgrade cannot be told apart offline: its key is taken as what runs."""
    if not eks_deployed(previous):
        return None
    if previous.get(OUT_NODE_TYPE):
        return str(previous[OUT_NODE_TYPE])
    return cfg.eks.node_instance_type if cfg.node_type_explicit else LEGACY_NODE_INSTANCE_TYPE


def node_instance_type(cfg: StackConfig, previous: Mapping[str, Any]) -> str:
    """The type this `up`'s node group runs: a deployed group keeps its type unless the stack sets
    `eks.nodeInstanceType` (the preset's type is for new groups only, so a preset change never
    replaces a deployed group); a change the stack sets is refused by `problems` unless confirmed."""
    deployed = deployed_node_type(cfg, previous)
    return cfg.eks.node_instance_type if deployed is None or cfg.node_type_explicit else deployed


def _node_type_problems(cfg: StackConfig, previous: Mapping[str, Any]) -> list[str]:
    """EKS cannot change a managed node group's instance types or AMI type in place: both force a
    new group (terraform-provider-aws internal/service/eks/node_group.go, `instance_types` and
    `ami_type` ForceNew; resourceNodeGroupUpdate handles only the launch template, labels, scaling,
    taints and update config; ladder/diff.py REPLACE_FORCING). The group is auto-named, so Pulumi
    creates the new group at `desired_size = eks.nodesMin`, then deletes the old one, which EKS
    drains: at load the pods wait Pending on nodesMin nodes while Cluster Autoscaler adds nodes."""
    deployed = deployed_node_type(cfg, previous)
    wanted = node_instance_type(cfg, previous)
    if deployed is None or wanted == deployed or cfg.eks.replace_node_group_from == deployed:
        return []
    return [
        f"{key('eks.nodeInstanceType')}: the deployed node group runs {deployed} (output {OUT_NODE_TYPE}) and EKS "
        f"cannot change a managed node group's instance type or AMI type in place: {wanted} replaces the group "
        f"(a new one created at {key('eks.nodesMin')} = {cfg.eks.nodes_min} nodes, then the old one drained). To "
        f"change it safely: first set {key('eks.nodesMin')} to the nodes the current load needs on {wanted} "
        "(`kubectl get nodes` times the capacity ratio of the two types: the new group is created with that many "
        "nodes and Pulumi waits for it to be ACTIVE, not for every node Ready, before it deletes the old group), and "
        f"{key('eks.replaceNodeGroupFrom')}: {deployed} to confirm the replacement; lower {key('eks.nodesMin')} "
        f"and remove {key('eks.replaceNodeGroupFrom')} in the next `pulumi up`; allowed now: {deployed} (or unset)"]


def problems(cfg: StackConfig, previous: Mapping[str, Any]) -> list[str]:
    """Why this `up` would take the app off its serving path between phases 5 and 6; [] if none."""
    out: list[str] = _node_type_problems(cfg, previous) if cfg.phase == 6 else []
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
