"""Edge firewall: an AWS WAF web ACL with a per-IP rate-based rule and AWS managed rule
groups, in front of the ALB (REGIONAL) or CloudFront (CLOUDFRONT scope, which AWS only
accepts in us-east-1, whatever the stack's region). Which phase gets which: `ladder.edge`.

Rules, in evaluation order:
0. `rate-per-ip`: more than `rate_limit_per_minute` requests from one client address in a
   60 s window are blocked with 429 (a scope-down statement leaves `/static/` uncounted).
1.. the managed groups, as published (override `none`), except the common rule set's
   `SizeRestrictions_BODY`, which blocks any body over 8 KB (uploads, large JSON): counted,
   not blocked, since the app sets its own limit (nginx `client_max_body_size`).

An alarm fires when the web ACL blocks more than `blocked_alarm_percent` of its requests
(attack, or a limit set too low for real users); missing data is no traffic, not a breach.
CloudWatch alarms act only on topics of their own region, so a CloudFront web ACL (metrics in
us-east-1) gets its alarm and topic there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pulumi
import pulumi_aws as aws

from ladder.edge import RATE_RULE, UNLIMITED_PREFIX, WINDOW_SECONDS

from .base import Tags, Tier

w = aws.wafv2
BODY_SIZE_RULE = "SizeRestrictions_BODY"
COMMON_RULE_SET = "AWSManagedRulesCommonRuleSet"
ALB_ASSOCIATION = "alb"
"""Suffix of the phase-5 ALB's association, in phase 5 and beside EKS alike: a new name would make
Pulumi create the new association and then delete the old one, and that delete
(DisassociateWebACL takes only the load balancer's ARN: AWS CLI reference, `wafv2
disassociate-web-acl`) removes the web ACL from the ALB (review-cost-aws finding 1)."""


@dataclass(frozen=True)
class EdgeFirewallArgs:
    scope: Literal["REGIONAL", "CLOUDFRONT"]
    name: str
    """Web ACL name (also its metric name and the `WebACL` alarm dimension): [0-9A-Za-z_-], 1-128."""
    rate_limit_per_minute: int
    managed_rule_groups: Sequence[str]
    blocked_alarm_percent: float
    tags: Tags
    alarm_topic_arn: pulumi.Input[str] | None = None
    """REGIONAL: the stack's alarm topic. CLOUDFRONT: None, a us-east-1 topic is created."""
    alarm_email: str | None = None
    region: str = ""
    """The Region dimension of REGIONAL metrics; CloudFront metrics have none."""
    associate_arn: pulumi.Input[str] | None = None
    """REGIONAL: the load balancer to protect. CloudFront takes the ACL ARN as `web_acl_id` instead, and the
    phase-6 Ingress's ALB the annotation `alb.ingress.kubernetes.io/wafv2-acl-arn` (the controller associates it)."""
    trusted_header: tuple[str, pulumi.Input[str]] | None = None
    """REGIONAL, while CloudFront also sends the API to this ALB: (X-Origin-Verify, its secret value),
    requests the rate rule does not count (`rate_rule`)."""
    alarm_later: bool = False
    """Make the blocked-requests alarm only when `alarm_to` hands over a topic (phase 6: the stack's
    alarm topic, whose email subscription is confirmed, exists only after the workloads)."""


def _visibility(metric: str) -> w.WebAclRuleVisibilityConfigArgs:
    return w.WebAclRuleVisibilityConfigArgs(cloudwatch_metrics_enabled=True, metric_name=metric,
                                            sampled_requests_enabled=True)


def _not_static() -> w.WebAclRuleStatementRateBasedStatementScopeDownStatementArgs:
    s = w.WebAclRuleStatementRateBasedStatementScopeDownStatementArgs
    match = s(byte_match_statement=w.WebAclRuleStatementRateBasedStatementScopeDownStatementByteMatchStatementArgs(
        positional_constraint="STARTS_WITH", search_string=UNLIMITED_PREFIX,
        field_to_match=w.WebAclRuleStatementRateBasedStatementScopeDownStatementByteMatchStatementFieldToMatchArgs(
            uri_path=w.WebAclRuleStatementRateBasedStatementScopeDownStatementByteMatchStatementFieldToMatchUriPathArgs()),
        text_transformations=[
            w.WebAclRuleStatementRateBasedStatementScopeDownStatementByteMatchStatementTextTransformationArgs(
                priority=0, type="NONE")]))
    return s(not_statement=w.WebAclRuleStatementRateBasedStatementScopeDownStatementNotStatementArgs(statement=match))


def _without_header(name: str, value: pulumi.Input[str]) -> w.WebAclRuleStatementRateBasedStatementScopeDownStatementArgs:
    """Requests that do NOT carry header `name` with exactly `value` (WAF matches header names case
    insensitively; a byte match's search string is at most 50 bytes: pulumi_aws wafv2
    WebAclRuleStatementRateBasedStatementScopeDownStatement{ByteMatchStatement,...SingleHeader}Args;
    the origin secret is 48 letters and digits, components/cdn.py OriginVerify)."""
    s = w.WebAclRuleStatementRateBasedStatementScopeDownStatementArgs
    match = s(byte_match_statement=w.WebAclRuleStatementRateBasedStatementScopeDownStatementByteMatchStatementArgs(
        positional_constraint="EXACTLY", search_string=value,
        field_to_match=w.WebAclRuleStatementRateBasedStatementScopeDownStatementByteMatchStatementFieldToMatchArgs(
            single_header=w.WebAclRuleStatementRateBasedStatementScopeDownStatementByteMatchStatementFieldToMatchSingleHeaderArgs(
                name=name.lower())),
        text_transformations=[
            w.WebAclRuleStatementRateBasedStatementScopeDownStatementByteMatchStatementTextTransformationArgs(
                priority=0, type="NONE")]))
    return s(not_statement=w.WebAclRuleStatementRateBasedStatementScopeDownStatementNotStatementArgs(statement=match))


def rate_rule(limit_per_minute: int, trusted_header: tuple[str, pulumi.Input[str]] | None = None) -> w.WebAclRuleArgs:
    """The per-IP rule. `trusted_header` (name, secret value): requests carrying it came through
    CloudFront, whose own web ACL already counted them per client; at this ALB their source is one of
    CloudFront's origin-facing addresses, so counting them here would block CloudFront itself
    (review-cost-aws finding 2). They are left out of the count; the managed groups still inspect them."""
    scope = _not_static()
    if trusted_header is not None:
        scope = w.WebAclRuleStatementRateBasedStatementScopeDownStatementArgs(
            and_statement=w.WebAclRuleStatementRateBasedStatementScopeDownStatementAndStatementArgs(
                statements=[scope, _without_header(*trusted_header)]))
    return w.WebAclRuleArgs(
        name=RATE_RULE, priority=0,
        action=w.WebAclRuleActionArgs(block=w.WebAclRuleActionBlockArgs(
            custom_response=w.WebAclRuleActionBlockCustomResponseArgs(response_code=429))),
        statement=w.WebAclRuleStatementArgs(rate_based_statement=w.WebAclRuleStatementRateBasedStatementArgs(
            aggregate_key_type="IP", limit=limit_per_minute, evaluation_window_sec=WINDOW_SECONDS,
            scope_down_statement=scope)),
        visibility_config=_visibility(RATE_RULE))


def managed_rule(group: str, priority: int) -> w.WebAclRuleArgs:
    overrides = [w.WebAclRuleStatementManagedRuleGroupStatementRuleActionOverrideArgs(
        name=BODY_SIZE_RULE, action_to_use=w.WebAclRuleStatementManagedRuleGroupStatementRuleActionOverrideActionToUseArgs(
            count=w.WebAclRuleStatementManagedRuleGroupStatementRuleActionOverrideActionToUseCountArgs()))
    ] if group == COMMON_RULE_SET else None
    return w.WebAclRuleArgs(
        name=group, priority=priority,
        override_action=w.WebAclRuleOverrideActionArgs(none=w.WebAclRuleOverrideActionNoneArgs()),
        statement=w.WebAclRuleStatementArgs(managed_rule_group_statement=w.WebAclRuleStatementManagedRuleGroupStatementArgs(
            name=group, vendor_name="AWS", rule_action_overrides=overrides)),
        visibility_config=_visibility(group))


# The stack's `aws:` config keys an explicit provider must be handed (an explicit provider reads
# none of them), camelCase -> the provider argument. `region` is the one it must not take.
_PROVIDER_TEXT_KEYS = {"profile": "profile"}
_PROVIDER_KEYS = {
    "sharedConfigFiles": "shared_config_files",
    "sharedCredentialsFiles": "shared_credentials_files", "assumeRoles": "assume_roles",
    "assumeRoleWithWebIdentity": "assume_role_with_web_identity", "allowedAccountIds": "allowed_account_ids",
    "forbiddenAccountIds": "forbidden_account_ids", "defaultTags": "default_tags", "ignoreTags": "ignore_tags",
}
_SECRET_PROVIDER_KEYS = {"accessKey": "access_key", "secretKey": "secret_key", "token": "token"}


def cloudfront_provider() -> aws.Provider:
    """An AWS provider in us-east-1, where CloudFront web ACLs (and their metrics) live. An explicit
    provider reads none of the stack's `aws:` config, so the credentials, account guards and default
    tags go along (review finding: with only the profile it could write elsewhere, untagged)."""
    aws_cfg = pulumi.Config("aws")
    args: dict[str, Any] = {arg: aws_cfg.get(key) for key, arg in _PROVIDER_TEXT_KEYS.items() if aws_cfg.get(key)}
    for key, arg in _PROVIDER_KEYS.items():
        value = aws_cfg.get_object(key)
        if value is not None:
            args[arg] = value
    for key, arg in _SECRET_PROVIDER_KEYS.items():
        secret = aws_cfg.get_secret(key)
        if secret is not None:
            args[arg] = secret
    return aws.Provider("us-east-1", region="us-east-1", **args)


class EdgeFirewall(Tier):
    TOKEN = "scaleladder:edge:EdgeFirewall"

    def __init__(self, name: str, args: EdgeFirewallArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(name, opts)
        self._name = name
        self._args = args
        rules = [rate_rule(args.rate_limit_per_minute, args.trusted_header)]
        rules += [managed_rule(group, 10 + i) for i, group in enumerate(args.managed_rule_groups)]
        self.acl = w.WebAcl(
            f"{name}-acl", name=args.name, scope=args.scope, description="scaleladder edge: per-IP rate limit, AWS managed rules",
            default_action=w.WebAclDefaultActionArgs(allow=w.WebAclDefaultActionAllowArgs()), rules=rules,
            visibility_config=w.WebAclVisibilityConfigArgs(cloudwatch_metrics_enabled=True, metric_name=args.name,
                                                            sampled_requests_enabled=True),
            tags=args.tags, opts=self.child())
        if args.associate_arn is not None:
            self.associate(ALB_ASSOCIATION, args.associate_arn)
        self.blocked_alarm: aws.cloudwatch.MetricAlarm | None = None
        topic = args.alarm_topic_arn
        if args.alarm_later:
            self.register_outputs({"webAclArn": self.acl.arn})
            return
        if topic is None:
            own = aws.sns.Topic(f"{name}-alarms", tags=args.tags, opts=self.child())
            if args.alarm_email:
                aws.sns.TopicSubscription(f"{name}-alarms-email", topic=own.arn, protocol="email",
                                          endpoint=args.alarm_email, opts=self.child())
            topic = own.arn
        self.blocked_alarm = self._blocked_alarm(name, args, topic)
        self.register_outputs({"webAclArn": self.acl.arn})

    def alarm_to(self, topic: pulumi.Input[str]) -> aws.cloudwatch.MetricAlarm:
        """The blocked-requests alarm of a web ACL made with `alarm_later`, on the stack's topic (the
        same name and parent as when made at once, so its URN does not depend on when)."""
        assert self._args.alarm_later and self.blocked_alarm is None
        self.blocked_alarm = self._blocked_alarm(self._name, self._args, topic)
        return self.blocked_alarm

    def associate(self, suffix: str, resource_arn: pulumi.Input[str]) -> w.WebAclAssociation:
        """One more load balancer behind this REGIONAL web ACL (a web ACL may protect several): the
        phase-5 ALB kept beside EKS (climb.keepEc2Tier) while its clients still reach it directly, as
        `ALB_ASSOCIATION`, the name phase 5 gives it."""
        return w.WebAclAssociation(f"{self._name}-{suffix}", resource_arn=resource_arn, web_acl_arn=self.acl.arn,
                                   opts=self.child())

    def _blocked_alarm(self, name: str, args: EdgeFirewallArgs, topic: pulumi.Input[str]) -> aws.cloudwatch.MetricAlarm:
        dims = {"WebACL": args.name, "Rule": "ALL", **({"Region": args.region} if args.scope == "REGIONAL" else {})}

        def query(qid: str, metric: str) -> aws.cloudwatch.MetricAlarmMetricQueryArgs:
            return aws.cloudwatch.MetricAlarmMetricQueryArgs(id=qid, metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
                namespace="AWS/WAFV2", metric_name=metric, dimensions=dims, period=300, stat="Sum"))

        return aws.cloudwatch.MetricAlarm(
            f"{name}-blocked", alarm_description=f"Edge firewall blocks over {args.blocked_alarm_percent:g} % of requests",
            comparison_operator="GreaterThanThreshold", threshold=args.blocked_alarm_percent, evaluation_periods=1,
            datapoints_to_alarm=1, treat_missing_data="notBreaching",  # no data = no requests, nothing blocked
            metric_queries=[query("blocked", "BlockedRequests"), query("allowed", "AllowedRequests"),
                            aws.cloudwatch.MetricAlarmMetricQueryArgs(
                                id="share", return_data=True, label="blocked share of requests (%)",
                                expression=("IF(FILL(blocked, 0) + FILL(allowed, 0) > 0, 100 * FILL(blocked, 0) / "
                                            "(FILL(blocked, 0) + FILL(allowed, 0)), 0)"))],
            alarm_actions=[topic], ok_actions=[topic], tags=args.tags, opts=self.child())
