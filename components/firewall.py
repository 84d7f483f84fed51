"""Firewall: one security group per tier and the rules between them, from
`ladder.topology.firewall_plan`. Rules are separate resources (never inline) so
later tiers (EKS) can add their own without fighting over the group."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from ladder.topology import CLOUDFRONT, FirewallPlan, Rule

from .base import Tags, Tier, tagged
from .cdn import CLOUDFRONT_ORIGIN_FACING


@dataclass(frozen=True)
class FirewallArgs:
    vpc_id: pulumi.Input[str]
    plan: FirewallPlan
    tags: Tags
    external: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)  # tier -> SG id made elsewhere
    # Rules known only from what is deployed (ladder.climb: the direct app -> RDS rules kept for
    # the `up` that moves the app to PgBouncer). Stack references resolve at preview too.
    later_rules: pulumi.Input[Sequence[Rule]] | None = None


class Firewall(Tier):
    TOKEN = "scaleladder:network:Firewall"

    def _source(self, source: str) -> dict[str, pulumi.Input[str]]:
        """A rule's source: an address range, CloudFront's managed prefix list, or a tier's group."""
        if "/" in source:
            return {"cidr_ipv4": source}
        if source == CLOUDFRONT:
            if getattr(self, "_cloudfront", None) is None:
                # Looked up by name: the list's id differs per region (VPC User Guide, "AWS-managed prefix lists").
                self._cloudfront = aws.ec2.get_managed_prefix_list_output(
                    name=CLOUDFRONT_ORIGIN_FACING, opts=pulumi.InvokeOutputOptions(parent=self)).id
            return {"prefix_list_id": self._cloudfront}
        return {"referenced_security_group_id": self.ids[source]}

    def __init__(self, name: str, args: FirewallArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(name, opts)
        self.args = args
        self.groups: dict[str, aws.ec2.SecurityGroup] = {
            # `<tier>-sg`, never `sg-<tier>`: Pulumi auto-names the group after its logical name and
            # the provider refuses a name beginning `sg-` (terraform-provider-aws
            # internal/service/ec2/vpc_security_group.go, name: StringDoesNotMatch(^sg-)).
            tier: aws.ec2.SecurityGroup(f"{tier}-sg", vpc_id=args.vpc_id, description=f"scaleladder {tier} tier",
                                        tags=tagged(args.tags, Name=f"{tier}-sg", tier=tier), opts=self.child())
            for tier in args.plan.tiers
        }
        self.ids: dict[str, pulumi.Input[str]] = {t: g.id for t, g in self.groups.items()} | dict(args.external)
        for rule in args.plan.rules:
            self._ingress(rule)
        later: pulumi.Input[Sequence[pulumi.Input[str]]] = (pulumi.Output.from_input(args.later_rules).apply(lambda rules: [self._ingress(r).id for r in rules])
                 if args.later_rules is not None else [])
        for tier in args.plan.outbound:
            aws.vpc.SecurityGroupEgressRule(f"{tier}-egress", security_group_id=self.ids[tier], ip_protocol="-1",
                                            cidr_ipv4="0.0.0.0/0", description="outbound: packages, images, AWS APIs",
                                            tags=args.tags, opts=self.child())
        self.register_outputs({**{f"{t}SecurityGroupId": g.id for t, g in self.groups.items()}, "laterRules": later})

    def _ingress(self, rule: Rule) -> aws.vpc.SecurityGroupIngressRule:
        args = self.args
        source = self._source(rule.source)
        return aws.vpc.SecurityGroupIngressRule(
            f"{rule.tier}-from-{rule.source.replace('/', '_')}-{rule.port}",
            security_group_id=self.ids[rule.tier], ip_protocol="tcp", from_port=rule.port, to_port=rule.port,
            description=rule.description, tags=args.tags, opts=self.child(), **source)
