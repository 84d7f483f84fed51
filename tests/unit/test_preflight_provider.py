"""The provider's validation (ladder/preflight/provider.py) and Pulumi autonaming
(ladder/preflight/naming.py): every rule fires on a realistic bad input and is silent on a
good one; autonaming gives the names pulumi-aws would, and refuses the names it would.

The table CASES holds, per rule (type, input), one bad and one good value; a test fails
when a rule has no case, so a new rule cannot land untested.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

import pytest

from ladder import engine
from ladder.engine import Resource, Secret
from ladder.preflight import format_violation
from ladder.preflight.naming import AUTONAMES, PLACEHOLDER_SUFFIX, UNNAMED_TYPES, physical_names
from ladder.preflight.provider import (
    ALARM,
    ASG,
    EKS,
    INSTANCE,
    KMS_ALIAS,
    KMS_KEY,
    LAUNCH_TEMPLATE,
    LB,
    LOG_GROUP,
    NODE_GROUP,
    OAC,
    POLICY,
    PROFILE,
    PROVIDER_RULES,
    RDS,
    RDS_PG,
    RDS_SUBNETS,
    REDIS,
    ROLE,
    ROLE_POLICY,
    SECRET,
    SG,
    SSM_PARAMETER,
    TG,
    WEB_ACL,
    check_provider,
    check_resource,
)

from . import plans

S3 = "aws:s3/bucket:Bucket"
ARN = "arn:aws:sns:us-east-1:123456789012:alarms-topic-c94ced0"


def res(type_: str, logical: str = "thing", /, **inputs: Any) -> Resource:
    """A minimal registered resource, as the engine records one."""
    return Resource(urn=f"urn:pulumi:test::scaleladder::{type_}::{logical}", type=type_, name=logical, parent=None,
                    custom=True, inputs=inputs, options={})


def with_path(path: str, value: Any) -> dict[str, Any]:
    """Inputs with `value` at `path` (`a.b` nested, `a[].b` in a one-item list)."""
    head, _, rest = path.partition(".")
    if not rest:
        return {head: value}
    if head.endswith("[]"):
        return {head[:-2]: [with_path(rest, value)]}
    return {head: with_path(rest, value)}


# (type, input): (bad, good) -- realistic values for what the program sets or could set.
CASES: dict[tuple[str, str], tuple[Any, Any]] = {
    (SG, "name"): ("sg-app", "app-sg"),
    (SG, "namePrefix"): ("sg-", "app-"),
    (SG, "description"): ("x" * 256, "scaleladder app tier"),
    (LB, "name"): ("internal-fleet", "fleet-alb"),
    (LB, "namePrefix"): ("fleet-alb", "alb-"),
    (LB, "loadBalancerType"): ("classic", "application"),
    (TG, "name"): ("fleet_app", "fleet-app"),
    (TG, "namePrefix"): ("pgbouncer-", "pgb-"),
    (TG, "deregistrationDelay"): (3601, 30),
    (TG, "port"): (0, 6432),
    (TG, "protocol"): ("HTTP2", "tcp"),
    (TG, "targetType"): ("instances", "instance"),
    (TG, "slowStart"): (10, 30),
    (TG, "healthCheck.healthyThreshold"): (1, 2),
    (TG, "healthCheck.unhealthyThreshold"): (11, 3),
    (TG, "healthCheck.interval"): (4, 15),
    (TG, "healthCheck.timeout"): (1, 5),
    (TG, "healthCheck.path"): ("health", "/health"),
    (TG, "healthCheck.port"): ("0", "traffic-port"),
    (TG, "healthCheck.protocol"): ("UDP", "tcp"),
    (RDS, "identifier"): ("scaleladder_db", "scaleladder-db"),
    (RDS, "identifierPrefix"): ("1db-", "db-"),
    (RDS, "finalSnapshotIdentifier"): ("scaleladder-prod_eu-db-final", "scaleladder-prod-eu-db-final"),
    (RDS, "backupRetentionPeriod"): (36, 7),
    (RDS, "backupWindow"): ("3:00-4:00", "03:00-04:00"),
    (RDS, "maintenanceWindow"): ("sunday:04:30-sunday:05:30", "Sun:04:30-Sun:05:30"),
    (RDS, "monitoringInterval"): (20, 60),
    (RDS_PG, "name"): ("db-params-pg16-", "db-params-pg16"),
    (RDS_SUBNETS, "name"): ("default", "db-subnets"),
    (REDIS, "replicationGroupId"): ("scaleladder-production-eu-west-1-blue-redis", "scaleladder-redis"),
    (REDIS, "description"): ("", "scaleladder Redis (app cache and BullMQ)"),
    (REDIS, "authToken"): (Secret("short-token"), Secret("a" * 48)),
    (REDIS, "authTokenUpdateStrategy"): ("rotate", "ROTATE"),
    (REDIS, "clusterMode"): ("on", "enabled"),
    (REDIS, "replicasPerNodeGroup"): (6, 1),
    (REDIS, "snapshotRetentionLimit"): (36, 7),
    (REDIS, "snapshotWindow"): ("2:00-3:00", "02:00-03:00"),
    (REDIS, "maintenanceWindow"): ("sun:5:30-sun:6:30", "sun:05:30-sun:06:30"),
    (REDIS, "logDeliveryConfigurations"): ([{"logType": "slow-log"}] * 3, [{"logType": "slow-log"}]),
    (REDIS, "logDeliveryConfigurations[].destinationType"): ("cloudwatch", "cloudwatch-logs"),
    (REDIS, "logDeliveryConfigurations[].logFormat"): ("JSON", "json"),
    (REDIS, "logDeliveryConfigurations[].logType"): ("slowlog", "slow-log"),
    (ROLE, "name"): ("eks-aws-load-balancer-controller-" + "x" * 32, "eks-aws-load-balancer-controller"),
    (ROLE, "namePrefix"): ("x" * 39, "eks-"),
    (ROLE, "path"): ("/" + "a" * 512, "/"),
    (ROLE, "description"): ("x" * 1001, "app hosts"),
    (ROLE, "maxSessionDuration"): (1800, 3600),
    (PROFILE, "name"): ("app host profile", "app-host-profile"),
    (POLICY, "name"): ("eks:lb-controller", "eks-lb-controller"),
    (ROLE_POLICY, "name"): ("app/access", "app-access"),
    (ROLE_POLICY, "role"): ("arn:aws:iam::123456789012:role/app-host-role", "app-host-role"),
    (SSM_PARAMETER, "name"): ("/" + "p" * 2048, "/scaleladder-phase1/app-image"),
    (SSM_PARAMETER, "description"): ("d" * 1025, "App image the hosts without an Auto Scaling group run"),
    (SSM_PARAMETER, "type"): ("string", "String"),
    (EKS, "name"): ("-scaleladder", "scaleladder-prod_eu"),
    (NODE_GROUP, "updateConfig.maxUnavailable"): (0, 1),
    (NODE_GROUP, "updateConfig.maxUnavailablePercentage"): (101, 33),
    (ALARM, "name"): ("", "db-cpu"),
    (ALARM, "comparisonOperator"): ("GreaterThan", "GreaterThanThreshold"),
    (ALARM, "evaluationPeriods"): (0, 3),
    (ALARM, "datapointsToAlarm"): (0, 2),
    (ALARM, "metricName"): ("", "CPUUtilization"),
    (ALARM, "namespace"): ("", "AWS/EC2"),
    (ALARM, "period"): (45, 300),
    (ALARM, "statistic"): ("Avg", "Average"),
    (ALARM, "extendedStatistic"): ("p101", "p95"),
    (ALARM, "alarmDescription"): ("x" * 1025, "Climb trigger: CPU utilisation"),
    (ALARM, "treatMissingData"): ("not-breaching", "notBreaching"),
    (ALARM, "okActions"): ([ARN] * 6, [ARN]),
    (ALARM, "insufficientDataActions"): ([ARN] * 6, [ARN]),
    (ALARM, "metricQueries[].id"): ("", "errors"),
    (ALARM, "metricQueries[].expression"): ("e" * 1025, "errors / requests * 100"),
    (ALARM, "metricQueries[].metric.metricName"): ("", "HTTPCode_Target_5XX_Count"),
    (ALARM, "metricQueries[].metric.namespace"): ("", "AWS/ApplicationELB"),
    (ALARM, "metricQueries[].metric.stat"): ("avg", "p99"),
    (LOG_GROUP, "name"): ("/aws/eks/scaleladder prod/cluster", "/aws/eks/scaleladder-phase6/cluster"),
    (ASG, "instanceRefresh.strategy"): ("rolling", "Rolling"),
    (ASG, "instanceRefresh.preferences.minHealthyPercentage"): (101, 90),
    (ASG, "instanceRefresh.preferences.maxHealthyPercentage"): (99, 200),
    (ASG, "instanceRefresh.preferences.instanceWarmup"): ("-1", "60"),
    (ASG, "instanceRefresh.preferences.checkpointDelay"): (-1, 0),
    (ASG, "launchTemplate.name"): ("lt", "fleet-app"),
    (ASG, "launchTemplate.version"): ("", "$Latest"),
    (LAUNCH_TEMPLATE, "name"): ("fleet app", "fleet-app"),
    (LAUNCH_TEMPLATE, "namePrefix"): ("f" * 100, "fleet-"),
    (INSTANCE, "metadataOptions.httpPutResponseHopLimit"): (0, 1),
    (INSTANCE, "metadataOptions.httpTokens"): ("Required", "required"),
    (INSTANCE, "metadataOptions.httpEndpoint"): ("on", "enabled"),
    (LAUNCH_TEMPLATE, "metadataOptions.httpPutResponseHopLimit"): (65, 2),
    (LAUNCH_TEMPLATE, "metadataOptions.httpTokens"): ("mandatory", "required"),
    (LAUNCH_TEMPLATE, "metadataOptions.httpEndpoint"): ("true", "enabled"),
    (SECRET, "recoveryWindowInDays"): (3, 0),
    (OAC, "name"): ("scaleladder-production-eu-west-1-blue-static-assets-origin-access", "scaleladder-phase5-static-assets"),
    (OAC, "description"): ("x" * 257, "scaleladder static assets (S3)"),
    (OAC, "originAccessControlOriginType"): ("S3", "s3"),
    (OAC, "signingBehavior"): ("sometimes", "always"),
    (OAC, "signingProtocol"): ("sigv2", "sigv4"),
    (KMS_ALIAS, "name"): ("alias/aws/eks", "alias/scaleladder-phase6-eks-secrets"),
    (KMS_KEY, "deletionWindowInDays"): (6, 30),
    # a stack name with a dot ends up in the web ACL's name; WAF takes letters, digits, - and _ only
    (WEB_ACL, "name"): ("scaleladder-prod.eu-edge", "scaleladder-prod-eu-edge"),
    (WEB_ACL, "scope"): ("GLOBAL", "CLOUDFRONT"),
    (WEB_ACL, "description"): ("", "scaleladder edge"),
    (WEB_ACL, "visibilityConfig.metricName"): ("edge metrics", "scaleladder-phase3-edge"),
    (WEB_ACL, "rules[].name"): ("r" * 129, "rate-per-ip"),
    (WEB_ACL, "rules[].visibilityConfig.metricName"): ("rate/ip", "rate-per-ip"),
    (WEB_ACL, "rules[].statement.rateBasedStatement.limit"): (5, 100),  # WAF's floor is 10 per window
    (WEB_ACL, "rules[].statement.rateBasedStatement.evaluationWindowSec"): (30, 60),
    (WEB_ACL, "rules[].statement.rateBasedStatement.aggregateKeyType"): ("ip", "IP"),
    (WEB_ACL, "rules[].action.block.customResponse.responseCode"): (199, 429),
    (WEB_ACL, "rules[].statement.managedRuleGroupStatement.name"): ("", "AWSManagedRulesCommonRuleSet"),
    (WEB_ACL, "rules[].statement.managedRuleGroupStatement.vendorName"): ("", "AWS"),
}

RULES = {(r.type, r.input): r for r in PROVIDER_RULES}


def test_every_rule_has_a_case_and_every_case_a_rule() -> None:
    assert set(CASES) == set(RULES), {"untested rules": set(RULES) - set(CASES), "no such rule": set(CASES) - set(RULES)}


def _by_rule(resource: Resource, key: tuple[str, str]) -> list[Any]:
    return [v for v in check_resource(resource) if v.source == RULES[key].source]


@pytest.mark.parametrize("key", sorted(CASES), ids=lambda k: f"{k[0].split(':')[-1]}.{k[1]}")
def test_rule_refuses_bad_and_accepts_good(key: tuple[str, str]) -> None:
    type_, path = key
    bad, good = CASES[key]
    refused = _by_rule(res(type_, "thing", **with_path(path, bad)), key)
    assert refused, f"{type_} {path} = {bad!r} should be refused"
    assert refused[0].input.replace("[0]", "[]") == path and refused[0].value == bad
    assert _by_rule(res(type_, "thing", **with_path(path, good)), key) == []


def test_unknown_values_are_skipped() -> None:
    assert check_resource(res(RDS, "db", finalSnapshotIdentifier="<unknown>-final", identifier="db")) == []


def test_secret_inputs_are_checked_but_never_shown() -> None:
    token = "bad@token-with-an-at-sign"
    [v] = check_resource(res(REDIS, "redis", authToken=Secret(token)))
    assert isinstance(v.value, Secret)
    assert token not in format_violation(v) and "[secret]" in format_violation(v)


# --- autonaming ------------------------------------------------------------------------------


def test_security_group_autonamed_from_an_sg_logical_name_is_refused() -> None:
    """aws-phases-1-4.md finding 1: `SecurityGroup("sg-app")` without `name` -> `sg-app-1a2b3c4`."""
    [v] = check_resource(res(SG, "sg-app", description="scaleladder app tier", vpcId="vpc-1"))
    assert (v.input, v.value) == ("name", f"sg-app-{PLACEHOLDER_SUFFIX}")
    assert "cannot begin with sg-" in v.rule and "vpc_security_group.go: name" in v.source
    assert check_resource(res(SG, "app-sg", description="scaleladder app tier", vpcId="vpc-1")) == []


def test_stack_name_prod_eu_gives_an_invalid_final_snapshot_identifier() -> None:
    """aws-phases-1-4.md finding 24: names derived from a stack named `prod_eu` must be sanitised."""
    [v] = check_resource(res(RDS, "db", identifier="scaleladder-db", finalSnapshotIdentifier="scaleladder-prod_eu-db-final"))
    assert v.input == "finalSnapshotIdentifier" and "alphanumeric characters and hyphens" in v.rule
    assert check_resource(res(RDS, "db", finalSnapshotIdentifier="scaleladder-prod-eu-db-final")) == []


def test_target_group_logical_name_too_long_for_autonaming() -> None:
    """aliases.go: target group names are autonamed within 32: 24 characters + '-' + 7 fit, 25 do not."""
    [v] = check_resource(res(TG, "x" * 25, port=80, protocol="HTTP"))
    assert v.rule == (f"could not make instance of '{TG}': name '{'x' * 25}-' plus 7 random chars "
                      "is longer than maximum length 32")
    assert check_resource(res(TG, "x" * 24, port=80, protocol="HTTP")) == []


def test_load_balancer_autoname_is_not_capped_so_the_provider_refuses_a_long_one() -> None:
    """aws_lb has no autoname override (255), but elbv2 validName allows 32."""
    [v] = check_resource(res(LB, "fleet-application-lb-primary", loadBalancerType="application"))
    assert v.value == f"fleet-application-lb-primary-{PLACEHOLDER_SUFFIX}" and "(0 - 32)" in v.rule
    assert check_resource(res(LB, "fleet-alb", loadBalancerType="application")) == []


def test_rds_identifier_autoname_has_no_separator_and_keeps_case() -> None:
    assert physical_names(res(RDS, "db")) == {"identifier": f"db{PLACEHOLDER_SUFFIX}"}
    [v] = check_resource(res(RDS, "Db"))
    assert v.input == "identifier" and "lowercase" in v.rule


def test_lowercasing_autonames_bucket_and_replication_group() -> None:
    assert physical_names(res(S3, "Static-Assets")) == {"bucket": f"static-assets-{PLACEHOLDER_SUFFIX}"}
    assert physical_names(res(REDIS, "Redis")) == {"replicationGroupId": f"redis-{PLACEHOLDER_SUFFIX}"}
    [v] = check_resource(res(REDIS, "r" * 33))  # 33 + 8 > 40
    assert "maximum length 40" in v.rule


def test_explicit_names_and_prefixes_win_over_autonaming() -> None:
    assert physical_names(res(ASG, "fleet-app", name="scaleladder-phase2-app")) == {"name": "scaleladder-phase2-app"}
    assert physical_names(res(SG, "sg-app", namePrefix="app-")) == {}
    assert check_resource(res(TG, "x" * 40, name="fleet-app")) == []
    assert physical_names(res(KMS_ALIAS, "eks-secrets")) == {"name": f"alias/eks-secrets-{PLACEHOLDER_SUFFIX}"}
    assert physical_names(res("aws:ec2/vpc:Vpc", "vpc")) == {}


# --- real plans ------------------------------------------------------------------------------


@cache
def _preset(stack: str) -> engine.Plan:
    return engine.run(stack, values=plans.stack_values(stack), preflight=False)


def _fresh(stack: str) -> engine.Plan:
    return copy.deepcopy(_preset(stack))


@pytest.mark.parametrize("stack", ["phase2", "phase3", "phase5"])
def test_every_aws_type_of_a_preset_is_either_autonamed_or_known_unnamed(stack: str) -> None:
    types = {r.type for r in _preset(stack).resources if r.custom and r.type.startswith("aws:")}
    assert types - set(AUTONAMES) - UNNAMED_TYPES == set()


def test_mutated_plan_resources_are_caught() -> None:
    """The rules read the property names the program really sends."""
    p = _fresh("phase3")
    tg = p.one(TG, "fleet-app")
    tg.inputs["healthCheck"]["healthyThreshold"] = 1
    asg = next(r for r in p.of_type(ASG) if r.inputs.get("instanceRefresh"))
    asg.inputs["instanceRefresh"]["preferences"]["minHealthyPercentage"] = 110
    rds = p.of_type(RDS)[0]
    rds.inputs["backupRetentionPeriod"] = 40
    found = {(v.name, v.input) for v in check_provider(p)}
    assert {(tg.name, "healthCheck.healthyThreshold"), (asg.name, "instanceRefresh.preferences.minHealthyPercentage"),
            (rds.name, "backupRetentionPeriod")} <= found


def test_check_provider_skips_components_and_non_aws_resources() -> None:
    component = res(SG, "sg-app")
    component.custom = False
    plan = engine.Plan("scaleladder", "test", None, [component, res("random:index/randomPassword:RandomPassword", "sg-x")],  # type: ignore[arg-type]
                       {}, [])
    assert check_provider(plan) == []
