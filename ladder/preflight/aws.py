"""AWS's refusals that the provider cannot see: `pulumi preview` passes, `pulumi up` fails.

Each rule is a small function over the plan with the AWS documentation page (title and
section) that states the refusal, plus, where one exists, the error AWS answers with as
seen in a public report. The provider's own validation (names, enums, ranges) lives in
`provider.py`; these rules need more than one input, another resource, the deployed
stack's outputs, or a fact the provider does not encode (static parameters, size limits).

Rules never bend to the plan: a preset that violates one is wrong until its program is
fixed (the managed master password of phases 3-6 is the known case).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from .. import inplace, redis_settings
from ..aws_facts import ELASTICACHE_MAX_NODES
from ..engine import Secret
from ..userdata import MAX_BYTES
from .base import Violation

RDS_INSTANCE = "aws:rds/instance:Instance"
RDS_PARAMETER_GROUP = "aws:rds/parameterGroup:ParameterGroup"
EC2_INSTANCE = "aws:ec2/instance:Instance"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
REPLICATION_GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
ELASTICACHE_PARAMETER_GROUP = "aws:elasticache/parameterGroup:ParameterGroup"
LB_LISTENER = "aws:lb/listener:Listener"
LB_LISTENER_CERTIFICATE = "aws:lb/listenerCertificate:ListenerCertificate"
CLOUDFRONT_DISTRIBUTION = "aws:cloudfront/distribution:Distribution"
K8S_INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"

# --- facts --------------------------------------------------------------------------------

# EC2 User Guide, "Run commands when you launch an EC2 instance with user data input"
# (section "User data and cloud-init"/"Considerations"): "User data is limited to 16 KB, in
# raw form, before it is base64-encoded." Gzip-compressed user data (which cloud-init reads)
# counts at its compressed size. Launch templates carry the same user data to the instance.
USER_DATA_MAX_BYTES = MAX_BYTES  # one source: ladder.userdata, which compresses to fit it

# Static PostgreSQL parameters we might set, by parameter group family: AWS refuses
# `immediate` for them ("InvalidParameterCombination: cannot use immediate apply method for
# static parameter", ministryofjustice/cloud-platform#1197). RDS User Guide, "Parameter
# groups for Amazon RDS" / "Static and dynamic DB instance parameters": static parameters
# need `pending-reboot`. PostgreSQL parameters whose context is `postmaster` ("can only be
# set at server start", PostgreSQL documentation, "Server Configuration") are static on RDS.
_POSTMASTER = frozenset({
    "shared_preload_libraries",  # "This parameter can only be set at server start."
    "max_connections",
    "shared_buffers",
    "max_worker_processes",
    "max_wal_senders",
    "max_replication_slots",
    "max_prepared_transactions",
    "max_locks_per_transaction",
    "track_activity_query_size",
    "huge_pages",
    "wal_buffers",
    "autovacuum_max_workers",
    "rds.logical_replication",  # "a static parameter that requires a DB instance reboot" (AWS
                                # Knowledge Center, "rds-postgresql-use-logical-replication";
                                # RDS User Guide, "Logical decoding on a read replica")
})
# rds.force_ssl: static on postgres14 and earlier (codeforamerica/asap_pdf#571 "rds.force_ssl
# is a static parameter for the postgres14 family"; the 2019 refusal above). From postgres15
# RDS defaults it to 1 (RDS User Guide, "Updating applications to connect to PostgreSQL DB
# instances using new SSL/TLS certificates") and accepts `immediate` for it (a postgres16
# group applied with immediate in hashicorp/terraform-provider-aws#39252, which then only
# diffs against the pending-reboot AWS reads back).
_FORCE_SSL_DYNAMIC_FROM = 15


def static_parameters(family: str) -> frozenset[str]:
    """The static parameters (of those we know) in an RDS parameter group family."""
    match = re.fullmatch(r"postgres(\d+)", family)
    if not match:
        return frozenset()
    major = int(match.group(1))
    return _POSTMASTER | ({"rds.force_ssl"} if major < _FORCE_SSL_DYNAMIC_FROM else frozenset())


# terraform-provider-aws internal/service/rds/parameter_group.go, `parameter.apply_method`:
# Default "immediate". An unset apply method is sent as immediate.
PROVIDER_DEFAULT_APPLY_METHOD = "immediate"

# ElastiCache User Guide, "Working with shards in ElastiCache" / "Managing clusters in
# ElastiCache": a cluster-mode-enabled cluster holds up to 90 nodes by default, and the node
# limit "can be increased to a maximum of 500 per cluster if the engine version is Valkey 7.2
# and higher, or Redis OSS 5.0.6" and later; "For versions below 5.0.6, the limit is 250 per
# cluster". 90 is a quota (raisable), 500 / 250 the ceiling no request lifts.
ELASTICACHE_NODES_MAX = ELASTICACHE_MAX_NODES  # one source: ladder/aws_facts.py (the config check uses it too)
ELASTICACHE_NODES_MAX_BEFORE_5_0_6 = 250
# ElastiCache User Guide, "Creating a Redis OSS (Cluster Mode Disabled) replication group from
# scratch": such a group "always has one node group, a primary cluster, and up to five read
# replicas" -> 1..6 cache clusters; a shard holds one to six nodes ("Working with shards").
ELASTICACHE_MAX_REPLICAS = 5

SRC_MANAGED_PASSWORD = ('AWS RDS User Guide, "Limitations for Secrets Manager integration with Amazon RDS"; '
                        "terraform-aws-modules/terraform-aws-rds#512")
SRC_REPLICA_BACKUPS = 'AWS RDS User Guide, "Working with DB instance read replicas" (creating a read replica)'
SRC_STATIC_PARAMETER = ('AWS RDS User Guide, "Parameter groups for Amazon RDS" (static and dynamic parameters); '
                        "ministryofjustice/cloud-platform#1197")
SRC_USER_DATA = 'AWS EC2 User Guide, "Run commands when you launch an EC2 instance with user data input"'
SRC_MAJOR_UPGRADE = ('AWS RDS User Guide, "Upgrading a DB instance engine version"; RDS API Reference, '
                     "ModifyDBInstance, AllowMajorVersionUpgrade")
SRC_STORAGE_AUTOSCALING = inplace.SRC_STORAGE_AUTOSCALING  # one source with the deployed-storage rule
SRC_ELASTICACHE_NODES = ('AWS ElastiCache User Guide, "Working with shards in ElastiCache" / "Managing clusters '
                         'in ElastiCache"')
SRC_ELASTICACHE_CMD = ('AWS ElastiCache User Guide, "Creating a Redis OSS (Cluster Mode Disabled) replication '
                       'group from scratch"')
SRC_ELASTICACHE_MULTI_AZ = ('AWS ElastiCache User Guide, "Minimizing downtime in ElastiCache by using Multi-AZ '
                            'with Valkey and Redis OSS" (enabling Multi-AZ)')
SRC_ELASTICACHE_FAMILY = ('AWS ElastiCache User Guide, "Engine specific parameters" (families redis7, valkey7, '
                          'valkey8) and "How to upgrade from Redis OSS to Valkey" (a custom parameter group: pass a '
                          'Valkey one); ModifyReplicationGroup InvalidParameterCombination "Expected a parameter group '
                          'of family valkey8 but found one of family valkey7" (aws-samples/dify-self-hosted-on-aws#24), '
                          '"valkey parameter group is not applicable to engine redis" '
                          '(aws-controllers-k8s/elasticache-controller#188)')
SRC_ACM_ELB = ('AWS Certificate Manager User Guide, "Services integrated with AWS Certificate Manager" '
               "(Elastic Load Balancing: the certificate in the load balancer's Region)")
SRC_ACM_CLOUDFRONT = ('AWS CloudFront Developer Guide, "Requirements for using SSL/TLS certificates with '
                      'CloudFront" (certificates in US East (N. Virginia), us-east-1)')

# --- plumbing -----------------------------------------------------------------------------


@dataclass(frozen=True)
class AwsRule:
    """One refusal: what it checks and where AWS states it."""

    name: str
    source: str
    check: Callable[[Context], Iterable[Violation]]


class Context:
    """The plan and the deployed stack's outputs, with the look-ups several rules share."""

    def __init__(self, plan: Any, previous_outputs: dict[str, Any] | None) -> None:
        self.plan = plan
        self.previous = previous_outputs or {}
        self.region: str = plan.config.region

    def of_type(self, type_: str) -> list[Any]:
        return [r for r in self.plan.resources if r.type == type_]

    def find(self, type_: str, ref: Any) -> Any | None:
        """The resource of `type_` that `ref` (an identifier, name, ARN, id or URN) points at."""
        if not isinstance(ref, str):
            return None
        for r in self.of_type(type_):
            keys = {r.urn, r.id, *(r.state.get(k) for k in ("identifier", "name", "arn", "id"))}
            if ref in keys:
                return r
        return None


def violation(r: Any, input_: str, value: Any, rule: str, source: str) -> Violation:
    return Violation(urn=r.urn, type=r.type, name=r.name, input=input_, value=value, rule=rule, source=source)


def _plain(value: Any) -> Any:
    """A secret's value for measuring (never for printing)."""
    return value.value if isinstance(value, Secret) else value


def _known(value: Any) -> bool:
    return value is not None and value != "<unknown>"


# --- RDS ----------------------------------------------------------------------------------


def rds_replica_of_managed_password(ctx: Context) -> Iterator[Violation]:
    """A read replica of a source whose master password RDS manages in Secrets Manager:
    "Creating read replicas for source instance with engine postgres where
    ManageMasterUserPassword is enabled is not supported" (all engines but SQL Server)."""
    for r in ctx.of_type(RDS_INSTANCE):
        ref = r.inputs.get("replicateSourceDb")
        source = ctx.find(RDS_INSTANCE, ref)
        if source is not None and source.inputs.get("manageMasterUserPassword") is True:
            engine = source.inputs.get("engine", "postgres")
            yield violation(
                r, "replicateSourceDb", ref,
                f"RDS refuses a read replica of {source.name!r}, whose master password RDS manages "
                f"(manageMasterUserPassword: true): \"Creating read replicas for source instance with engine "
                f"{engine} where ManageMasterUserPassword is enabled is not supported\"",
                SRC_MANAGED_PASSWORD)


def rds_replica_source_backups(ctx: Context) -> Iterator[Violation]:
    """Read replicas need automated backups on their source (retention other than 0)."""
    for r in ctx.of_type(RDS_INSTANCE):
        source = ctx.find(RDS_INSTANCE, r.inputs.get("replicateSourceDb"))
        if source is not None and source.inputs.get("backupRetentionPeriod") == 0:
            yield violation(
                source, "backupRetentionPeriod", 0,
                f"{r.name!r} replicates this instance: a read replica's source needs automatic backups "
                "(a backup retention period other than 0)", SRC_REPLICA_BACKUPS)


def rds_static_parameter_immediate(ctx: Context) -> Iterator[Violation]:
    """A static parameter with apply method immediate (the provider's default when unset)."""
    for r in ctx.of_type(RDS_PARAMETER_GROUP):
        family = str(r.inputs.get("family", ""))
        static = static_parameters(family)
        for i, p in enumerate(r.inputs.get("parameters") or []):
            method = p.get("applyMethod") or PROVIDER_DEFAULT_APPLY_METHOD
            if p.get("name") in static and method == "immediate":
                unset = "" if p.get("applyMethod") else " (unset: the provider sends immediate)"
                yield violation(
                    r, f"parameters[{i}].applyMethod", method,
                    f"{p['name']} is a static parameter in {family}{unset}: AWS refuses \"cannot use "
                    "immediate apply method for static parameter\"; use pending-reboot (takes effect on reboot)",
                    SRC_STATIC_PARAMETER)


def _version(text: Any) -> tuple[int, ...] | None:
    if not isinstance(text, str) or not re.fullmatch(r"\d+(\.\d+)*", text):
        return None
    return tuple(int(part) for part in text.split("."))


def _major(version: tuple[int, ...]) -> tuple[int, ...]:
    """PostgreSQL 10+ majors are one number (16.4 -> 16); before 10 two (9.6.x -> 9.6)."""
    return version[:1] if version[0] >= 10 else version[:2]


def rds_engine_version_change(ctx: Context) -> Iterator[Violation]:
    """Against the deployed version (`dbEngineVersion` output): a downgrade is refused; a
    major upgrade needs `allowMajorVersionUpgrade: true`."""
    deployed = _version(_plain(ctx.previous.get("dbEngineVersion")))
    if deployed is None:
        return  # a new stack, or no such output: nothing to compare with
    for r in ctx.of_type(RDS_INSTANCE):
        if r.inputs.get("replicateSourceDb"):
            continue  # replicas follow their source's version
        planned_text = r.inputs.get("engineVersion")
        planned = _version(planned_text)
        if planned is None:
            continue
        # the downgrade rule is ladder/inplace.py's (one source with the program and `ladder diff`)
        shown = ".".join(map(str, deployed))
        refused = list(inplace.rds_version_refusals(r.name, {"engineVersion": shown}, {"engineVersion": planned_text}))
        if refused:
            yield violation(r, "engineVersion", planned_text, f"lower than the deployed {shown}: {refused[0].rule}",
                            refused[0].source)
        elif _major(planned) > _major(deployed) and r.inputs.get("allowMajorVersionUpgrade") is not True:
            yield violation(
                r, "engineVersion", planned_text,
                f"a major upgrade from {shown}: RDS refuses it unless allowMajorVersionUpgrade is true",
                SRC_MAJOR_UPGRADE)


def rds_max_allocated_storage(ctx: Context) -> Iterator[Violation]:
    """Storage autoscaling's maximum must exceed allocated storage by at least 10 %:
    "InvalidParameterCombination: The maximum allocated storage must be increased by at
    least 10 percent" ("Max storage size must be greater than storage size" when equal)."""
    for r in ctx.of_type(RDS_INSTANCE):
        allocated, maximum = r.inputs.get("allocatedStorage"), r.inputs.get("maxAllocatedStorage")
        if not isinstance(allocated, int) or not isinstance(maximum, int) or maximum == 0:
            continue  # unset or 0: autoscaling off
        if maximum * 10 < allocated * 11:
            yield violation(
                r, "maxAllocatedStorage", maximum,
                f"must be at least 10 % above allocatedStorage {allocated} (>= {-(-allocated * 11 // 10)}) "
                "for storage autoscaling, or unset", SRC_STORAGE_AUTOSCALING)


# --- EC2 user data --------------------------------------------------------------------------


def _b64_size(value: str) -> int | None:
    try:
        return len(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError):
        return None


def user_data_size(ctx: Context) -> Iterator[Violation]:
    """User data over 16 KB raw (before base64; compressed size when gzipped)."""
    inputs: list[tuple[Any, str, int | None]] = []
    for r in ctx.of_type(EC2_INSTANCE):
        raw = _plain(r.inputs.get("userData"))
        if isinstance(raw, str) and _known(raw):
            inputs.append((r, "userData", len(raw.encode())))
        encoded = _plain(r.inputs.get("userDataBase64"))
        if isinstance(encoded, str) and _known(encoded):
            inputs.append((r, "userDataBase64", _b64_size(encoded)))
    for r in ctx.of_type(LAUNCH_TEMPLATE):
        encoded = _plain(r.inputs.get("userData"))  # launch templates take base64
        if isinstance(encoded, str) and _known(encoded):
            inputs.append((r, "userData", _b64_size(encoded)))
    for r, name, size in inputs:
        if size is not None and size > USER_DATA_MAX_BYTES:
            yield violation(
                r, name, f"<{size} bytes>",
                f"user data is {size} bytes raw; EC2 takes at most {USER_DATA_MAX_BYTES} (16 KB) before "
                "base64 (gzip it, or move content out of user data)", SRC_USER_DATA)


# --- ElastiCache ----------------------------------------------------------------------------


def _node_limit(engine: str, version: tuple[int, ...] | None) -> int:
    if engine == "valkey" or version is None or version >= (5, 0, 6):
        return ELASTICACHE_NODES_MAX
    return ELASTICACHE_NODES_MAX_BEFORE_5_0_6


def elasticache_node_count(ctx: Context) -> Iterator[Violation]:
    """Nodes per replication group: shards x (1 + replicas) within the cluster ceiling;
    cluster mode disabled: 1..6 cache clusters."""
    for r in ctx.of_type(REPLICATION_GROUP):
        i = r.inputs
        shards, replicas = i.get("numNodeGroups"), i.get("replicasPerNodeGroup")
        if isinstance(replicas, int) and replicas > ELASTICACHE_MAX_REPLICAS:
            yield violation(r, "replicasPerNodeGroup", replicas,
                            f"a shard holds one primary and at most {ELASTICACHE_MAX_REPLICAS} replicas",
                            SRC_ELASTICACHE_NODES)
        if isinstance(shards, int):
            nodes = shards * (1 + (replicas if isinstance(replicas, int) else 0))
            engine = str(i.get("engine", "redis"))
            limit = _node_limit(engine, _version(i.get("engineVersion")))
            if nodes > limit:
                yield violation(
                    r, "numNodeGroups", shards,
                    f"{shards} shards x (1 + {replicas or 0} replicas) = {nodes} nodes; a cluster holds at most "
                    f"{limit} (the default quota is 90; 500 needs Redis OSS 5.0.6+ or Valkey 7.2+)",
                    SRC_ELASTICACHE_NODES)
        clusters = i.get("numCacheClusters")
        if isinstance(clusters, int) and not 1 <= clusters <= 1 + ELASTICACHE_MAX_REPLICAS:
            yield violation(
                r, "numCacheClusters", clusters,
                f"cluster mode disabled: one primary and up to {ELASTICACHE_MAX_REPLICAS} read replicas "
                f"(1..{1 + ELASTICACHE_MAX_REPLICAS})", SRC_ELASTICACHE_CMD)


def elasticache_multi_az_needs_replica(ctx: Context) -> Iterator[Violation]:
    """Multi-AZ needs more than one node in each shard."""
    for r in ctx.of_type(REPLICATION_GROUP):
        i = r.inputs
        if i.get("multiAzEnabled") is not True:
            continue
        per_shard = (1 + i["replicasPerNodeGroup"]) if isinstance(i.get("replicasPerNodeGroup"), int) \
            else i.get("numCacheClusters")
        if isinstance(per_shard, int) and per_shard < 2:
            yield violation(
                r, "multiAzEnabled", True,
                "Multi-AZ is supported only with more than one node in each shard (at least one read replica)",
                SRC_ELASTICACHE_MULTI_AZ)


def elasticache_parameter_family(ctx: Context) -> Iterator[Violation]:
    """A replication group's parameter group is of its engine and major version's family."""
    for r in ctx.of_type(REPLICATION_GROUP):
        i = r.inputs
        group = ctx.find(ELASTICACHE_PARAMETER_GROUP, i.get("parameterGroupName"))
        engine, version = str(i.get("engine") or "redis"), i.get("engineVersion")
        if group is None or not isinstance(version, str) or not _known(version):
            continue
        family, wanted = group.inputs.get("family"), redis_settings.parameter_family(version, engine)
        if _known(family) and family != wanted:
            yield violation(r, "parameterGroupName", i.get("parameterGroupName"),
                            f"its parameter group {group.name} is of family {family}; {engine} {version} takes a "
                            f"{wanted} parameter group (AWS refuses the create or modify)", SRC_ELASTICACHE_FAMILY)


# --- certificates -------------------------------------------------------------------------

_ACM_REGION = re.compile(r"^arn:aws[a-z-]*:acm:([a-z0-9-]+):")


def _acm_region(arn: Any) -> str | None:
    match = _ACM_REGION.match(arn) if isinstance(arn, str) else None
    return match.group(1) if match else None


def _cert_in_region(r: Any, input_: str, arn: Any, region: str, rule: str, source: str) -> Iterator[Violation]:
    cert_region = _acm_region(arn)
    if cert_region is not None and cert_region != region:
        yield violation(r, input_, arn, f"certificate in {cert_region}; {rule}", source)


def acm_certificate_region(ctx: Context) -> Iterator[Violation]:
    """Load balancers use ACM certificates from their own Region; CloudFront only from us-east-1."""
    elb_rule = f"a load balancer in {ctx.region} uses ACM certificates from its own Region only"
    for r in ctx.of_type(LB_LISTENER):
        yield from _cert_in_region(r, "certificateArn", r.inputs.get("certificateArn"), ctx.region, elb_rule,
                                   SRC_ACM_ELB)
    for r in ctx.of_type(LB_LISTENER_CERTIFICATE):
        yield from _cert_in_region(r, "certificateArn", r.inputs.get("certificateArn"), ctx.region, elb_rule,
                                   SRC_ACM_ELB)
    for r in ctx.of_type(K8S_INGRESS):  # the AWS Load Balancer Controller's ALB, in the cluster's Region
        annotations = ((r.inputs.get("metadata") or {}).get("annotations") or {})
        for key, value in sorted(annotations.items()):
            if key.endswith("/certificate-arn") and isinstance(value, str):
                for arn in (part.strip() for part in value.split(",")):
                    yield from _cert_in_region(r, f"metadata.annotations[{key!r}]", arn, ctx.region, elb_rule,
                                               SRC_ACM_ELB)
    for r in ctx.of_type(CLOUDFRONT_DISTRIBUTION):
        viewer = (r.inputs.get("viewerCertificate") or {}).get("acmCertificateArn")
        yield from _cert_in_region(r, "viewerCertificate.acmCertificateArn", viewer, "us-east-1",
                                   "CloudFront uses ACM certificates from us-east-1 only", SRC_ACM_CLOUDFRONT)


# --- the table ----------------------------------------------------------------------------

RULES: tuple[AwsRule, ...] = (
    AwsRule("rds-replica-of-managed-password", SRC_MANAGED_PASSWORD, rds_replica_of_managed_password),
    AwsRule("rds-replica-source-backups", SRC_REPLICA_BACKUPS, rds_replica_source_backups),
    AwsRule("rds-static-parameter-immediate", SRC_STATIC_PARAMETER, rds_static_parameter_immediate),
    AwsRule("rds-engine-version-change", SRC_MAJOR_UPGRADE, rds_engine_version_change),
    AwsRule("rds-max-allocated-storage", SRC_STORAGE_AUTOSCALING, rds_max_allocated_storage),
    AwsRule("ec2-user-data-size", SRC_USER_DATA, user_data_size),
    AwsRule("elasticache-node-count", SRC_ELASTICACHE_NODES, elasticache_node_count),
    AwsRule("elasticache-multi-az-needs-replica", SRC_ELASTICACHE_MULTI_AZ, elasticache_multi_az_needs_replica),
    AwsRule("elasticache-parameter-family", SRC_ELASTICACHE_FAMILY, elasticache_parameter_family),
    AwsRule("acm-certificate-region", SRC_ACM_ELB, acm_certificate_region),
)


def check_aws(plan: Any, previous_outputs: dict[str, Any] | None = None) -> list[Violation]:
    """Every AWS refusal in `plan`, rule by rule in the table's order."""
    ctx = Context(plan, previous_outputs)
    return [v for rule in RULES for v in rule.check(ctx)]
