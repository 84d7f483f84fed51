"""The provider's own validation of our inputs, offline: what `pulumi preview` refuses.

pulumi-aws 7 bridges terraform-provider-aws v6; at preview the bridge applies autonaming
(`naming.py`) and then every attribute's `ValidateFunc`. The mocks run none of it. Each
rule below is one `ValidateFunc` ported from terraform-provider-aws, `source` naming the
file and attribute it comes from (`internal/service/<svc>/<file>.go: <attribute>`), and
its refusal worded like the provider's. Inputs are camelCase Pulumi names; `a.b` is a
nested block (Pulumi flattens single-item blocks), `a[].b` every item of a list.

`check_provider(plan)` applies the rules to each resource's explicit inputs and to the
names autonaming would give it, plus the autonaming length refusal. Computed values
("<unknown>") are skipped; secrets are checked but never shown.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from .. import aws_facts
from ..engine import Secret
from .base import Check, FieldRule, Violation
from .naming import autoname_violations, physical_names

TF = "terraform-provider-aws internal/service"
UNIQUE_ID_SUFFIX_LENGTH = 26  # terraform-plugin-sdk helper/id.UniqueIDSuffixLength (name_prefix limits)


# --- checks: terraform-plugin-sdk helper/validation, as small composable functions ---------


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _as_int(value: Any) -> int | None:
    """An integer input; nullable TypeString ints (instanceWarmup "60") count as their number."""
    if _is_int(value):
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value):
        return int(value)
    return None


def all_of(*checks: Check) -> Check:
    """validation.All: every refusal, joined (the provider reports them all)."""
    def check(value: Any) -> str | None:
        errors = [e for e in (c(value) for c in checks) if e]
        return "; ".join(errors) if errors else None
    return check


def any_of(*checks: Check) -> Check:
    """validation.Any: accepted when one check accepts; else the first refusal."""
    def check(value: Any) -> str | None:
        errors = [c(value) for c in checks]
        return None if any(e is None for e in errors) else errors[0]
    return check


def str_len(lo: int, hi: int) -> Check:
    """validation.StringLenBetween."""
    def check(value: Any) -> str | None:
        if not isinstance(value, str):
            return f"expected type to be string, got {type(value).__name__}"
        if not lo <= len(value) <= hi:
            return f"expected length to be in the range ({lo} - {hi}), got {len(value)}"
        return None
    return check


def matches(pattern: str, message: str) -> Check:
    """validation.StringMatch (or a hand-written regexp check) with the provider's message."""
    rx = re.compile(pattern)

    def check(value: Any) -> str | None:
        return None if isinstance(value, str) and rx.search(value) else message
    return check


def not_matches(pattern: str, message: str) -> Check:
    """validation.StringDoesNotMatch."""
    rx = re.compile(pattern)

    def check(value: Any) -> str | None:
        return message if isinstance(value, str) and rx.search(value) else None
    return check


def one_of(values: Iterable[str], ignore_case: bool = False) -> Check:
    """validation.StringInSlice / enum.Validate."""
    allowed = tuple(values)
    folded = {v.lower() for v in allowed}

    def check(value: Any) -> str | None:
        ok = isinstance(value, str) and (value.lower() in folded if ignore_case else value in allowed)
        return None if ok else f"expected to be one of {list(allowed)!r}, got {value!r}"
    return check


def _int_check(accepts: Callable[[int], bool], refusal: Callable[[int], str]) -> Check:
    """An integer validator in the SDK's wording: non-integers and refused values each get theirs."""
    def check(value: Any) -> str | None:
        number = _as_int(value)
        if number is None:
            return f"expected an integer, got {value!r}"
        return None if accepts(number) else refusal(number)
    return check


def int_between(lo: int, hi: int) -> Check:
    """validation.IntBetween (and nullable.ValidateTypeStringNullableIntBetween)."""
    return _int_check(lambda n: lo <= n <= hi, lambda n: f"expected to be in the range ({lo} - {hi}), got {n}")


def int_at_least(lo: int) -> Check:
    """validation.IntAtLeast."""
    return _int_check(lambda n: n >= lo, lambda n: f"expected to be at least ({lo}), got {n}")


def int_at_most(hi: int) -> Check:
    """validation.IntAtMost."""
    return _int_check(lambda n: n <= hi, lambda n: f"expected to be at most ({hi}), got {n}")


def int_in(values: Iterable[int]) -> Check:
    """validation.IntInSlice."""
    allowed = tuple(values)

    def check(value: Any) -> str | None:
        number = _as_int(value)
        return None if number in allowed else f"expected to be one of {list(allowed)}, got {value!r}"
    return check


def int_divisible_by(divisor: int) -> Check:
    """validation.IntDivisibleBy."""
    def check(value: Any) -> str | None:
        number = _as_int(value)
        return None if number is not None and number % divisor == 0 else f"expected to be divisible by {divisor}, got {value!r}"
    return check


def max_items(n: int) -> Check:
    """schema MaxItems on a list or set."""
    def check(value: Any) -> str | None:
        return None if not isinstance(value, list) or len(value) <= n else f"attribute supports {n} item maximum, config has {len(value)} declared"
    return check


# --- validators ported by name (the provider's shared ValidateFuncs) ----------------------

# internal/verify/validate.go: ValidOnceADayWindowFormat ("hh24:mi-hh24:mi") and
# ValidOnceAWeekWindowFormat ("ddd:hh24:mi-ddd:hh24:mi", compared lowercased).
_HHMM = r"([0-1][0-9]|2[0-3]):([0-5][0-9])"
_DDD = r"(sun|mon|tue|wed|thu|fri|sat):" + _HHMM
_day_window = matches(f"^({_HHMM}-{_HHMM}|)$", 'must satisfy the format of "hh24:mi-hh24:mi".')
_week_window_rx = re.compile(f"^({_DDD}-{_DDD}|)$")


def _week_window(value: Any) -> str | None:
    if isinstance(value, str) and _week_window_rx.match(value.lower()):
        return None
    return 'must satisfy the format of "ddd:hh24:mi-ddd:hh24:mi".'


# internal/verify/validate.go: ValidLaunchTemplateName (also used for autoscaling
# launch_template.name): 3..125 characters (99 for a prefix) of [0-9A-Za-z()./_-].
def _launch_template_name(limit: int) -> Check:
    return all_of(str_len(3, limit), matches(r"^[0-9A-Za-z()./_\-]+$", "can only alphanumeric characters and ()./_- symbols"))


# internal/service/elbv2/validate.go: validName (load balancers) and validNamePrefix.
_elbv2_lb_name = all_of(
    str_len(0, 32),
    matches(r"^[0-9A-Za-z-]*$", "only alphanumeric characters and hyphens allowed"),
    not_matches(r"^-", "cannot begin with a hyphen"),
    not_matches(r"-$", "cannot end with a hyphen"),
    not_matches(r"^internal-", 'cannot begin with "internal-"'),
)
_elbv2_lb_name_prefix = all_of(
    matches(r"^[0-9A-Za-z-]+$", "only alphanumeric characters and hyphens allowed"),
    str_len(0, 6),
    not_matches(r"^-", "cannot begin with a hyphen"),
    not_matches(r"^internal-", 'cannot begin with "internal-"'),
)
# elbv2/validate.go: validTargetGroupName and validTargetGroupNamePrefix (32 - UniqueIDSuffixLength).
_elbv2_tg_name = all_of(
    str_len(0, 32),
    matches(r"^[0-9A-Za-z-]+$", "only alphanumeric characters and hyphens allowed"),
    not_matches(r"^-", "cannot begin with a hyphen"),
    not_matches(r"-$", "cannot end with a hyphen"),
)
_elbv2_tg_name_prefix = all_of(
    str_len(0, 32 - UNIQUE_ID_SUFFIX_LENGTH),
    matches(r"^[0-9A-Za-z-]+$", "only alphanumeric characters and hyphens allowed"),
    not_matches(r"^-", "cannot begin with a hyphen"),
)
# elbv2/target_group.go: validTargetGroupHealthCheckPort ("traffic-port" or 1-65536).
_tg_health_check_port = any_of(
    one_of(["traffic-port"]),
    int_between(1, 65536),
)
_ELBV2_PROTOCOLS = ["GENEVE", "HTTP", "HTTPS", "TCP", "TCP_UDP", "TLS", "UDP"]  # awstypes.ProtocolEnum

# internal/service/rds/validate.go: validIdentifier / validIdentifierPrefix, validParamGroupName,
# validSubnetGroupName.
_rds_identifier = all_of(
    matches(r"^[0-9a-z-]+$", "only lowercase alphanumeric characters and hyphens allowed"),
    matches(r"^[a-z]", "first character must be a letter"),
    not_matches(r"--", "cannot contain two consecutive hyphens"),
    not_matches(r"-$", "cannot end with a hyphen"),
)
_rds_identifier_prefix = all_of(
    matches(r"^[0-9a-z-]+$", "only lowercase alphanumeric characters and hyphens allowed"),
    matches(r"^[a-z]", "first character must be a letter"),
    not_matches(r"--", "cannot contain two consecutive hyphens"),
)
_rds_param_group_name = all_of(
    matches(r"^[0-9a-z.-]+$", "only lowercase alphanumeric characters, periods, and hyphens allowed in parameter group name"),
    matches(r"^[a-z]", "first character of parameter group name must be a letter"),
    not_matches(r"--", "parameter group name cannot contain two consecutive hyphens"),
    not_matches(r"-$", "parameter group name cannot end with a hyphen"),
    str_len(0, 255),
)
_rds_subnet_group_name = all_of(
    matches(r"^[0-9a-z_ .-]+$", "only lowercase alphanumeric characters, hyphens, underscores, periods, and spaces allowed"),
    str_len(0, 255),
    not_matches(r"(?i)^default$", '"Default" is not allowed as name'),
)
# rds/instance.go final_snapshot_identifier (validation.All of four regexps).
_rds_final_snapshot = all_of(
    matches(r"^[A-Za-z]", "must begin with alphabetic character"),
    matches(r"^[0-9A-Za-z-]+$", "must only contain alphanumeric characters and hyphens"),
    not_matches(r"--", "cannot contain two consecutive hyphens"),
    not_matches(r"-$", "cannot end in a hyphen"),
)

# internal/service/iam/validate.go: validResourceName(max) = StringLenBetween(1, max) +
# ^[\w+=,.@-]*$; limits from iam/role.go (64), instance_profile.go, policy.go, role_policy.go (128).
def _iam_name(limit: int) -> Check:
    return all_of(str_len(1, limit), matches(r"^[\w+=,.@-]*$", "must match [\\w+=,.@-]"))


_iam_role_policy_role = all_of(
    str_len(1, 128),
    matches(r"[\w+=,.@-]+", "must match [\\w+=,.@-]+"),
    not_matches(r"^arn:", "must be the role's name not its ARN"),
)

# internal/service/eks/validate.go: validClusterName.
_eks_cluster_name = all_of(
    str_len(1, 100),
    matches(r"^[0-9A-Za-z][A-Za-z0-9\-_]+$", "must contain alphanumeric characters (dashes and underscores allowed other than at the start)"),
)

# internal/service/cloudwatch/metric_alarm.go: statistic (cloudwatch Statistic enum) and
# extended_statistic (percentile/trimmed-mean regexp).
_STATISTICS = ["SampleCount", "Average", "Sum", "Minimum", "Maximum"]
_extended_statistic = matches(
    r"^((p|(tm)|(wm)|(tc)|(ts))((\d{1,2}(\.\d{1,2})?)|(100))|(IQM)|(((TM)|(WM)|(PR)|(TC)|(TS)))\((\d+(\.\d+)?%?)?:(\d+(\.\d+)?%?)?\))$",
    "invalid statistic, see: https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Statistics-definitions.html",
)
_COMPARISON_OPERATORS = [  # cloudwatch ComparisonOperator enum
    "GreaterThanOrEqualToThreshold", "GreaterThanThreshold", "LessThanThreshold", "LessThanOrEqualToThreshold",
    "LessThanLowerOrGreaterThanUpperThreshold", "LessThanLowerThreshold", "GreaterThanUpperThreshold",
]

# internal/service/logs/validate.go: validLogGroupName (<= 512 of [.-_/#A-Za-z0-9]).
_log_group_name = all_of(
    str_len(0, 512),
    matches(r"^[\.\-_/#A-Za-z0-9]+$", "isn't a valid log group name (alphanumeric characters, underscores, hyphens, slashes, hash signs and dots are allowed)"),
)

# internal/service/kms/validate.go: validNameForResource.
_kms_alias_name = all_of(
    not_matches(r"^(alias/aws/)", "cannot begin with reserved AWS CMK prefix 'alias/aws/'"),
    matches(r"^(alias/)[0-9A-Za-z_/-]+$", "must begin with 'alias/' and be comprised of only [0-9A-Za-z_/-]"),
)

# internal/service/elasticache/replication_group.go replication_group_id: validateReplicationGroupID,
# the CreateReplicationGroup constraints (1-40 letters, digits or hyphens, first a letter,
# no trailing or doubled hyphen); the id is lowercased only after validation (StateFunc).
_replication_group_id = all_of(
    str_len(1, 40),
    matches(r"^[0-9A-Za-z-]+$", "only alphanumeric characters and hyphens allowed"),
    matches(r"^[A-Za-z]", "first character must be a letter"),
    not_matches(r"--", "cannot contain two consecutive hyphens"),
    not_matches(r"-$", "cannot end with a hyphen"),
)
# elasticache validReplicationGroupAuthToken (16-128 characters, none of @ " /).
_redis_auth_token = all_of(
    str_len(16, 128),
    matches(r'^[^@"/]+$', 'only alphanumeric characters or symbols (excluding @, ", and /) allowed'),
)


def _rule(type_: str, input_: str, check: Check, source: str) -> FieldRule:
    return FieldRule(type_, input_, check, source)


SG = "aws:ec2/securityGroup:SecurityGroup"
LB = "aws:lb/loadBalancer:LoadBalancer"
TG = "aws:lb/targetGroup:TargetGroup"
RDS = "aws:rds/instance:Instance"
RDS_PG = "aws:rds/parameterGroup:ParameterGroup"
RDS_SUBNETS = "aws:rds/subnetGroup:SubnetGroup"
REDIS = "aws:elasticache/replicationGroup:ReplicationGroup"
ROLE = "aws:iam/role:Role"
PROFILE = "aws:iam/instanceProfile:InstanceProfile"
POLICY = "aws:iam/policy:Policy"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
SSM_PARAMETER = "aws:ssm/parameter:Parameter"
EKS = "aws:eks/cluster:Cluster"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
ASG = "aws:autoscaling/group:Group"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
INSTANCE = "aws:ec2/instance:Instance"
SECRET = "aws:secretsmanager/secret:Secret"
OAC = "aws:cloudfront/originAccessControl:OriginAccessControl"
KMS_ALIAS = "aws:kms/alias:Alias"
KMS_KEY = "aws:kms/key:Key"
WEB_ACL = "aws:wafv2/webAcl:WebAcl"
_waf = f"{TF}/wafv2"
# wafv2 web_acl.go name and schemas.go metric_name: StringLenBetween(1, 128) and ^[0-9A-Za-z_-]+$.
_waf_name = all_of(str_len(1, 128), matches(r"^[0-9A-Za-z_-]+$", "must contain only alphanumeric hyphen and underscore characters"))

_sg = f"{TF}/ec2/vpc_security_group.go"
_lb = f"{TF}/elbv2/load_balancer.go"
_tg = f"{TF}/elbv2/target_group.go"
_rds = f"{TF}/rds/instance.go"
_rg = f"{TF}/elasticache/replication_group.go"
_alarm = f"{TF}/cloudwatch/metric_alarm.go"
_asg = f"{TF}/autoscaling/group.go"

PROVIDER_RULES: list[FieldRule] = [
    # EC2 security group
    _rule(SG, "name", all_of(str_len(0, 255), not_matches(r"^sg-", "cannot begin with sg-")), f"{_sg}: name"),
    _rule(SG, "namePrefix", all_of(str_len(0, 255 - UNIQUE_ID_SUFFIX_LENGTH), not_matches(r"^sg-", "cannot begin with sg-")),
          f"{_sg}: name_prefix"),
    _rule(SG, "description", str_len(0, 255), f"{_sg}: description"),
    # ELBv2 load balancer
    _rule(LB, "name", _elbv2_lb_name, f"{_lb}: name (elbv2/validate.go validName)"),
    _rule(LB, "namePrefix", _elbv2_lb_name_prefix, f"{_lb}: name_prefix (elbv2/validate.go validNamePrefix)"),
    _rule(LB, "loadBalancerType", one_of(["application", "gateway", "network"]), f"{_lb}: load_balancer_type"),
    # ELBv2 target group
    _rule(TG, "name", _elbv2_tg_name, f"{_tg}: name (elbv2/validate.go validTargetGroupName)"),
    _rule(TG, "namePrefix", _elbv2_tg_name_prefix, f"{_tg}: name_prefix (elbv2/validate.go validTargetGroupNamePrefix)"),
    _rule(TG, "deregistrationDelay", int_between(0, 3600), f"{_tg}: deregistration_delay"),
    _rule(TG, "port", int_between(1, 65535), f"{_tg}: port"),
    _rule(TG, "protocol", one_of(_ELBV2_PROTOCOLS, ignore_case=True), f"{_tg}: protocol"),
    _rule(TG, "targetType", one_of(["instance", "ip", "lambda", "alb"]), f"{_tg}: target_type"),
    _rule(TG, "slowStart", any_of(int_in([0]), int_between(30, 900)), f"{_tg}: slow_start"),
    _rule(TG, "healthCheck.healthyThreshold", int_between(2, 10), f"{_tg}: health_check.healthy_threshold"),
    _rule(TG, "healthCheck.unhealthyThreshold", int_between(2, 10), f"{_tg}: health_check.unhealthy_threshold"),
    _rule(TG, "healthCheck.interval", int_between(5, 300), f"{_tg}: health_check.interval"),
    _rule(TG, "healthCheck.timeout", int_between(2, 120), f"{_tg}: health_check.timeout"),
    _rule(TG, "healthCheck.path", all_of(str_len(1, 1024), matches(r"^/", "must begin with a '/' character")),
          f"{_tg}: health_check.path"),
    _rule(TG, "healthCheck.port", _tg_health_check_port, f"{_tg}: health_check.port (validTargetGroupHealthCheckPort)"),
    _rule(TG, "healthCheck.protocol", one_of(["HTTP", "HTTPS", "TCP"], ignore_case=True), f"{_tg}: health_check.protocol"),
    # RDS instance
    _rule(RDS, "identifier", _rds_identifier, f"{_rds}: identifier (rds/validate.go validIdentifier)"),
    _rule(RDS, "identifierPrefix", _rds_identifier_prefix, f"{_rds}: identifier_prefix (rds/validate.go validIdentifierPrefix)"),
    _rule(RDS, "finalSnapshotIdentifier", _rds_final_snapshot, f"{_rds}: final_snapshot_identifier"),
    _rule(RDS, "backupRetentionPeriod", int_between(0, 35), f"{_rds}: backup_retention_period"),
    _rule(RDS, "backupWindow", _day_window, f"{_rds}: backup_window (verify.ValidOnceADayWindowFormat)"),
    _rule(RDS, "maintenanceWindow", _week_window, f"{_rds}: maintenance_window (verify.ValidOnceAWeekWindowFormat)"),
    _rule(RDS, "monitoringInterval", int_in([0, 1, 5, 10, 15, 30, 60]), f"{_rds}: monitoring_interval"),
    _rule(RDS_PG, "name", _rds_param_group_name, f"{TF}/rds/parameter_group.go: name (rds/validate.go validParamGroupName)"),
    _rule(RDS_SUBNETS, "name", _rds_subnet_group_name, f"{TF}/rds/subnet_group.go: name (rds/validate.go validSubnetGroupName)"),
    # ElastiCache replication group
    _rule(REDIS, "replicationGroupId", _replication_group_id, f"{_rg}: replication_group_id (validateReplicationGroupID)"),
    _rule(REDIS, "description", str_len(1, 1 << 30), f"{_rg}: description (validation.StringIsNotEmpty)"),
    _rule(REDIS, "authToken", _redis_auth_token, f"{_rg}: auth_token (validReplicationGroupAuthToken)"),
    _rule(REDIS, "authTokenUpdateStrategy", one_of(["SET", "ROTATE", "DELETE"]), f"{_rg}: auth_token_update_strategy"),
    _rule(REDIS, "clusterMode", one_of(["enabled", "disabled", "compatible"]), f"{_rg}: cluster_mode"),
    _rule(REDIS, "replicasPerNodeGroup", int_between(0, 5), f"{_rg}: replicas_per_node_group"),
    _rule(REDIS, "snapshotRetentionLimit", int_at_most(35), f"{_rg}: snapshot_retention_limit"),
    _rule(REDIS, "snapshotWindow", _day_window, f"{_rg}: snapshot_window (verify.ValidOnceADayWindowFormat)"),
    _rule(REDIS, "maintenanceWindow", _week_window, f"{_rg}: maintenance_window (verify.ValidOnceAWeekWindowFormat)"),
    _rule(REDIS, "logDeliveryConfigurations", max_items(2), f"{_rg}: log_delivery_configuration (MaxItems 2)"),
    _rule(REDIS, "logDeliveryConfigurations[].destinationType", one_of(["cloudwatch-logs", "kinesis-firehose"]),
          f"{_rg}: log_delivery_configuration.destination_type"),
    _rule(REDIS, "logDeliveryConfigurations[].logFormat", one_of(["text", "json"]), f"{_rg}: log_delivery_configuration.log_format"),
    _rule(REDIS, "logDeliveryConfigurations[].logType", one_of(["slow-log", "engine-log"]), f"{_rg}: log_delivery_configuration.log_type"),
    # IAM
    _rule(ROLE, "name", _iam_name(64), f"{TF}/iam/role.go: name (validResourceName(roleNameMaxLen=64))"),
    _rule(ROLE, "namePrefix", _iam_name(64 - UNIQUE_ID_SUFFIX_LENGTH), f"{TF}/iam/role.go: name_prefix"),
    _rule(ROLE, "path", str_len(0, 512), f"{TF}/iam/role.go: path"),
    _rule(ROLE, "description", str_len(0, 1000), f"{TF}/iam/role.go: description"),
    _rule(ROLE, "maxSessionDuration", int_between(3600, 43200), f"{TF}/iam/role.go: max_session_duration"),
    _rule(PROFILE, "name", _iam_name(128), f"{TF}/iam/instance_profile.go: name (validResourceName(128))"),
    _rule(POLICY, "name", _iam_name(128), f"{TF}/iam/policy.go: name (validResourceName(policyNameMaxLen=128))"),
    # SSM parameter (the app image hosts read at boot: components/ops.py; the metrics publisher)
    _rule(SSM_PARAMETER, "name", str_len(1, 2048), f"{TF}/ssm/parameter.go: name (StringLenBetween(1, 2048))"),
    _rule(SSM_PARAMETER, "description", str_len(0, 1024), f"{TF}/ssm/parameter.go: description (StringLenBetween(0, 1024))"),
    _rule(SSM_PARAMETER, "type", one_of(["String", "StringList", "SecureString"]),
          f"{TF}/ssm/parameter.go: type (enum.Validate[awstypes.ParameterType])"),
    _rule(ROLE_POLICY, "name", _iam_name(128), f"{TF}/iam/role_policy.go: name (validRolePolicyName)"),
    _rule(ROLE_POLICY, "role", _iam_role_policy_role, f"{TF}/iam/role_policy.go: role (iam/validate.go validRolePolicyRole)"),
    # EKS
    _rule(EKS, "name", _eks_cluster_name, f"{TF}/eks/cluster.go: name (eks/validate.go validClusterName)"),
    _rule(NODE_GROUP, "updateConfig.maxUnavailable", int_between(1, 100), f"{TF}/eks/node_group.go: update_config.max_unavailable"),
    _rule(NODE_GROUP, "updateConfig.maxUnavailablePercentage", int_between(1, 100),
          f"{TF}/eks/node_group.go: update_config.max_unavailable_percentage"),
    # CloudWatch metric alarm (alarm_name is the Pulumi input `name`)
    _rule(ALARM, "name", str_len(1, 255), f"{_alarm}: alarm_name"),
    _rule(ALARM, "comparisonOperator", one_of(_COMPARISON_OPERATORS), f"{_alarm}: comparison_operator"),
    _rule(ALARM, "evaluationPeriods", int_at_least(1), f"{_alarm}: evaluation_periods"),
    _rule(ALARM, "datapointsToAlarm", int_at_least(1), f"{_alarm}: datapoints_to_alarm"),
    _rule(ALARM, "metricName", str_len(1, 255), f"{_alarm}: metric_name"),
    _rule(ALARM, "namespace", str_len(1, 255), f"{_alarm}: namespace"),
    _rule(ALARM, "period", any_of(int_in([10, 30]), int_divisible_by(60)), f"{_alarm}: period"),
    _rule(ALARM, "statistic", one_of(_STATISTICS), f"{_alarm}: statistic"),
    _rule(ALARM, "extendedStatistic", _extended_statistic, f"{_alarm}: extended_statistic"),
    _rule(ALARM, "alarmDescription", str_len(0, 1024), f"{_alarm}: alarm_description"),
    _rule(ALARM, "treatMissingData", one_of(["breaching", "notBreaching", "ignore", "missing"], ignore_case=True),
          f"{_alarm}: treat_missing_data"),
    _rule(ALARM, "okActions", max_items(5), f"{_alarm}: ok_actions (MaxItems 5)"),
    _rule(ALARM, "insufficientDataActions", max_items(5), f"{_alarm}: insufficient_data_actions (MaxItems 5)"),
    _rule(ALARM, "metricQueries[].id", str_len(1, 255), f"{_alarm}: metric_query.id"),
    _rule(ALARM, "metricQueries[].expression", str_len(1, 1024), f"{_alarm}: metric_query.expression"),
    _rule(ALARM, "metricQueries[].metric.metricName", str_len(1, 255), f"{_alarm}: metric_query.metric.metric_name"),
    _rule(ALARM, "metricQueries[].metric.namespace", str_len(1, 255), f"{_alarm}: metric_query.metric.namespace"),
    _rule(ALARM, "metricQueries[].metric.stat", any_of(one_of(_STATISTICS), _extended_statistic),
          f"{_alarm}: metric_query.metric.stat"),
    # CloudWatch Logs
    _rule(LOG_GROUP, "name", _log_group_name, f"{TF}/logs/group.go: name (logs validLogGroupName)"),
    # Auto Scaling group
    _rule(ASG, "instanceRefresh.strategy", one_of(["Rolling", "ReplaceRootVolume"]), f"{_asg}: instance_refresh.strategy"),
    _rule(ASG, "instanceRefresh.preferences.minHealthyPercentage", int_between(0, 100),
          f"{_asg}: instance_refresh.preferences.min_healthy_percentage"),
    _rule(ASG, "instanceRefresh.preferences.maxHealthyPercentage", int_between(100, 200),
          f"{_asg}: instance_refresh.preferences.max_healthy_percentage"),
    _rule(ASG, "instanceRefresh.preferences.instanceWarmup", int_at_least(0), f"{_asg}: instance_refresh.preferences.instance_warmup"),
    _rule(ASG, "instanceRefresh.preferences.checkpointDelay", int_at_least(0), f"{_asg}: instance_refresh.preferences.checkpoint_delay"),
    _rule(ASG, "launchTemplate.name", _launch_template_name(125), f"{_asg}: launch_template.name (verify.ValidLaunchTemplateName)"),
    _rule(ASG, "launchTemplate.version", str_len(1, 255), f"{_asg}: launch_template.version"),
    # EC2 launch template
    _rule(LAUNCH_TEMPLATE, "name", _launch_template_name(125),
          f"{TF}/ec2/ec2_launch_template.go: name (internal/verify/validate.go ValidLaunchTemplateName)"),
    _rule(LAUNCH_TEMPLATE, "namePrefix", _launch_template_name(99), f"{TF}/ec2/ec2_launch_template.go: name_prefix"),
    # EC2 instance metadata options (the enums are the EC2 API's HttpTokensState and
    # InstanceMetadataEndpointState; launch templates use their LaunchTemplate* twins)
    _rule(INSTANCE, "metadataOptions.httpPutResponseHopLimit", int_between(1, 64),
          f"{TF}/ec2/ec2_instance.go: metadata_options.http_put_response_hop_limit"),
    _rule(INSTANCE, "metadataOptions.httpTokens", one_of(["optional", "required"]), f"{TF}/ec2/ec2_instance.go: metadata_options.http_tokens"),
    _rule(INSTANCE, "metadataOptions.httpEndpoint", one_of(["disabled", "enabled"]), f"{TF}/ec2/ec2_instance.go: metadata_options.http_endpoint"),
    _rule(LAUNCH_TEMPLATE, "metadataOptions.httpPutResponseHopLimit", int_between(1, 64),
          f"{TF}/ec2/ec2_launch_template.go: metadata_options.http_put_response_hop_limit"),
    _rule(LAUNCH_TEMPLATE, "metadataOptions.httpTokens", one_of(["optional", "required"]),
          f"{TF}/ec2/ec2_launch_template.go: metadata_options.http_tokens"),
    _rule(LAUNCH_TEMPLATE, "metadataOptions.httpEndpoint", one_of(["disabled", "enabled"]),
          f"{TF}/ec2/ec2_launch_template.go: metadata_options.http_endpoint"),
    # Secrets Manager
    _rule(SECRET, "recoveryWindowInDays", any_of(int_between(7, 30), int_in([0])), f"{TF}/secretsmanager/secret.go: recovery_window_in_days"),
    # CloudFront origin access control
    _rule(OAC, "name", str_len(1, 64), f"{TF}/cloudfront/origin_access_control.go: name"),
    _rule(OAC, "description", str_len(0, 256), f"{TF}/cloudfront/origin_access_control.go: description"),
    _rule(OAC, "originAccessControlOriginType", one_of(["s3", "mediastore", "mediapackagev2", "lambda"]),
          f"{TF}/cloudfront/origin_access_control.go: origin_access_control_origin_type"),
    _rule(OAC, "signingBehavior", one_of(["never", "always", "no-override"]), f"{TF}/cloudfront/origin_access_control.go: signing_behavior"),
    _rule(OAC, "signingProtocol", one_of(["sigv4"]), f"{TF}/cloudfront/origin_access_control.go: signing_protocol"),
    # AWS WAF web ACL (internal/service/wafv2/web_acl.go, schemas.go)
    _rule(WEB_ACL, "name", _waf_name, f"{_waf}/web_acl.go: name"),
    _rule(WEB_ACL, "scope", one_of(["CLOUDFRONT", "REGIONAL"]), f"{_waf}/web_acl.go: scope (awstypes.Scope)"),
    _rule(WEB_ACL, "description", str_len(1, 256), f"{_waf}/web_acl.go: description"),
    _rule(WEB_ACL, "visibilityConfig.metricName", _waf_name, f"{_waf}/schemas.go: visibilityConfigSchema metric_name"),
    _rule(WEB_ACL, "rules[].name", str_len(1, 128), f"{_waf}/web_acl.go: rule.name"),
    _rule(WEB_ACL, "rules[].visibilityConfig.metricName", _waf_name, f"{_waf}/schemas.go: visibilityConfigSchema metric_name"),
    _rule(WEB_ACL, "rules[].statement.rateBasedStatement.limit",
          int_between(aws_facts.WAF_RATE_LIMIT_MIN, aws_facts.WAF_RATE_LIMIT_MAX),
          f"{_waf}/schemas.go: rateBasedStatementSchema limit"),
    _rule(WEB_ACL, "rules[].statement.rateBasedStatement.evaluationWindowSec", int_in(aws_facts.WAF_EVALUATION_WINDOWS),
          f"{_waf}/schemas.go: rateBasedStatementSchema evaluation_window_sec"),
    _rule(WEB_ACL, "rules[].statement.rateBasedStatement.aggregateKeyType",
          one_of(["CONSTANT", "CUSTOM_KEYS", "FORWARDED_IP", "IP"]),
          f"{_waf}/schemas.go: rateBasedStatementSchema aggregate_key_type (awstypes.RateBasedStatementAggregateKeyType)"),
    _rule(WEB_ACL, "rules[].action.block.customResponse.responseCode", int_between(200, 600),
          f"{_waf}/schemas.go: customResponseSchema response_code"),
    _rule(WEB_ACL, "rules[].statement.managedRuleGroupStatement.name", str_len(1, 128),
          f"{_waf}/schemas.go: managedRuleGroupStatementSchema name"),
    _rule(WEB_ACL, "rules[].statement.managedRuleGroupStatement.vendorName", str_len(1, 128),
          f"{_waf}/schemas.go: managedRuleGroupStatementSchema vendor_name"),
    # KMS
    _rule(KMS_ALIAS, "name", _kms_alias_name, f"{TF}/kms/alias.go: name (kms/validate.go validNameForResource)"),
    _rule(KMS_KEY, "deletionWindowInDays", int_between(7, 30), f"{TF}/kms/key.go: deletion_window_in_days"),
]


# --- applying the table --------------------------------------------------------------------


def _unknown(value: Any) -> bool:
    """A computed value the plan cannot know yet (the engine writes "<unknown>")."""
    return isinstance(value, str) and "<unknown>" in value


def values_at(inputs: dict[str, Any], path: str) -> Iterator[tuple[str, Any]]:
    """(concrete path, value) for every value at `path` (`a.b`, `a[].b`), absent ones skipped."""
    def walk(node: Any, parts: list[str], prefix: str) -> Iterator[tuple[str, Any]]:
        if not parts:
            yield prefix, node
            return
        head, rest = parts[0], parts[1:]
        each = head.endswith("[]")
        key = head[:-2] if each else head
        if isinstance(node, Secret):
            node = node.value
        if not isinstance(node, dict) or node.get(key) is None:
            return
        child = node[key]
        here = f"{prefix}.{key}" if prefix else key
        if each:
            if isinstance(child, Secret):
                child = child.value
            for i, item in enumerate(child if isinstance(child, list) else []):
                yield from walk(item, rest, f"{here}[{i}]")
        else:
            yield from walk(child, rest, here)

    yield from walk(inputs, path.split("."), "")


def _rules_by_type() -> dict[str, list[FieldRule]]:
    out: dict[str, list[FieldRule]] = {}
    for rule in PROVIDER_RULES:
        out.setdefault(rule.type, []).append(rule)
    return out


def check_resource(resource: Any) -> list[Violation]:
    """The provider's refusals for one resource: autoname length first, then field rules."""
    found = autoname_violations(resource)
    if found:
        return found  # the bridge fails before validation runs
    inputs = {**resource.inputs, **physical_names(resource)}
    for rule in _rules_by_type().get(resource.type, []):
        for where, value in values_at(inputs, rule.input):
            plain = value.value if isinstance(value, Secret) else value
            if _unknown(plain):
                continue
            refusal = rule.check(plain)
            if refusal:
                found.append(Violation(resource.urn, resource.type, resource.name, where, value,
                                       f"invalid value for {where} ({refusal})", rule.source))
    return found


def check_provider(plan: Any) -> list[Violation]:
    """Every input of every AWS resource in `plan` the provider would refuse at preview."""
    return [v for r in plan.resources if r.custom and r.type.startswith("aws:") for v in check_resource(r)]
