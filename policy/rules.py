"""scaleladder's security and data-safety rules: one plain function per rule.

Two runners apply the same functions: `policy/__main__.py`, the CrossGuard pack the
Pulumi CLI loads (`pulumi preview --policy-pack policy`), and `ladder/policy.py`, which
checks the offline plan of every preset stack. A resource rule sees one `Resource`
(type, props with the engine's camelCase keys, options); a stack rule sees the whole
`Stack` and follows references between resources. Each yields violation messages.

Standard library only: the pack must import in any environment that has pulumi-policy.

During a real `pulumi preview` some values are still unknown (ids, ARNs, generated
tokens). pulumi-policy raises when a rule reads one and reports the policy as not
runnable during preview; it runs again, with known values, on `pulumi up`. So rules read
values only where they must, test existence with `present` (which never reads an
unknown), and join resources through `refs` (property dependencies, known in preview).
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import re
import textwrap
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# ---------------------------------------------------------------------------
# What a rule sees


@dataclass(frozen=True)
class Resource:
    """One resource as both runners present it."""

    type: str
    name: str
    urn: str
    props: Mapping[str, Any]
    protect: bool = False
    retain_on_delete: bool | None = None
    """None: the runner cannot see it (CrossGuard does not pass retainOnDelete to policies)."""
    refs: Mapping[str, Sequence[str]] = field(default_factory=dict)
    """Top-level property -> URNs of the resources its value comes from."""


class Stack:
    """Every resource of a stack, with the lookups cross-resource rules need."""

    def __init__(self, resources: Iterable[Resource]):
        self.resources = list(resources)
        self.by_urn = {r.urn: r for r in self.resources}

    def of_type(self, *types: str) -> list[Resource]:
        return [r for r in self.resources if r.type in types]

    def refs(self, r: Resource, prop: str, *types: str) -> list[Resource]:
        """The resources `r.props[prop]` refers to (optionally only of `types`)."""
        found = [self.by_urn[u] for u in r.refs.get(prop, ()) if u in self.by_urn]
        return [t for t in found if not types or t.type in types]

    def referring(self, target: Resource, prop: str, *types: str) -> list[Resource]:
        """The resources of `types` whose `prop` refers to `target`."""
        return [r for r in self.of_type(*types) if target.urn in r.refs.get(prop, ())]


class NotVisible(Exception):
    """The runner does not show what the rule needs (the rule does not apply there)."""


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    remediation: str
    check: Callable[..., Iterator[Any]]
    types: frozenset[str] = frozenset()  # resource rules: the types checked
    stack: bool = False  # stack rules yield (resource, message) over a Stack
    level: str = "mandatory"  # or "advisory": reported, never blocks


RULES: list[Rule] = []


def rule(name: str, remediation: str, types: Iterable[str] = (), stack: bool = False, level: str = "mandatory"):
    """Register a rule; its docstring's first line is its description."""

    def register(check: Callable[..., Iterator[Any]]):
        RULES.append(Rule(name, (check.__doc__ or "").strip().splitlines()[0], remediation, check,
                          frozenset(types), stack, level))
        return check

    return register


def by_name(name: str) -> Rule:
    return next(r for r in RULES if r.name == name)


def apply(r: Rule, resources: Sequence[Resource]) -> list[tuple[Resource, str]]:
    """Run one rule over a list of resources: (resource, message) per violation."""
    found: list[tuple[Resource, str]] = []
    try:
        if r.stack:
            found += list(r.check(Stack(resources)))
        else:
            for res in resources:
                if res.type in r.types:
                    try:
                        found += [(res, message) for message in r.check(res)]
                    except NotVisible:
                        pass
    except NotVisible:
        pass
    return found


# ---------------------------------------------------------------------------
# Reading props


def present(m: Any, key: str) -> bool:
    """`key` is set (not null, not empty) in mapping `m`. A value unknown during preview
    counts as set: it is computed, and it is never read here."""
    if not isinstance(m, Mapping) or key not in list(m):
        return False
    try:
        value = m[key]
    except KeyError:
        return False
    except Exception:  # pulumi-policy's UnknownValueError: computed during preview
        return True
    return value is not None and not (isinstance(value, (str, Sequence, Mapping)) and len(value) == 0)


def get(m: Any, *path: str | int, default: Any = None) -> Any:
    """m[path[0]][path[1]]..., or `default` where a step is missing."""
    for step in path:
        if isinstance(step, int):
            if not is_list(m) or step >= len(m):
                return default
            m = m[step]
        else:
            if not isinstance(m, Mapping) or step not in list(m):
                return default
            m = m[step]
        if m is None:
            return default
    return m


def is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def items(value: Any) -> list[Any]:
    return list(value) if is_list(value) else []


def truthy(value: Any) -> bool:
    """A boolean input: providers take true/false and some take the strings "true"/"false"."""
    return value is True or (isinstance(value, str) and value.lower() == "true")


def falsy(value: Any) -> bool:
    """Explicitly false (not merely unset)."""
    return value is False or (isinstance(value, str) and value.lower() == "false")


def number(value: Any, default: float = 0) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def tag_map(props: Mapping[str, Any]) -> dict[str, Any]:
    """Tags as a dict: a map (most resources) or a list of {key, value} (Auto Scaling groups)."""
    out: dict[str, Any] = {}
    for key in ("tagsAll", "tags"):
        tags = get(props, key)
        if isinstance(tags, Mapping):
            out.update({k: tags[k] for k in tags})
        elif is_list(tags):
            out.update({get(t, "key"): get(t, "value") for t in tags if isinstance(t, Mapping)})
    return out


def json_doc(value: Any) -> Any:
    """A policy document given as JSON text or as a structure."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return {}
    return value or {}


def statements(policy: Any) -> list[Mapping[str, Any]]:
    doc = json_doc(policy)
    found = get(doc, "Statement", default=[])
    return [s for s in ([found] if isinstance(found, Mapping) else items(found)) if isinstance(s, Mapping)]


# ---------------------------------------------------------------------------
# Resource types

RDS_INSTANCE = "aws:rds/instance:Instance"
RDS_PARAMS = "aws:rds/parameterGroup:ParameterGroup"
RDS_SUBNETS = "aws:rds/subnetGroup:SubnetGroup"
REDIS_GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
REDIS_PARAMS = "aws:elasticache/parameterGroup:ParameterGroup"
REDIS_SUBNETS = "aws:elasticache/subnetGroup:SubnetGroup"
SUBNET = "aws:ec2/subnet:Subnet"
ROUTE_TABLE = "aws:ec2/routeTable:RouteTable"
ROUTE = "aws:ec2/route:Route"
ROUTE_ASSOC = "aws:ec2/routeTableAssociation:RouteTableAssociation"
IGW = "aws:ec2/internetGateway:InternetGateway"
BUCKETS = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
BUCKET_PAB = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
BUCKET_SSE = ("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
              "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2")
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
BUCKET_ACLS = ("aws:s3/bucketAcl:BucketAcl", "aws:s3/bucketAclV2:BucketAclV2")
INSTANCE = "aws:ec2/instance:Instance"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
VOLUME = "aws:ebs/volume:Volume"
EIP = "aws:ec2/eip:Eip"
SG = "aws:ec2/securityGroup:SecurityGroup"
SG_INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
SG_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
SG_EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
LB = "aws:lb/loadBalancer:LoadBalancer"
LISTENER = "aws:lb/listener:Listener"
DISTRIBUTION = "aws:cloudfront/distribution:Distribution"
EKS_CLUSTER = "aws:eks/cluster:Cluster"
EKS_NODES = "aws:eks/nodeGroup:NodeGroup"
WORKLOADS = ("kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet", "kubernetes:apps/v1:DaemonSet")
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
HPAS = ("kubernetes:autoscaling/v2:HorizontalPodAutoscaler", "kubernetes:autoscaling/v1:HorizontalPodAutoscaler")
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
SCALED_OBJECT = "kubernetes:keda.sh/v1alpha1:ScaledObject"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"

# AWS types this project creates (or phase 6 will) whose schema has `tags`; a test keeps
# this list equal to what pulumi-aws says for every type in the preset plans.
TAGGABLE = frozenset({
    "aws:autoscaling/group:Group", "aws:cloudfront/distribution:Distribution", "aws:cloudwatch/logGroup:LogGroup",
    "aws:cloudwatch/metricAlarm:MetricAlarm", "aws:ebs/volume:Volume", "aws:ec2/eip:Eip", "aws:ec2/instance:Instance",
    "aws:ec2/internetGateway:InternetGateway", "aws:ec2/launchTemplate:LaunchTemplate", "aws:ec2/natGateway:NatGateway",
    "aws:ec2/routeTable:RouteTable", "aws:ec2/securityGroup:SecurityGroup", "aws:ec2/subnet:Subnet",
    "aws:ec2/vpc:Vpc", "aws:ec2/vpcEndpoint:VpcEndpoint", "aws:eks/accessEntry:AccessEntry", "aws:eks/addon:Addon",
    "aws:eks/cluster:Cluster", "aws:eks/nodeGroup:NodeGroup", "aws:eks/podIdentityAssociation:PodIdentityAssociation",
    "aws:elasticache/parameterGroup:ParameterGroup", "aws:elasticache/replicationGroup:ReplicationGroup",
    "aws:elasticache/subnetGroup:SubnetGroup", "aws:iam/instanceProfile:InstanceProfile",
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider", "aws:iam/policy:Policy", "aws:iam/role:Role",
    "aws:kms/key:Key", "aws:lb/listener:Listener", "aws:lb/listenerRule:ListenerRule", "aws:lb/loadBalancer:LoadBalancer", "aws:lb/targetGroup:TargetGroup",
    "aws:rds/instance:Instance", "aws:rds/parameterGroup:ParameterGroup", "aws:rds/subnetGroup:SubnetGroup",
    "aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2", "aws:secretsmanager/secret:Secret", "aws:sns/topic:Topic",
    "aws:ssm/parameter:Parameter", "aws:wafv2/webAcl:WebAcl",
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
})
REQUIRED_TAGS = ("project", "stack", "phase")
WORLD = ("0.0.0.0/0", "::/0")
WEB_PORTS = (80, 443)


def is_replica(db: Resource) -> bool:
    return present(db.props, "replicateSourceDb")


# ---------------------------------------------------------------------------
# Data tier: RDS


@rule("rds-not-public", types=[RDS_INSTANCE],
      remediation="Set publicly_accessible=False; the app reaches the database through its security group.")
def rds_not_public(r: Resource) -> Iterator[str]:
    """RDS instances are not publicly accessible."""
    if truthy(r.props.get("publiclyAccessible")):
        yield "publiclyAccessible is true: the database gets a public DNS name and address"


@rule("rds-storage-encrypted", types=[RDS_INSTANCE],
      remediation="Set storage_encrypted=True (a new instance; restore an encrypted snapshot copy to migrate).")
def rds_storage_encrypted(r: Resource) -> Iterator[str]:
    """RDS storage is encrypted at rest (replicas inherit it from their source unless set false)."""
    value = r.props.get("storageEncrypted")
    if falsy(value) or (not truthy(value) and not is_replica(r)):
        yield "storageEncrypted is not true"


@rule("rds-backup-retention", types=[RDS_INSTANCE],
      remediation="Set backup_retention_period to 7 or more on the primary (database.backupRetentionDays).")
def rds_backup_retention(r: Resource) -> Iterator[str]:
    """The RDS primary keeps automated backups for at least 7 days."""
    days = number(r.props.get("backupRetentionPeriod"))
    if not is_replica(r) and days < 7:
        yield f"backupRetentionPeriod is {days:g} days; at least 7 required"


@rule("rds-deletion-protection", types=[RDS_INSTANCE],
      remediation="Set deletion_protection=True on the primary; turn it off deliberately before a planned removal.")
def rds_deletion_protection(r: Resource) -> Iterator[str]:
    """The RDS primary has deletion protection."""
    if not is_replica(r) and not truthy(r.props.get("deletionProtection")):
        yield "deletionProtection is not true"


@rule("rds-final-snapshot", types=[RDS_INSTANCE],
      remediation="Set skip_final_snapshot=False and a final_snapshot_identifier on the primary.")
def rds_final_snapshot(r: Resource) -> Iterator[str]:
    """Deleting the RDS primary leaves a final snapshot."""
    if is_replica(r):
        return
    if truthy(r.props.get("skipFinalSnapshot")):
        yield "skipFinalSnapshot is true: deleting the instance loses the data"
    elif not present(r.props, "finalSnapshotIdentifier"):
        yield "no finalSnapshotIdentifier: AWS refuses the delete, or Pulumi cannot name the snapshot"


@rule("rds-own-master-password", types=[RDS_INSTANCE],
      remediation="Drop manage_master_user_password and pass a generated password (random.RandomPassword, a "
                  "Pulumi secret) kept in the project's own Secrets Manager secret (components/database.py).")
def rds_own_master_password(r: Resource) -> Iterator[str]:
    """The RDS master password is the project's own, never managed by RDS.

    RDS refuses read replicas of a source whose password it manages (RDS User Guide,
    "Limitations for Secrets Manager integration with Amazon RDS") and rotates it every
    7 days where no tier follows."""
    if truthy(r.props.get("manageMasterUserPassword")):
        yield "manageMasterUserPassword is true: RDS refuses read replicas of it and rotates it unseen"
    if not is_replica(r) and not (present(r.props, "password") or present(r.props, "passwordWo")):
        yield "no master password: the bootstrap cannot log in to create the app's roles"


@rule("rds-auto-minor-upgrade", types=[RDS_INSTANCE],
      remediation="Leave auto_minor_version_upgrade at its default (true): security patches land in the "
                  "maintenance window.")
def rds_auto_minor_upgrade(r: Resource) -> Iterator[str]:
    """RDS instances take minor engine upgrades (security fixes) automatically."""
    if falsy(r.props.get("autoMinorVersionUpgrade")):
        yield "autoMinorVersionUpgrade is false"


@rule("rds-tls-required", types=[RDS_PARAMS],
      remediation="Set rds.force_ssl=1 (PostgreSQL) or require_secure_transport=1 (MySQL) in the parameter group.")
def rds_tls_required(r: Resource) -> Iterator[str]:
    """RDS parameter groups refuse connections without TLS."""
    family = str(r.props.get("family") or "")
    params = {str(get(p, "name")): str(get(p, "value")) for p in items(r.props.get("parameters"))}
    # RDS defaults rds.force_ssl to 1 from postgres15 (RDS User Guide, "Updating applications to
    # connect to PostgreSQL DB instances using new SSL/TLS certificates"): unset is fine there.
    major = re.match(r"postgres(\d+)", family)
    default = "1" if major and int(major.group(1)) >= 15 else "0"
    if family.startswith("postgres") and params.get("rds.force_ssl", default) != "1":
        yield f"{family}: rds.force_ssl is {params.get('rds.force_ssl', f'unset ({default})')}; must be 1"
    secure_transport = params.get("require_secure_transport", "").lower()
    if family.startswith(("mysql", "mariadb")) and secure_transport not in ("1", "on"):
        yield f"{family}: require_secure_transport is not ON"


# ---------------------------------------------------------------------------
# Data tier: ElastiCache (Redis)


@rule("elasticache-at-rest-encryption", types=[REDIS_GROUP],
      remediation="Set at_rest_encryption_enabled=True (set at creation: a new group, data restored from a snapshot).")
def elasticache_at_rest_encryption(r: Resource) -> Iterator[str]:
    """ElastiCache replication groups encrypt data at rest."""
    if not truthy(r.props.get("atRestEncryptionEnabled")):
        yield "atRestEncryptionEnabled is not true"


@rule("elasticache-in-transit-encryption", types=[REDIS_GROUP],
      remediation="Set transit_encryption_enabled=True (and transit_encryption_mode 'required' if you set a mode).")
def elasticache_in_transit_encryption(r: Resource) -> Iterator[str]:
    """ElastiCache replication groups accept TLS connections only."""
    if not truthy(r.props.get("transitEncryptionEnabled")):
        yield "transitEncryptionEnabled is not true"
    elif str(r.props.get("transitEncryptionMode") or "required") != "required":
        yield f"transitEncryptionMode is {r.props.get('transitEncryptionMode')}: plaintext clients still connect"


@rule("elasticache-auth", types=[REDIS_GROUP],
      remediation="Set auth_token (from a generated secret) or user_group_ids (Redis ACL users).")
def elasticache_auth(r: Resource) -> Iterator[str]:
    """ElastiCache replication groups require authentication (AUTH token or ACL users)."""
    if not present(r.props, "authToken") and not present(r.props, "userGroupIds"):
        yield "neither authToken nor userGroupIds is set: any client that reaches the port is in"


@rule("elasticache-noeviction", types=[REDIS_PARAMS],
      remediation="Set maxmemory-policy=noeviction in every Redis parameter group: BullMQ loses jobs when "
                  "Redis evicts.")
def elasticache_noeviction(r: Resource) -> Iterator[str]:
    """Redis parameter groups set maxmemory-policy noeviction (BullMQ's requirement)."""
    params = {str(get(p, "name")): str(get(p, "value")) for p in items(r.props.get("parameters"))}
    policy = params.get("maxmemory-policy", "volatile-lru (ElastiCache default)")
    if policy != "noeviction":
        yield f"maxmemory-policy is {policy}; BullMQ needs noeviction"


@rule("elasticache-snapshots", types=[REDIS_GROUP],
      remediation="Set snapshot_retention_limit to 1 or more (the queue's jobs live in Redis).")
def elasticache_snapshots(r: Resource) -> Iterator[str]:
    """ElastiCache replication groups keep daily snapshots."""
    if number(r.props.get("snapshotRetentionLimit")) < 1:
        yield "snapshotRetentionLimit is 0: no snapshot to restore the queue from"


def public_subnet(stack: Stack, subnet: Resource) -> bool:
    """A subnet is public if it maps public IPs or its route table routes to an internet gateway."""
    if truthy(subnet.props.get("mapPublicIpOnLaunch")):
        return True
    for assoc in stack.referring(subnet, "subnetId", ROUTE_ASSOC):
        for table in stack.refs(assoc, "routeTableId", ROUTE_TABLE):
            if stack.refs(table, "routes", IGW):
                return True
            if any(stack.refs(route, "gatewayId", IGW) for route in stack.referring(table, "routeTableId", ROUTE)):
                return True
    return False


@rule("data-tier-private", stack=True,
      remediation="Place RDS and ElastiCache in subnet groups of private subnets (no route to an internet gateway), "
                  "with their own security groups.")
def data_tier_private(stack: Stack) -> Iterator[tuple[Resource, str]]:
    """RDS and ElastiCache live only in private subnets, behind their own security groups."""
    for group in stack.of_type(RDS_SUBNETS, REDIS_SUBNETS):
        for subnet in stack.refs(group, "subnetIds", SUBNET):
            if public_subnet(stack, subnet):
                yield group, f"subnet {subnet.name} is public (route to an internet gateway or public IPs)"
    for db in stack.of_type(RDS_INSTANCE):
        if not is_replica(db) and not present(db.props, "dbSubnetGroupName"):
            yield db, "no dbSubnetGroupName: the instance lands in the default VPC"
        if not present(db.props, "vpcSecurityGroupIds"):
            yield db, "no vpcSecurityGroupIds: the default security group applies"
    for group in stack.of_type(REDIS_GROUP):
        if not present(group.props, "subnetGroupName"):
            yield group, "no subnetGroupName: the group lands in the default VPC"
        if not present(group.props, "securityGroupIds"):
            yield group, "no securityGroupIds: the default security group applies"


# ---------------------------------------------------------------------------
# S3

PUBLIC_ACLS = ("public-read", "public-read-write", "authenticated-read")
PUBLIC_GRANTEES = ("acs.amazonaws.com/groups/global/AllUsers", "acs.amazonaws.com/groups/global/AuthenticatedUsers")
BLOCK_FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")


@rule("s3-public-access-blocked", stack=True,
      remediation="Give every bucket an aws.s3.BucketPublicAccessBlock with all four settings true.")
def s3_public_access_blocked(stack: Stack) -> Iterator[tuple[Resource, str]]:
    """Every S3 bucket blocks public access (all four public access block settings on)."""
    for bucket in stack.of_type(*BUCKETS):
        blocks = stack.referring(bucket, "bucket", BUCKET_PAB)
        if not blocks:
            yield bucket, "no BucketPublicAccessBlock"
        for block in blocks:
            off = [flag for flag in BLOCK_FLAGS if not truthy(block.props.get(flag))]
            if off:
                yield block, f"public access block leaves {', '.join(off)} off"


@rule("s3-no-public-acl", types=[*BUCKETS, *BUCKET_ACLS],
      remediation="Use BucketOwnerEnforced ownership (ACLs off) or grant only canonical user ids; never public "
                  "canned ACLs.")
def s3_no_public_acl(r: Resource) -> Iterator[str]:
    """No bucket ACL grants access to everyone or to any AWS user."""
    acl = str(r.props.get("acl") or "")
    if acl in PUBLIC_ACLS:
        yield f"canned ACL {acl}"
    for grant in items(get(r.props, "accessControlPolicy", "grants")):
        uri = str(get(grant, "grantee", "uri", default=""))
        if any(uri.endswith(g) for g in PUBLIC_GRANTEES):
            yield f"grants {get(grant, 'permission')} to {uri}"
    for grant in items(r.props.get("grants")):  # legacy inline grants on the bucket
        uri = str(get(grant, "uri", default=""))
        if any(uri.endswith(g) for g in PUBLIC_GRANTEES):
            yield f"grants {items(get(grant, 'permissions'))} to {uri}"


def _everyone(principal: Any) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, Mapping):
        aws = principal.get("AWS")
        return aws == "*" or (is_list(aws) and "*" in list(aws or []))
    return False


# What S3 counts as "not public" (S3 User Guide, "Blocking public access to your Amazon S3
# storage", "The meaning of public"): a policy that grants only to FIXED values (no wildcard)
# of these keys. Any other Condition (aws:SecureTransport, aws:UserAgent, s3:prefix, an
# ...IfExists operator, which holds when the key is absent) still lets anyone in.
RESTRICTING_KEYS = frozenset({"aws:sourcearn", "aws:sourceaccount", "aws:sourceowner", "aws:sourcevpc",
                              "aws:sourcevpce", "aws:principalaccount", "aws:principalarn", "aws:principalorgid",
                              "aws:userid", "aws:sourceip", "s3:dataaccesspointarn", "s3:dataaccesspointaccount"})
FIXED_OPERATORS = frozenset({"StringEquals", "StringEqualsIgnoreCase", "ArnEquals", "StringLike", "ArnLike",
                             "IpAddress"})


def _fixed(key: str, value: Any) -> bool:
    """A condition value that names fixed sources: no wildcard, no world CIDR."""
    values = [str(v) for v in (value if is_list(value) else [value])]
    if not values or any("*" in v or "?" in v for v in values):
        return False
    if key == "aws:sourceip":  # S3 treats ranges wider than /8 as public
        return all("/" in v and number(v.rsplit("/", 1)[1], 0) >= 8 for v in values)
    return True


def restricts_principals(condition: Any) -> bool:
    """The Condition limits a Principal-* statement to fixed accounts, ARNs, VPCs or sources."""
    if not isinstance(condition, Mapping):
        return False
    for operator, tests in condition.items():
        if operator not in FIXED_OPERATORS or not isinstance(tests, Mapping):
            continue
        if any(str(k).lower() in RESTRICTING_KEYS and _fixed(str(k).lower(), v) for k, v in tests.items()):
            return True
    return False


@rule("s3-no-public-policy", types=[BUCKET_POLICY],
      remediation="Allow named principals only (e.g. cloudfront.amazonaws.com with an AWS:SourceArn condition), or "
                  "condition Principal * on fixed values of aws:SourceArn/SourceAccount/PrincipalOrgID/SourceVpce.")
def s3_no_public_policy(r: Resource) -> Iterator[str]:
    """No bucket policy allows everyone, unless a condition pins it to fixed accounts, sources or VPCs."""
    for s in statements(r.props.get("policy")):
        if s.get("Effect") != "Allow":
            continue
        sid = s.get("Sid", "(no Sid)")
        if "NotPrincipal" in s:
            yield f"statement {sid} allows everyone but NotPrincipal"
        elif _everyone(s.get("Principal")) and not restricts_principals(s.get("Condition")):
            shown = "unconditionally" if not s.get("Condition") else "with a condition that names no fixed source"
            yield f"statement {sid} allows Principal * {shown}"


@rule("s3-encrypted", stack=True,
      remediation="Give every bucket an aws.s3.BucketServerSideEncryptionConfiguration (SSE-S3 or SSE-KMS).")
def s3_encrypted(stack: Stack) -> Iterator[tuple[Resource, str]]:
    """Every S3 bucket has default server-side encryption configured."""
    for bucket in stack.of_type(*BUCKETS):
        if not stack.referring(bucket, "bucket", *BUCKET_SSE) and not present(bucket.props,
                                                                             "serverSideEncryptionConfiguration"):
            yield bucket, "no server-side encryption configuration"


def _denies_plain_http(s: Mapping[str, Any]) -> bool:
    condition = s.get("Condition") or {}
    bool_test = get(condition, "Bool", default={}) if isinstance(condition, Mapping) else {}
    secure = {str(k).lower(): v for k, v in bool_test.items()} if isinstance(bool_test, Mapping) else {}
    return s.get("Effect") == "Deny" and str(secure.get("aws:securetransport", "")).lower() == "false"


@rule("s3-tls-only", stack=True,
      remediation="Add a bucket policy statement: Deny s3:* to Principal * when aws:SecureTransport is false.")
def s3_tls_only(stack: Stack) -> Iterator[tuple[Resource, str]]:
    """Every S3 bucket's policy denies requests that do not use TLS."""
    for bucket in stack.of_type(*BUCKETS):
        policies = stack.referring(bucket, "bucket", BUCKET_POLICY)
        if not any(_denies_plain_http(s) for p in policies for s in statements(p.props.get("policy"))):
            yield bucket, "no bucket policy denies aws:SecureTransport=false"


# ---------------------------------------------------------------------------
# EC2 hosts


NO_TEMPLATE = "no launch template: EKS generates one this policy cannot see"


@rule("ebs-encrypted", types=[INSTANCE, LAUNCH_TEMPLATE, VOLUME, EKS_NODES],
      remediation="Encrypt every EBS volume: root_block_device.encrypted / block_device_mappings ebs.encrypted='true'; "
                  "give EKS node groups a launch template that does so.")
def ebs_encrypted(r: Resource) -> Iterator[str]:
    """EBS volumes (instance roots, launch-template mappings, volumes, EKS nodes) are encrypted."""
    p = r.props
    if r.type == EKS_NODES:
        if not present(p, "launchTemplate"):
            yield f"{NO_TEMPLATE} (its root volume is encrypted only if the account encrypts EBS by default)"
    elif r.type == VOLUME:
        if not truthy(p.get("encrypted")):
            yield "volume is not encrypted"
    elif r.type == INSTANCE:
        if not truthy(get(p, "rootBlockDevice", "encrypted")):
            yield "rootBlockDevice.encrypted is not true (the root volume follows the AMI)"
        for dev in items(p.get("ebsBlockDevices")):
            if not truthy(get(dev, "encrypted")):
                yield f"ebs block device {get(dev, 'deviceName')} is not encrypted"
    else:
        mappings = [m for m in items(p.get("blockDeviceMappings")) if get(m, "ebs") is not None]
        if not mappings:
            yield "no EBS block device mapping: the root volume follows the AMI (unencrypted)"
        for m in mappings:
            if not truthy(get(m, "ebs", "encrypted")):
                yield f"block device {get(m, 'deviceName')} is not encrypted"


@rule("imdsv2-required", types=[INSTANCE, LAUNCH_TEMPLATE, EKS_NODES],
      remediation="Set metadata_options http_tokens='required' and http_put_response_hop_limit=1: a container "
                  "(or an EKS pod) is one hop further and then cannot fetch the instance role's credentials; EKS "
                  "nodes: a launch template that does the same (the host-network VPC CNI works with 1).")
def imdsv2_required(r: Resource) -> Iterator[str]:
    """Instances, launch templates and EKS node groups accept IMDSv2 (session tokens) only, with hop limit 1."""
    if r.type == EKS_NODES:
        if not present(r.props, "launchTemplate"):
            yield f"{NO_TEMPLATE}: IMDSv2 cannot be required or checked"
        return
    options = r.props.get("metadataOptions")
    if get(options, "httpEndpoint") == "disabled":
        return
    if get(options, "httpTokens") != "required":
        yield f"metadataOptions.httpTokens is {get(options, 'httpTokens', default='unset (optional)')}"
    # Unset is not 1: an AMI registered with ImdsSupport v2.0 (Amazon Linux 2023, EKS AL2023
    # node AMIs) sets the hop limit to 2 (EC2 API reference, Image.ImdsSupport).
    hops = get(options, "httpPutResponseHopLimit")
    if hops is None:
        yield "metadataOptions.httpPutResponseHopLimit is unset (2 on AMIs with ImdsSupport v2.0): containers reach the role"
    elif number(hops, 2) != 1:
        yield f"metadataOptions.httpPutResponseHopLimit is {number(hops, 2):g}: containers one hop away reach the role"


@rule("no-ssh-keys", types=[INSTANCE, LAUNCH_TEMPLATE, EKS_NODES],
      remediation="Reach hosts with SSM Session Manager (the instance role has AmazonSSMManagedInstanceCore); "
                  "no key pairs.")
def no_ssh_keys(r: Resource) -> Iterator[str]:
    """No EC2 key pairs or node-group remote access: hosts are reached through SSM."""
    if present(r.props, "keyName"):
        yield "keyName is set: an SSH key pair is installed"
    if present(r.props, "remoteAccess"):
        yield "remoteAccess is set: the node group opens SSH"


# ---------------------------------------------------------------------------
# Network


@dataclass(frozen=True)
class Ingress:
    protocol: str  # "tcp", "udp", "icmp", "all", ...
    from_port: int
    to_port: int
    cidrs: tuple[str, ...]

    def covers(self, port: int) -> bool:
        return self.protocol == "all" or (self.protocol == "tcp" and self.from_port <= port <= self.to_port)


_PROTOCOLS = {"-1": "all", "all": "all", "6": "tcp", "17": "udp", "1": "icmp"}


def _ingress(protocol: Any, from_port: Any, to_port: Any, cidrs: Iterable[Any]) -> Ingress:
    proto = _PROTOCOLS.get(str(protocol).lower(), str(protocol).lower())
    low, high = (0, 65535) if proto == "all" else (int(number(from_port)), int(number(to_port, number(from_port))))
    return Ingress(proto, low, high, tuple(str(c) for c in cidrs if c))


def ingress_of(r: Resource) -> list[Ingress]:
    """The ingress a security group, a VPC ingress rule or a classic group rule opens."""
    p = r.props
    if r.type == SG:
        return [_ingress(get(i, "protocol"), get(i, "fromPort"), get(i, "toPort"),
                         [*items(get(i, "cidrBlocks")), *items(get(i, "ipv6CidrBlocks"))])
                for i in items(p.get("ingress"))]
    if r.type == SG_INGRESS:
        return [_ingress(p.get("ipProtocol"), p.get("fromPort"), p.get("toPort"),
                         [p.get("cidrIpv4"), p.get("cidrIpv6")])]
    if r.type == SG_RULE and p.get("type") == "ingress":
        return [_ingress(p.get("protocol"), p.get("fromPort"), p.get("toPort"),
                         [*items(p.get("cidrBlocks")), *items(p.get("ipv6CidrBlocks"))])]
    return []


def _span(i: Ingress) -> str:
    ports = "all ports" if i.protocol == "all" else (
        f"port {i.from_port}" if i.from_port == i.to_port else f"ports {i.from_port}-{i.to_port}")
    return f"{i.protocol} {ports} from {', '.join(i.cidrs) or 'a security group'}"


@rule("no-ssh-ingress", types=[SG, SG_INGRESS, SG_RULE],
      remediation="Remove the rule; use SSM Session Manager. Open only the service port the next tier needs.")
def no_ssh_ingress(r: Resource) -> Iterator[str]:
    """No ingress rule opens SSH (port 22, or all traffic from an address range)."""
    for i in ingress_of(r):
        if (i.protocol == "tcp" and i.covers(22)) or (i.protocol == "all" and i.cidrs):
            yield f"opens {_span(i)}, which includes SSH"


def edge_groups(stack: Stack) -> set[str]:
    """URNs of security groups that front a public entry point: an internet-facing load
    balancer, or an instance with an Elastic IP (phase 1's VM, the nginx load balancer)."""
    edges: set[str] = set()
    for lb in stack.of_type(LB):
        if not truthy(lb.props.get("internal")):
            edges |= {g.urn for g in stack.refs(lb, "securityGroups", SG)}
    for eip in stack.of_type(EIP):
        for host in stack.refs(eip, "instance", INSTANCE):
            edges |= {g.urn for g in stack.refs(host, "vpcSecurityGroupIds", SG)}
            edges |= {g.urn for g in stack.refs(host, "securityGroups", SG)}
    return edges


@rule("world-ingress-web-edge-only", stack=True,
      remediation="Admit 0.0.0.0/0 or ::/0 only on 80/443 of the group of an internet-facing load balancer (or the "
                  "phase 1 VM with its Elastic IP); every other tier admits only the security group in front of it.")
def world_ingress_web_edge_only(stack: Stack) -> Iterator[tuple[Resource, str]]:
    """Only the public edge admits the internet, and only on ports 80 and 443."""
    edges = edge_groups(stack)
    for r in stack.of_type(SG, SG_INGRESS, SG_RULE):
        for i in ingress_of(r):
            if not any(c in WORLD for c in i.cidrs):
                continue
            if not (i.protocol == "tcp" and i.from_port == i.to_port and i.from_port in WEB_PORTS):
                yield r, f"opens {_span(i)}: only 80 and 443 may face the internet"
                continue
            groups = _groups_of(stack, r)
            if not groups or not groups <= edges:
                yield r, f"opens {_span(i)} on a group that fronts no public entry point"


WAF_ASSOCIATION = "aws:wafv2/webAclAssociation:WebAclAssociation"
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
_ALB_NOTE = "alb.ingress.kubernetes.io"


def _world_groups(stack: Stack) -> set[str]:
    """URNs of security groups that admit 0.0.0.0/0 or ::/0 (inline or through rule resources)."""
    out: set[str] = set()
    for r in stack.of_type(SG, SG_INGRESS, SG_RULE):
        if any(c in WORLD for i in ingress_of(r) for c in i.cidrs):
            out |= _groups_of(stack, r)
    return out


def _groups_of(stack: Stack, r: Resource) -> set[str]:
    """The security group(s) an ingress belongs to: the group itself, or the one a rule resource names."""
    return {r.urn} if r.type == SG else {g.urn for g in stack.refs(r, "securityGroupId", SG)}


@rule("public-alb-behind-waf", stack=True,
      remediation="Associate a REGIONAL AWS WAF web ACL (per-IP rate limit + managed rule groups, components/waf.py) "
                  "with every application load balancer the internet reaches directly (aws.wafv2.WebAclAssociation; "
                  "an Ingress's ALB: the alb.ingress.kubernetes.io/wafv2-acl-arn annotation), or admit only "
                  "CloudFront's origin-facing prefix list, whose distribution has a web ACL of its own.")
def public_alb_behind_waf(stack: Stack) -> Iterator[tuple[Resource, str]]:
    """Every application load balancer the internet reaches directly is behind an AWS WAF web ACL."""
    world = _world_groups(stack)
    protected = {u for a in stack.of_type(WAF_ASSOCIATION) for u in a.refs.get("resourceArn", ())}
    for lb in stack.of_type(LB):
        if (lb.props.get("loadBalancerType") or "application") != "application" or truthy(lb.props.get("internal")):
            continue
        if {g.urn for g in stack.refs(lb, "securityGroups", SG)} & world and lb.urn not in protected:
            yield lb, "admits the internet and no web ACL is associated with it (no rate limit, no managed rules)"
    for ing in stack.of_type(INGRESS):
        notes = get(ing.props, "metadata", "annotations", default={}) or {}
        if notes.get(f"{_ALB_NOTE}/scheme") != "internet-facing" or notes.get(f"{_ALB_NOTE}/security-group-prefix-lists"):
            continue  # internal, or admitting a prefix list (CloudFront's) instead of the default 0.0.0.0/0
        cidrs = [c.strip() for c in str(notes.get(f"{_ALB_NOTE}/inbound-cidrs") or "0.0.0.0/0, ::/0").split(",")]
        if any(c in WORLD for c in cidrs) and not _regional_web_acl_arn(notes.get(f"{_ALB_NOTE}/wafv2-acl-arn")):
            yield ing, ("its ALB admits the internet and the Ingress names no REGIONAL AWS WAF (wafv2-acl-arn "
                        "arn:aws:wafv2:<region>:<account>:regional/webacl/...; WAF Classic's waf-acl-id does not count)")


def _regional_web_acl_arn(value: Any) -> bool:
    """A WAFv2 REGIONAL web ACL's ARN (`...:regional/webacl/<name>/<id>`: aws-load-balancer-controller
    docs/guide/ingress/annotations.md). Not WAF Classic's `waf-acl-id` annotation ("AWS WAF Classic
    support will end on September 30, 2025": AWS WAF Developer Guide, "Data protection in AWS WAF
    Classic"; review-cost-aws finding 6), and not a CloudFront (global) ACL."""
    return isinstance(value, str) and value.startswith("arn:aws") and ":wafv2:" in value \
        and ":regional/webacl/" in value


@rule("nlb-internal", types=[LB],
      remediation="Set internal=True on network load balancers; the internet enters through the ALB (or "
                  "CloudFront) only.")
def nlb_internal(r: Resource) -> Iterator[str]:
    """Network and gateway load balancers are internal (the only public entry is the application load balancer)."""
    kind = r.props.get("loadBalancerType") or "application"
    if kind != "application" and not truthy(r.props.get("internal")):
        yield f"{kind} load balancer is internet-facing"


@rule("alb-drop-invalid-headers", types=[LB],
      remediation="Set drop_invalid_header_fields=True on application load balancers (request-smuggling defence).")
def alb_drop_invalid_headers(r: Resource) -> Iterator[str]:
    """Application load balancers drop invalid HTTP header fields."""
    if (r.props.get("loadBalancerType") or "application") == "application" and not truthy(
            r.props.get("dropInvalidHeaderFields")):
        yield "dropInvalidHeaderFields is not true"


MODERN_TLS_POLICIES = ("ELBSecurityPolicy-TLS13-", "ELBSecurityPolicy-TLS-1-2-", "ELBSecurityPolicy-FS-1-2-")


@rule("lb-listener-modern-tls", types=[LISTENER],
      remediation="Set ssl_policy to ELBSecurityPolicy-TLS13-1-2-2021-06 (TLS 1.2+ with forward secrecy).")
def lb_listener_modern_tls(r: Resource) -> Iterator[str]:
    """HTTPS and TLS listeners refuse TLS versions below 1.2."""
    if str(r.props.get("protocol") or "").upper() in ("HTTPS", "TLS"):
        policy = str(r.props.get("sslPolicy") or "ELBSecurityPolicy-2016-08 (default)")
        if not policy.startswith(MODERN_TLS_POLICIES):
            yield f"sslPolicy {policy} admits TLS below 1.2"


# ---------------------------------------------------------------------------
# CloudFront

HTTPS_VIEWER = ("redirect-to-https", "https-only")


@rule("cloudfront-oac", types=[DISTRIBUTION],
      remediation="Give S3 origins an origin_access_control_id (aws.cloudfront.OriginAccessControl) and no "
                  "s3_origin_config origin access identity; the bucket policy allows cloudfront.amazonaws.com with "
                  "AWS:SourceArn = the distribution.")
def cloudfront_oac(r: Resource) -> Iterator[str]:
    """CloudFront reads S3 origins through origin access control, not the legacy origin access identity."""
    for origin in items(r.props.get("origins")):
        origin_id = get(origin, "originId", default="?")
        if present(get(origin, "s3OriginConfig", default={}), "originAccessIdentity"):
            yield f"origin {origin_id} uses a legacy origin access identity"
        elif not present(origin, "customOriginConfig") and not present(origin, "vpcOriginConfig") \
                and not present(origin, "originAccessControlId"):
            yield f"S3 origin {origin_id} has no origin access control: the bucket would have to be public"


@rule("cloudfront-https-only", types=[DISTRIBUTION],
      remediation="Set viewer_protocol_policy='redirect-to-https' on every cache behaviour, "
                  "minimum_protocol_version TLSv1.2_2021 with a custom certificate, and origin_protocol_policy "
                  "'https-only' (origin_ssl_protocols ['TLSv1.2']) on custom origins (app.certificateArn + "
                  "cdn.originDomain).")
def cloudfront_https_only(r: Resource) -> Iterator[str]:
    """CloudFront serves viewers over HTTPS only (TLS 1.2+ with a custom certificate) and reaches custom origins over HTTPS."""
    behaviours = [("default", r.props.get("defaultCacheBehavior"))]
    behaviours += [(get(b, "pathPattern", default="?"), b) for b in items(r.props.get("orderedCacheBehaviors"))]
    for path, b in behaviours:
        policy = get(b, "viewerProtocolPolicy")
        if policy not in HTTPS_VIEWER:
            yield f"cache behaviour {path}: viewerProtocolPolicy {policy} serves plain HTTP"
    # CloudFront -> a custom origin (the load balancer): the viewer's cookies and Authorization
    # travel this leg too (AllViewerExceptHostHeader), so it is HTTPS with TLS 1.2 only.
    for origin in items(r.props.get("origins")):
        custom = get(origin, "customOriginConfig")
        if custom is None:
            continue
        origin_id = get(origin, "originId", default="?")
        protocol = get(custom, "originProtocolPolicy", default="unset")
        if protocol != "https-only":
            yield f"origin {origin_id}: originProtocolPolicy {protocol} sends viewer requests to the origin in plain HTTP"
        old_tls = [str(v) for v in items(get(custom, "originSslProtocols")) if str(v) in ("SSLv3", "TLSv1", "TLSv1.1")]
        if old_tls:
            yield f"origin {origin_id}: originSslProtocols allows {', '.join(old_tls)}"
    cert = r.props.get("viewerCertificate")
    if present(cert, "acmCertificateArn") or present(cert, "iamCertificateId"):
        version = str(get(cert, "minimumProtocolVersion", default="TLSv1 (default)"))
        if not version.startswith("TLSv1.2"):
            yield f"viewerCertificate.minimumProtocolVersion {version} admits TLS below 1.2"


# ---------------------------------------------------------------------------
# EKS


@rule("eks-endpoint-private", types=[EKS_CLUSTER],
      remediation="Set vpc_config endpoint_private_access=True.")
def eks_endpoint_private(r: Resource) -> Iterator[str]:
    """The EKS API has a private endpoint: nodes and pods reach it inside the VPC."""
    if not truthy(get(r.props.get("vpcConfig"), "endpointPrivateAccess")):
        yield "endpointPrivateAccess is not true: nodes reach the API over the internet"


@rule("eks-public-endpoint-restricted", types=[EKS_CLUSTER],
      remediation="Set public_access_cidrs to the deployers' egress ranges (eks.publicAccessCidrs: CI runners, "
                  "office VPN), or endpoint_public_access=False (eks.endpointAccess: private) and deploy from inside "
                  "the VPC.")
def eks_public_endpoint_restricted(r: Resource) -> Iterator[str]:
    """The EKS public API endpoint is off or limited to listed address ranges."""
    # Mandatory: the config has no open default (eks.publicAccessCidrs refuses 0.0.0.0/0), so an
    # open endpoint is a program change, not a stack choice.
    vpc = r.props.get("vpcConfig")
    if not falsy(get(vpc, "endpointPublicAccess")):
        cidrs = [str(c) for c in items(get(vpc, "publicAccessCidrs"))] or ["0.0.0.0/0 (default)"]
        open_to = [c for c in cidrs if c.split(" ")[0] in WORLD]
        if open_to:
            yield f"public endpoint open to {', '.join(open_to)}"


@rule("eks-secrets-encryption", types=[EKS_CLUSTER],
      remediation="Set encryption_config with a KMS key (provider.key_arn) and resources=['secrets'].")
def eks_secrets_encryption(r: Resource) -> Iterator[str]:
    """EKS envelope-encrypts Kubernetes secrets with a KMS key."""
    configs = r.props.get("encryptionConfig")
    configs = [configs] if isinstance(configs, Mapping) else items(configs)
    if not any("secrets" in items(get(c, "resources")) and present(get(c, "provider", default={}), "keyArn")
               for c in configs):
        yield "no encryptionConfig with a KMS key for resources ['secrets']"


EKS_LOGS = ("api", "audit", "authenticator")


@rule("eks-control-plane-logging", types=[EKS_CLUSTER],
      remediation="Set enabled_cluster_log_types to at least ['api', 'audit', 'authenticator'].")
def eks_control_plane_logging(r: Resource) -> Iterator[str]:
    """EKS sends the API, audit and authenticator logs to CloudWatch."""
    missing = [t for t in EKS_LOGS if t not in items(r.props.get("enabledClusterLogTypes"))]
    if missing:
        yield f"control-plane logs off: {', '.join(missing)}"


# ---------------------------------------------------------------------------
# Kubernetes workloads


def pod_spec(r: Resource) -> Any:
    return get(r.props, "spec", "template", "spec", default={})


def containers(r: Resource) -> list[Any]:
    spec = pod_spec(r)
    return [*items(get(spec, "initContainers")), *items(get(spec, "containers"))]


@rule("k8s-container-resources", types=WORKLOADS,
      remediation="Give every container resources.requests and resources.limits for cpu and memory "
                  "(the HPA computes utilisation from requests).")
def k8s_container_resources(r: Resource) -> Iterator[str]:
    """Every container declares CPU and memory requests and limits."""
    for c in containers(r):
        missing = [f"{kind}.{res}" for kind in ("requests", "limits") for res in ("cpu", "memory")
                   if not present(get(c, "resources", kind, default={}), res)]
        if missing:
            yield f"container {get(c, 'name')} has no {', '.join(missing)}"


@rule("k8s-run-as-non-root", types=WORKLOADS,
      remediation="Set securityContext.runAsNonRoot=true (pod or container) and a non-zero runAsUser if the image "
                  "defaults to root.")
def k8s_run_as_non_root(r: Resource) -> Iterator[str]:
    """Every container runs as a non-root user."""
    pod = get(pod_spec(r), "securityContext", default={})
    for c in containers(r):
        own = get(c, "securityContext", default={})
        non_root = get(own, "runAsNonRoot", default=get(pod, "runAsNonRoot"))
        user = get(own, "runAsUser", default=get(pod, "runAsUser"))
        if not truthy(non_root):
            yield f"container {get(c, 'name')} does not set runAsNonRoot"
        elif user is not None and number(user, -1) == 0:
            yield f"container {get(c, 'name')} sets runAsUser 0"


# Pod Security Standards, "restricted" profile (kubernetes.io/docs/concepts/security/pod-security-standards):
# no host namespaces, hostPath volumes or host ports (baseline), no privileged container, every
# capability dropped and at most NET_BIND_SERVICE added back, no privilege escalation, default /proc.
HOST_NAMESPACES = ("hostNetwork", "hostPID", "hostIPC")
ALLOWED_ADDED_CAPABILITIES = frozenset({"NET_BIND_SERVICE"})


@rule("k8s-no-privilege-escalation", types=WORKLOADS,
      remediation="Keep pods off the host (no hostNetwork/hostPID/hostIPC, hostPath volumes, hostPorts); per "
                  "container: allowPrivilegeEscalation=false, never privileged, capabilities drop ['ALL'] and add "
                  "nothing but NET_BIND_SERVICE.")
def k8s_no_privilege_escalation(r: Resource) -> Iterator[str]:
    """No pod shares the host or a container is privileged or may gain privileges (Pod Security 'restricted')."""
    spec = pod_spec(r)
    for ns in HOST_NAMESPACES:
        if truthy(get(spec, ns)):
            yield f"pod sets {ns}: true (shares the node's {ns.removeprefix('host').lower()} namespace)"
    for v in items(get(spec, "volumes")):
        if get(v, "hostPath") is not None:
            yield f"volume {get(v, 'name')} mounts a hostPath"
    for c in containers(r):
        name = get(c, "name")
        ctx = get(c, "securityContext", default={})
        if truthy(get(ctx, "privileged")):
            yield f"container {name} is privileged"
        if not falsy(get(ctx, "allowPrivilegeEscalation")):
            yield f"container {name} does not set allowPrivilegeEscalation=false"
        added = sorted(set(map(str, items(get(ctx, "capabilities", "add")))) - ALLOWED_ADDED_CAPABILITIES)
        if added:
            yield f"container {name} adds capabilities {', '.join(added)}"
        if "ALL" not in [str(x) for x in items(get(ctx, "capabilities", "drop"))]:
            yield f"container {name} does not drop ALL capabilities"
        if str(get(ctx, "procMount", default="Default")) != "Default":
            yield f"container {name} sets procMount {get(ctx, 'procMount')}"
        for port in items(get(c, "ports")):
            if number(get(port, "hostPort")) > 0:
                yield f"container {name} binds hostPort {number(get(port, 'hostPort')):g}"


@rule("hpa-min-replicas", types=HPAS,
      remediation="Set minReplicas to 2 or more (eks.hpa.min): one pod is one failure away from an outage.")
def hpa_min_replicas(r: Resource) -> Iterator[str]:
    """HorizontalPodAutoscalers keep at least 2 replicas."""
    low = number(get(r.props, "spec", "minReplicas"), 1)
    if low < 2:
        yield f"minReplicas is {low:g}"


def _meta(r: Resource) -> tuple[str, str]:
    return (str(get(r.props, "metadata", "namespace", default="default")),
            str(get(r.props, "metadata", "name", default=r.name)))


def _scalers(stack: Stack, deployment: Resource) -> list[tuple[Resource, float]]:
    """HPAs and KEDA ScaledObjects that target `deployment`, with their maximum replicas."""
    namespace, name = _meta(deployment)
    found = []
    for scaler in stack.of_type(*HPAS, SCALED_OBJECT):
        target = get(scaler.props, "spec", "scaleTargetRef", default={})
        same_ns = _meta(scaler)[0] == namespace
        kind = get(target, "kind", default="Deployment")
        by_name = kind == "Deployment" and str(get(target, "name", default="")) == name
        if same_ns and (by_name or deployment.urn in scaler.refs.get("spec", ())):
            high_key = "maxReplicas" if scaler.type in HPAS else "maxReplicaCount"
            found.append((scaler, number(get(scaler.props, "spec", high_key), 100)))
    return found


@rule("pdb-for-replicated-deployments", stack=True,
      remediation="Add a policy/v1 PodDisruptionBudget (e.g. maxUnavailable: 1) whose selector matches the "
                  "Deployment's pod labels, in the same namespace.")
def pdb_for_replicated_deployments(stack: Stack) -> Iterator[tuple[Resource, str]]:
    """Every Deployment that runs more than one pod (replicas or an autoscaler) has a PodDisruptionBudget."""
    budgets = stack.of_type(PDB)
    for d in stack.of_type(DEPLOYMENT):
        replicas = number(get(d.props, "spec", "replicas"), 1)
        scaled = [high for _, high in _scalers(stack, d)]
        if replicas <= 1 and not any(high > 1 for high in scaled):
            continue
        namespace, name = _meta(d)
        labels = get(d.props, "spec", "template", "metadata", "labels", default={})
        labels = {k: labels[k] for k in labels} if isinstance(labels, Mapping) else {}
        covered = False
        for pdb in budgets:
            match = get(pdb.props, "spec", "selector", "matchLabels", default={})
            if _meta(pdb)[0] == namespace and isinstance(match, Mapping) and match and all(
                    labels.get(k) == match[k] for k in match):
                covered = True
        if not covered:
            most = max([replicas, *scaled])
            yield d, f"Deployment {namespace}/{name} runs up to {most:g} pods with no PodDisruptionBudget"


# ---------------------------------------------------------------------------
# Cross-cutting


@rule("tags-required", types=TAGGABLE,
      remediation="Pass the stack's tags (project, stack, phase) to every taggable resource (components get `tags`).")
def tags_required(r: Resource) -> Iterator[str]:
    """Every taggable AWS resource carries the project, stack and phase tags."""
    tags = tag_map(r.props)
    missing = [t for t in REQUIRED_TAGS if not str(tags.get(t) or "")]
    if missing:
        yield f"missing tags: {', '.join(missing)}"


def disposable(bucket: Resource) -> bool:
    """A bucket the program declares scratch space: force_destroy (its objects go with it, e.g. the
    SSM transfer bucket Ansible stages files in); it holds nothing to keep."""
    return truthy(bucket.props.get("forceDestroy"))


@rule("stateful-protected", types=[RDS_INSTANCE, REDIS_GROUP, *BUCKETS],
      remediation="protect=True (and retain_on_delete=True) on the RDS primary and the Redis group; "
                  "retain_on_delete=True (or protect) on S3 buckets.")
def stateful_protected(r: Resource) -> Iterator[str]:
    """A `pulumi up` cannot delete stateful data: RDS primary and Redis protected, buckets retained."""
    if r.type in BUCKETS and disposable(r):
        return
    if r.type in BUCKETS:
        if r.protect or r.retain_on_delete:
            return
        if r.retain_on_delete is None:
            raise NotVisible("retainOnDelete is not passed to policy packs; `python -m ladder policy` checks it")
        yield "bucket is neither protected nor retained on delete"
    elif not is_replica(r) and not r.protect:
        yield "not protected: a change that replaces or removes it would delete the data"



@rule("stateful-retained", types=[RDS_INSTANCE, REDIS_GROUP, *BUCKETS],
      remediation="retain_on_delete=True on the RDS primary, the Redis group and every bucket: a program change "
                  "that drops them (a step back, a rename) then leaves the data in AWS instead of deleting it.")
def stateful_retained(r: Resource) -> Iterator[str]:
    """The RDS primary, the Redis group and every bucket that holds data are retained on delete."""
    if is_replica(r) or r.retain_on_delete or (r.type in BUCKETS and disposable(r)):
        return
    if r.retain_on_delete is None:
        raise NotVisible("retainOnDelete is not passed to policy packs; `python -m ladder policy` checks it")
    yield "not retain_on_delete: removing it from the program deletes the data"


BUCKET_GUARDS = (BUCKET_PAB, BUCKET_POLICY, *BUCKET_SSE, *BUCKET_ACLS,
                 "aws:s3/bucketVersioning:BucketVersioning", "aws:s3/bucketVersioningV2:BucketVersioningV2",
                 "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
                 "aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2",
                 "aws:s3/bucketOwnershipControls:BucketOwnershipControls")


@rule("bucket-guards-retained", stack=True,
      remediation="Give the public access block, policy, encryption, versioning, lifecycle, ownership and ACL of a "
                  "retained bucket retain_on_delete=True too (components/cdn.py does).")
def bucket_guards_retained(stack: Stack) -> Iterator[tuple[Resource, str]]:
    """A retained bucket keeps its guards: its public access block, policy and lifecycle are retained with it."""
    # Stepping back from phase 5 removes the CDN: Pulumi forgets a retained bucket but deletes
    # whatever configures it, so the bucket would stay in AWS unblocked, without its TLS-only
    # policy and with old versions kept forever.
    for bucket in stack.of_type(*BUCKETS):
        if not bucket.retain_on_delete:
            continue
        for guard in stack.referring(bucket, "bucket", *BUCKET_GUARDS):
            if guard.retain_on_delete is None:
                raise NotVisible("retainOnDelete is not passed to policy packs; `python -m ladder policy` checks it")
            if not (guard.retain_on_delete or guard.protect):
                yield guard, f"configures retained bucket {bucket.name} but is deleted when the program drops it"


# ---------------------------------------------------------------------------
# Who reaches the data tier

DATA_CLIENT_TIERS = frozenset({"app", "workers", "pgbouncer"})
"""Security groups (by their `tier` tag, components/firewall.py) that may open connections to
PostgreSQL and Redis; besides them only the EKS cluster security group (phase 6's pods)."""


def data_tier_groups(stack: Stack) -> dict[str, str]:
    """URN of every security group an RDS instance or Redis group sits in -> "db" or "redis"."""
    out: dict[str, str] = {}
    for db in stack.of_type(RDS_INSTANCE):
        out |= {g.urn: "db" for g in stack.refs(db, "vpcSecurityGroupIds", SG)}
    for group in stack.of_type(REDIS_GROUP):
        out |= {g.urn: "redis" for g in stack.refs(group, "securityGroupIds", SG)}
    return out


def public_lb_groups(stack: Stack) -> set[str]:
    return {g.urn for lb in stack.of_type(LB) if not truthy(lb.props.get("internal"))
            for g in stack.refs(lb, "securityGroups", SG)}


@rule("data-tier-sources", stack=True,
      remediation="Admit PostgreSQL and Redis only from the security groups of the tiers that use them (app, "
                  "workers, PgBouncer, the EKS cluster group): never an address range, never the load balancer's "
                  "group (ladder/topology.py firewall_plan).")
def data_tier_sources(stack: Stack) -> Iterator[tuple[Resource, str]]:
    """Only the app, worker, PgBouncer and EKS groups reach the database and Redis; the load balancer never does."""
    data = data_tier_groups(stack)
    edge = public_lb_groups(stack)
    for r in stack.of_type(SG_INGRESS):
        targets = [g for g in stack.refs(r, "securityGroupId", SG) if g.urn in data]
        if not targets:
            continue
        tier = data[targets[0].urn]
        if present(r.props, "cidrIpv4") or present(r.props, "cidrIpv6") or present(r.props, "prefixListId"):
            yield r, f"{tier} admits an address range, not a client tier's security group"
            continue
        sources = stack.refs(r, "referencedSecurityGroupId")
        if not sources:
            yield r, f"{tier} admits a security group this stack does not know"
        for src in sources:
            if src.type == EKS_CLUSTER:
                continue
            src_tier = str(tag_map(src.props).get("tier") or src.name)
            if src.urn in edge:
                yield r, f"{tier} admits the internet-facing load balancer's group {src.name}"
            elif src.type != SG or src_tier not in DATA_CLIENT_TIERS:
                yield r, f"{tier} admits {src.name} (tier {src_tier}); allowed: {', '.join(sorted(DATA_CLIENT_TIERS))}, eks"


@rule("data-tier-egress", stack=True,
      remediation="Give the database and Redis groups no egress rule (they only answer; the provider removes AWS's "
                  "default allow-all egress from groups it creates).")
def data_tier_egress(stack: Stack) -> Iterator[tuple[Resource, str]]:
    """The database and Redis security groups open no connection to the internet."""
    data = data_tier_groups(stack)
    for r in stack.of_type(SG_EGRESS, SG_RULE):
        if r.type == SG_RULE and r.props.get("type") != "egress":
            continue
        if not any(g.urn in data for g in stack.refs(r, "securityGroupId", SG)):
            continue
        cidrs = [str(c) for c in [r.props.get("cidrIpv4"), r.props.get("cidrIpv6"), *items(r.props.get("cidrBlocks")),
                                  *items(r.props.get("ipv6CidrBlocks"))] if c]
        if any(c in WORLD for c in cidrs):
            proto = _PROTOCOLS.get(str(r.props.get("ipProtocol", r.props.get("protocol"))).lower(), "some")
            yield r, f"data-tier group sends {proto} traffic to {', '.join(c for c in cidrs if c in WORLD)}"
    for g in stack.of_type(SG):
        if g.urn in data:
            for e in items(g.props.get("egress")):
                if any(str(c) in WORLD for c in [*items(get(e, "cidrBlocks")), *items(get(e, "ipv6CidrBlocks"))]):
                    yield g, f"data-tier group {g.name} has inline egress to the internet"


# ---------------------------------------------------------------------------
# TLS of database connections

EXTERNAL_SECRET = "kubernetes:external-secrets.io/v1:ExternalSecret"
JOBS = ("kubernetes:batch/v1:Job", "kubernetes:batch/v1:CronJob")
WEAK_SSLMODES = ("disable", "allow", "prefer")
TLS_SSLMODES = ("require", "verify-ca", "verify-full")
_PG_URL = re.compile(r"postgres(?:ql)?://[^\n]*?@(?P<host>[^\s:/@\"']+)(?::[^/\s\"']*)?/[^?\s\"']*"
                     r"(?:\?(?P<query>[^\s\"']*))?")
_CONNINFO = re.compile(r"(?<![\w-])host=(?P<host>[^\s'\"]+)(?P<rest>(?:[ \t]+\w+=[^\s'\"]*)*)")
_SSLMODE = re.compile(r"(?<![\w-])(?:--)?(?:\w+_)?sslmode(?:\s*=\s*|\s+)(?P<mode>[a-z-]+)")
_PGBOUNCER_SERVER_TLS = re.compile(r"^[ \t]*server_tls_sslmode\s*=\s*(?P<mode>[a-z-]+)", re.M)


def _rds_host(host: str) -> bool:
    return all(h.endswith(".rds.amazonaws.com") for h in host.split(","))


def _dynamic(value: str) -> bool:
    """Built at run time (a template or shell/f-string placeholder): checked where it is built."""
    return any(c in value for c in "{}$()%")


def _url_problems(text: str) -> Iterator[str]:
    """sslmode of every postgres:// URL and `host=... sslmode=...` conninfo in `text`; a
    pgbouncer.ini [databases] entry takes its sslmode from server_tls_sslmode."""
    server_tls = _PGBOUNCER_SERVER_TLS.search(text)
    targets: list[tuple[str, str | None]] = []
    for m in _PG_URL.finditer(text):
        query = m.group("query") or ""
        if _dynamic(query):
            continue
        mode = next((v.split("=", 1)[1] for v in query.split("&") if v.startswith("sslmode=")), None)
        targets.append((m.group("host"), mode))
    for m in _CONNINFO.finditer(text):
        mode = re.search(r"sslmode=([a-z-]+)", m.group("rest"))
        targets.append((m.group("host"), mode.group(1) if mode else server_tls.group("mode") if server_tls else None))
    # PgBouncer below 1.25 cannot verify-full a host list; it verifies the CA (ladder/pgbouncer.py).
    rds_modes = ("verify-full", "verify-ca") if server_tls else ("verify-full",)
    for host, mode in targets:
        shown = mode or "unset (libpq: prefer)"
        if _dynamic(host):
            if mode in WEAK_SSLMODES:
                yield f"connection to {host} uses sslmode {mode}"
        elif _rds_host(host) and mode not in rds_modes:
            yield f"connection to RDS {host} uses sslmode {shown}; required: {' or '.join(rds_modes)}"
        elif mode not in TLS_SSLMODES:
            yield f"connection to {host} uses sslmode {shown}; required: require or stronger"


def _all_text(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for k in value:
            yield from _all_text(value[k])
    elif is_list(value):
        for v in value:
            yield from _all_text(v)


@rule("database-tls-mode", types=[INSTANCE, LAUNCH_TEMPLATE, CONFIG_MAP, EXTERNAL_SECRET, *WORKLOADS, *JOBS],
      remediation="verify-full (with the RDS CA bundle) on every connection straight to RDS; require or stronger to "
                  "PgBouncer (its self-signed key has no CA); never disable, allow or prefer (or sslmode unset).")
def database_tls_mode(r: Resource) -> Iterator[str]:
    """Every database connection the program configures uses TLS: verify-full to RDS, require or stronger to PgBouncer."""
    text = _user_data(r) if r.type in (INSTANCE, LAUNCH_TEMPLATE) else "\n".join(_all_text(r.props))
    found = list(_url_problems(text))
    for m in _SSLMODE.finditer(text):
        if m.group("mode") in WEAK_SSLMODES:
            found.append(f"sets sslmode {m.group('mode')}: the connection may run unencrypted")
    # The hosts build their URLs at boot (cloudinit/boot.sh): straight to RDS (no PgBouncer
    # tier), the URL form must be verify-full.
    if "DB_VIA_PGBOUNCER=false" in text and not re.search(r"(?<![-\w])sslmode=verify-full", text):
        found.append("hosts connect straight to RDS without sslmode=verify-full in the URL they build")
    yield from dict.fromkeys(found)


SECRET_PATTERNS = [
    (re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), "an AWS access key id"),
    (re.compile(r"(?i)aws_secret_access_key\s*[=:]"), "an AWS secret access key"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a private key"),
    (re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@{}$]*:[^@\s{}$'\"/]{3,}@"), "credentials in a URL"),
    # `name=value` or `name: value` (not an ARN's `:secret:` part) with a literal value.
    (re.compile(r"(?i)(?<![:\w])\w*(?:password|passwd|secret|token|api_?key)\w*(?:\s*=\s*|:\s+)['\"]?"
                r"[A-Za-z0-9+/_\-.!#%^&*~]{8,}"), "a literal password/secret/token assignment"),
]
SECRET_ENV = re.compile(r"(?i)(password|passwd|secret|token|api_?key|private_?key|credential)")
SECRET_ENV_OK = re.compile(r"(?i)_(arn|file|path|name|id)$")


def secrets_in(text: str, program: bool = False) -> list[str]:
    """`program`: a script or SQL file shipped verbatim, where variables and columns are named
    `password`; only the unambiguous patterns (keys, credentials in URLs) apply to it."""
    patterns = SECRET_PATTERNS[:-1] if program else SECRET_PATTERNS
    return [what for pattern, what in patterns if pattern.search(text)]


def is_program(text: str) -> bool:
    """A shebang script or a file that opens with an SQL comment (the bootstrap Job's files)."""
    return text.startswith(("#!", "-- "))


def _from_base64(encoded: str, validate: bool = False) -> str | None:
    """Base64 user data as text, gunzipped when gzip (cloud-init reads both; hosts get gzip)."""
    try:
        raw = base64.b64decode(encoded, validate=validate)
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (binascii.Error, ValueError, OSError, EOFError, zlib.error):
        return None
    return raw.decode("utf-8", "replace")


def _user_data(r: Resource) -> str:
    text = ""
    if present(r.props, "userData"):
        text = str(r.props.get("userData"))
        if r.type == LAUNCH_TEMPLATE:  # launch templates take base64
            text = _from_base64(text, validate=True) or text
    if present(r.props, "userDataBase64"):
        text += _from_base64(str(r.props.get("userDataBase64"))) or ""
    return text


_WRITE_FILE = re.compile(r"^  - path: ", re.M)
_FILE_CONTENT = re.compile(r"^    content: \|\n(?P<body>(?:(?:      .*)?\n)*)", re.M)


def _user_data_secrets(text: str) -> list[str]:
    """Secrets in cloud-config user data, file by file: a `write_files` entry that is a program
    (shebang script, SQL by its first line or its .sql path) gets the unambiguous patterns only, as a ConfigMap file does (its code
    names variables and columns `password`); everything else gets them all."""
    found: list[str] = []
    for part in _WRITE_FILE.split(text):
        m = _FILE_CONTENT.search(part)
        path = part.split("\n", 1)[0].strip()
        if m and (is_program(textwrap.dedent(m["body"])) or path.endswith(".sql")):
            found += secrets_in(part[:m.end()], program=True) + secrets_in(part[m.end():])
        else:
            found += secrets_in(part)
    return list(dict.fromkeys(found))


@rule("no-plaintext-secrets", types=[INSTANCE, LAUNCH_TEMPLATE, *WORKLOADS, CONFIG_MAP],
      remediation="Keep secrets in Secrets Manager (hosts fetch them at boot with the instance role) or in a "
                  "Kubernetes Secret referenced with valueFrom.secretKeyRef; never in user data, env or ConfigMaps.")
def no_plaintext_secrets(r: Resource) -> Iterator[str]:
    """No password, token, key or credential in plain text in user data, container env or ConfigMaps."""
    if r.type in (INSTANCE, LAUNCH_TEMPLATE):
        for what in _user_data_secrets(_user_data(r)):
            yield f"user data holds {what}"
    elif r.type == CONFIG_MAP:
        data = r.props.get("data") or {}
        for key in data:
            for what in secrets_in(f"{key}={data[key]}", program=is_program(str(data[key]))):
                yield f"ConfigMap key {key} holds {what}"
    else:
        for c in containers(r):
            for env in items(get(c, "env")):
                name, value = str(get(env, "name", default="")), get(env, "value")
                if value in (None, ""):
                    continue
                if SECRET_ENV.search(name) and not SECRET_ENV_OK.search(name):
                    yield f"container {get(c, 'name')}: env {name} is a literal; use valueFrom.secretKeyRef"
                for what in secrets_in(f"{name}={value}"):
                    yield f"container {get(c, 'name')}: env {name} holds {what}"
