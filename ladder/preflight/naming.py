"""The physical names Pulumi would give our AWS resources (autonaming), offline.

When the program sets no value for a name-like input, pulumi-aws fills it in at preview
with the logical name, a separator and 7 random hex characters, within a maximum length
(and sometimes lowercased or prefixed). The provider's validation then runs on that value,
and a logical name too long for the maximum fails before anything is created:
"could not make instance of '<type>': name '<prefix>' plus 7 random chars is longer than
maximum length <N>". The mocks (`ladder/mocks.py`) run none of this, so this module
reproduces it from the sources below.

Sources (read for this table):
- pulumi-aws `provider/autonaming.go` (`setAutonaming`): every resource whose Terraform
  schema has an input `name` and no override gets `tfbridge.AutoName("name", 255, "-")`.
- pulumi-aws `provider/resource_overrides.go`: the overrides (IAM role 64, RDS identifier
  without separator, ElastiCache replication group 40 lowercase, S3 bucket 63 lowercase,
  KMS alias 238 with `alias/`, SNS topic 80, metric alarm `alarm_name` as `name` 255, EKS
  node group `node_group_name` 255).
- pulumi-aws `provider/aliases.go`: `aws_lb_target_group` name `AutoName("name", 32, "-")`;
  `aws_lb` has no override, so its name is autonamed to 255 (the provider's own 32-char
  limit, `provider.py`, is what refuses a long one).
- pulumi-terraform-bridge `pkg/tfbridge/info/autonaming.go` (`ComputeAutoNameDefault`):
  transform, then `resource.NewUniqueName(seed, name+separator, randlen, maxlen)`, then the
  post-transform; pulumi/pulumi `sdk/go/common/resource` `NewUniqueHex`: the error text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .base import Violation

# What a real autoname's random part looks like here: 7 hex characters, fixed so that plans
# are stable. Rules see names of the real length and character set.
PLACEHOLDER_SUFFIX = "1a2b3c4"

_BRIDGE = "pulumi-terraform-bridge pkg/tfbridge/info/autonaming.go: ComputeAutoNameDefault"


@dataclass(frozen=True)
class AutoName:
    """How pulumi-aws autonames one input of one resource type."""

    input: str  # the Pulumi input it fills (camelCase)
    maxlen: int  # 0: no maximum
    source: str
    separator: str = "-"
    randlen: int = 7
    lowercase: bool = False  # the Transform applied to the logical name first
    prefix: str = ""  # PostTransform: prepended unless already there (KMS `alias/`)

    def name(self, logical: str) -> str:
        """The physical name, the random part replaced by PLACEHOLDER_SUFFIX."""
        base = logical.lower() if self.lowercase else logical
        value = base + self.separator + PLACEHOLDER_SUFFIX[: self.randlen]
        if self.prefix and not value.startswith(self.prefix):
            value = self.prefix + value
        return value

    def too_long(self, logical: str) -> str | None:
        """The bridge's refusal when logical name + separator + random part exceeds maxlen."""
        base = (logical.lower() if self.lowercase else logical) + self.separator
        if self.maxlen and len(base) + self.randlen > self.maxlen:
            return f"name '{base}' plus {self.randlen} random chars is longer than maximum length {self.maxlen}"
        return None


_DEFAULT = "pulumi-aws provider/autonaming.go: setAutonaming (AutoName(\"name\", 255, \"-\"))"
_OVERRIDES = "pulumi-aws provider/resource_overrides.go"


def _default(input_: str = "name") -> AutoName:
    return AutoName(input_, 255, _DEFAULT)


# Every AWS type the program creates that has an autonamed input. Types absent here have no
# name input in the Terraform schema (VPC, subnet, route table, EIP, instance, listener,
# EKS addon/access entry, S3 bucket sub-resources, ...): Pulumi gives them no name.
AUTONAMES: dict[str, AutoName] = {
    "aws:autoscaling/group:Group": _default(),
    "aws:autoscaling/policy:Policy": _default(),
    "aws:cloudfront/originAccessControl:OriginAccessControl": _default(),
    "aws:cloudwatch/logGroup:LogGroup": _default(),
    "aws:cloudwatch/metricAlarm:MetricAlarm": AutoName(
        "name", 255, f"{_OVERRIDES}: aws_cloudwatch_metric_alarm alarm_name AutoName(\"name\", 255, \"-\")"),
    "aws:ec2/launchTemplate:LaunchTemplate": _default(),
    "aws:ec2/securityGroup:SecurityGroup": _default(),
    "aws:eks/cluster:Cluster": _default(),
    "aws:eks/nodeGroup:NodeGroup": AutoName(
        "nodeGroupName", 255, f"{_OVERRIDES}: aws_eks_node_group node_group_name AutoName(255, \"-\")"),
    "aws:elasticache/parameterGroup:ParameterGroup": _default(),
    "aws:elasticache/replicationGroup:ReplicationGroup": AutoName(
        "replicationGroupId", 40,
        f"{_OVERRIDES}: aws_elasticache_replication_group replication_group_id AutoNameTransform(40, ToLower)",
        lowercase=True),
    "aws:elasticache/subnetGroup:SubnetGroup": _default(),
    "aws:iam/instanceProfile:InstanceProfile": _default(),
    "aws:iam/policy:Policy": _default(),
    "aws:iam/role:Role": AutoName("name", 64, f"{_OVERRIDES}: aws_iam_role name AutoName(\"name\", 64, \"-\")"),
    "aws:iam/rolePolicy:RolePolicy": _default(),
    "aws:kms/alias:Alias": AutoName(
        "name", 238, f"{_OVERRIDES}: aws_kms_alias name (Maxlen 238, PostTransform alias/)", prefix="alias/"),
    "aws:lb/loadBalancer:LoadBalancer": _default(),
    "aws:lb/targetGroup:TargetGroup": AutoName(
        "name", 32, "pulumi-aws provider/aliases.go: aws_lb_target_group name AutoName(\"name\", 32, \"-\")"),
    # No separator and no lowercasing (SQL Server engines: 3 random chars, maxlen 15).
    "aws:rds/instance:Instance": AutoName(
        "identifier", 255, f"{_OVERRIDES}: aws_db_instance identifier ComputeAutoNameDefault(Randlen 7, Maxlen 255)",
        separator=""),
    "aws:rds/parameterGroup:ParameterGroup": _default(),
    "aws:rds/subnetGroup:SubnetGroup": _default(),
    "aws:s3/bucket:Bucket": AutoName(
        "bucket", 63, f"{_OVERRIDES}: aws_s3_bucket bucket AutoNameTransform(63, ToLower)", lowercase=True),
    "aws:secretsmanager/secret:Secret": _default(),
    "aws:sns/topic:Topic": AutoName("name", 80, f"{_OVERRIDES}: aws_sns_topic name (Maxlen 80, .fifo for FIFO)"),
    # `name` is Required in the Terraform schema and optional in pulumi-aws (autonamed by default).
    "aws:ssm/parameter:Parameter": _default(),
    # name Optional+Computed with name_prefix (wafv2/web_acl.go); the provider's 1-128 limit is a
    # FieldRule in provider.py. components/waf.py sets the name (alarm dimensions need it).
    "aws:wafv2/webAcl:WebAcl": _default(),
}


# The AWS types the program creates whose Terraform schema has no name input, so Pulumi
# autonames nothing (checked against the same sources). With AUTONAMES this covers every
# AWS type of the presets; a test fails when a new type is in neither.
UNNAMED_TYPES: frozenset[str] = frozenset({
    "aws:cloudfront/distribution:Distribution",
    "aws:cloudwatch/dashboard:Dashboard",  # dashboard_name is required (PutDashboard DashboardName): ladder/dashboard.py
    "aws:ec2/eip:Eip",
    "aws:ec2/instance:Instance",
    "aws:ec2/internetGateway:InternetGateway",
    "aws:ec2/natGateway:NatGateway",
    "aws:ec2/routeTable:RouteTable",
    "aws:ec2/routeTableAssociation:RouteTableAssociation",
    "aws:ec2/subnet:Subnet",
    "aws:ec2/vpc:Vpc",
    "aws:eks/accessEntry:AccessEntry",
    "aws:eks/accessPolicyAssociation:AccessPolicyAssociation",
    "aws:eks/addon:Addon",
    "aws:eks/podIdentityAssociation:PodIdentityAssociation",
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
    "aws:kms/key:Key",
    "aws:lb/listener:Listener",
    "aws:lb/listenerRule:ListenerRule",
    "aws:s3/bucketAcl:BucketAcl",
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
    "aws:s3/bucketPolicy:BucketPolicy",
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketVersioning:BucketVersioning",
    "aws:secretsmanager/secretVersion:SecretVersion",
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
    "aws:wafv2/webAclAssociation:WebAclAssociation",
})


def _rds_autoname(resource: Any) -> AutoName:
    """RDS SQL Server identifiers are autonamed with 3 random chars within 15 (resource_overrides.go)."""
    base = AUTONAMES["aws:rds/instance:Instance"]
    engine = resource.inputs.get("engine")
    if isinstance(engine, str) and "sqlserver" in engine.lower():
        return AutoName(base.input, 15, base.source, separator="", randlen=3)
    return base


def autoname_of(resource: Any) -> AutoName | None:
    """The autonaming pulumi-aws applies to this resource, if its type has one."""
    if resource.type == "aws:rds/instance:Instance":
        return _rds_autoname(resource)
    return AUTONAMES.get(resource.type)


def _set(value: Any) -> bool:
    """The program set the input: the bridge defaults only absent (null) properties, so an
    explicit "" is a value (and the provider's validation sees it)."""
    return value is not None


def physical_names(resource: Any) -> dict[str, str]:
    """The name-like inputs the resource would have at preview: {input: value}.

    The explicit value when the program sets it, else the autoname (random part shown as
    PLACEHOLDER_SUFFIX). Empty for types Pulumi does not name. A `namePrefix` set by the
    program means Terraform generates the name, so no autoname is shown.
    """
    auto = autoname_of(resource)
    if auto is None:
        return {}
    explicit = resource.inputs.get(auto.input)
    if _set(explicit):
        return {auto.input: explicit} if isinstance(explicit, str) else {}
    if _set(resource.inputs.get(auto.input + "Prefix")) or _set(resource.inputs.get("namePrefix")):
        return {}
    value = auto.name(resource.name)
    if resource.type == "aws:sns/topic:Topic" and resource.inputs.get("fifoTopic") is True:
        value += ".fifo"
    return {auto.input: value}


def autoname_violations(resource: Any) -> list[Violation]:
    """The bridge's "plus 7 random chars is longer than maximum length" refusal, if any."""
    auto = autoname_of(resource)
    if auto is None or _set(resource.inputs.get(auto.input)):
        return []
    if _set(resource.inputs.get(auto.input + "Prefix")) or _set(resource.inputs.get("namePrefix")):
        return []
    refusal = auto.too_long(resource.name)
    if refusal is None:
        return []
    return [Violation(resource.urn, resource.type, resource.name, auto.input, resource.name,
                      f"could not make instance of '{resource.type}': {refusal}",
                      f"{auto.source}; {_BRIDGE}")]


# Where the offline mocks (`ladder/mocks.py` `AwsMocks.new_resource`/`_computed`) name a
# resource differently from pulumi-aws. Reported, not fixed here (mocks.py has its owner).
MOCK_DIFFERENCES: dict[str, str] = {
    "*": "mocks give every type without a `name` input a `name` state of logical name + '-' + 7 hex, "
         "also types Pulumi does not name (VPC, subnet, route table, ...) and types autonamed on "
         "another input (RDS identifier, replication group id, bucket, node group name)",
    "aws:rds/instance:Instance": "mocks: identifier = logical + '-' + 7 hex; pulumi-aws: logical + 7 hex, no separator",
    "aws:s3/bucket:Bucket": "mocks: bucket = logical + '-' + 8 hex, not lowercased; "
                            "pulumi-aws: lowercase(logical) + '-' + 7 hex within 63",
    "aws:elasticache/replicationGroup:ReplicationGroup":
        "mocks: replicationGroupId defaults to the logical name (no suffix, case kept); "
        "pulumi-aws: lowercase(logical) + '-' + 7 hex within 40",
    "aws:lb/loadBalancer:LoadBalancer": "mocks: ARN and DNS name use the logical name; "
                                        "pulumi-aws: the LB name is logical + '-' + 7 hex",
    "aws:lb/targetGroup:TargetGroup": "mocks: ARN uses the logical name; pulumi-aws: logical + '-' + 7 hex within 32",
    "aws:kms/alias:Alias": "pulumi-aws prefixes an autonamed alias with 'alias/' (mocks: plain logical + suffix)",
}
