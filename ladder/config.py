"""The typed stack config: parsed and checked once, before any resource exists.

Stack YAML (camelCase, namespace `scaleladder`) -> phase catalog fills defaults
-> `StackConfig` (pydantic, unknown keys forbidden) -> cross-field checks.
Every problem becomes one line naming the full key (`scaleladder:appTier.min`)
and what is allowed; all problems are reported together.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic.alias_generators import to_camel

from . import aws_facts, images, redis_settings, registry
from .network import MIN_EKS_SUBNET_PREFIX, MIN_SUBNET_PREFIX, SUBNET_EXTRA_BITS, subnet_prefix
from .phases import PHASES, deep_merge, phase_defaults
from .prices import catalog

NAMESPACE = "scaleladder"

try:  # Under the real engine a RunError prints the message without a traceback.
    from pulumi import RunError as _ErrorBase
except ImportError:  # pragma: no cover - the tooling always has pulumi installed
    _ErrorBase = Exception  # type: ignore[misc,assignment]


class ConfigError(_ErrorBase):
    """A user's config mistake: one line per problem, each naming its key."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid stack config:\n" + "\n".join(f"  - {p}" for p in problems))


def key(path: str) -> str:
    return f"{NAMESPACE}:{path}"


# Strings that reach nginx, cloud-init, pgbouncer.ini or Kubernetes manifests are
# restricted to characters that cannot end a directive or a line.
_SAFE_PATH = re.compile(r"^/[A-Za-z0-9._~/-]*$")
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]{0,127}$")
_IMAGE = re.compile(r"^[a-z0-9]+([._/:@-][A-Za-z0-9]+)*$")
_PRINTABLE = re.compile(r"^[\x20-\x7e]*$")
_QUOTE_UNSAFE = re.compile(r"[\"'`$\\;{}]")
_HOSTNAME = re.compile(r"^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_ACM_ARN = re.compile(r"^arn:aws:acm:[a-z0-9-]+:\d{12}:certificate/[0-9a-f-]{36}$")

PosInt = Annotated[int, Field(ge=1)]


def _cli_text(value: Any) -> Any:
    """`pulumi config set --path K 16` stores the number 16, `true` the boolean (pulumi/pulumi
    sdk/go/common/resource/config: `adjustObjectValue`); for a key that holds text the user
    meant the text they typed, so take it back as written."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return value


CliText = Annotated[str, BeforeValidator(_cli_text)]
"""A string key that may arrive as a number or boolean from `pulumi config set --path`."""


class Section(BaseModel):
    """camelCase in YAML, snake_case in Python; unknown keys are errors."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True, strict=True)


class AppConfig(Section):
    image: str = Field("ghcr.io/your-org/your-api:1.0.0", description="Container image of the HTTP API and workers.")
    image_platforms: list[Literal["linux/amd64", "linux/arm64"]] = Field(
        ["linux/amd64"], min_length=1, description=(
            "Platforms app.image is built for (its manifest list): linux/amd64, linux/arm64. A tier that runs the app "
            "image on a Graviton (arm64) type (appTier, workers, phase 1's VM, eks.nodeInstanceType) is refused "
            "unless linux/arm64 is listed: docker pulls the host's platform, and an amd64-only image fails with "
            "`exec format error` (workers pass EC2 health checks regardless)."))
    port: int = Field(3000, ge=1024, le=65535, description="Port the API listens on inside the host.")
    health_path: str = Field("/health", max_length=128, description="HTTP path that answers 200 when the API is healthy.")
    env: dict[str, CliText] = Field(default_factory=dict, description="Plain (non-secret) environment for API and workers.")
    worker_command: list[CliText] = Field(["node", "worker.js"], description="Command that starts a BullMQ worker.")
    queues: list[CliText] = Field(["default"], min_length=1, description="BullMQ queue names the workers consume.")
    queue_prefix: str = Field("{bull}", description="BullMQ key prefix; a hash tag keeps a queue's keys in one cluster slot.")
    certificate_arn: str | None = Field(None, description="ACM certificate for HTTPS on the load balancer.")
    registry_credentials_secret_arn: str | None = Field(
        None, description="Secrets Manager secret {\"username\", \"password\"} the hosts log in to a private non-ECR "
                          "registry with (ECR images need none: the host role may pull their repository).")

    @field_validator("image")
    @classmethod
    def _image(cls, v: str) -> str:
        if not _IMAGE.match(v) or len(v) > 255:
            raise ValueError("must be a container image reference like registry/name:tag (lowercase, no spaces)")
        registry.ecr(v)  # an ECR-looking host must be a real ECR registry (ValueError says how)
        return v

    @field_validator("image_platforms")
    @classmethod
    def _platforms(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("each platform may appear once; allowed: linux/amd64, linux/arm64")
        return v

    @field_validator("registry_credentials_secret_arn")
    @classmethod
    def _registry_secret(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is None:
            return v
        if not registry.SECRET_ARN.match(v):
            raise ValueError("must be a Secrets Manager secret ARN "
                             "(arn:aws:secretsmanager:<region>:<account>:secret:<name>) holding {\"username\", \"password\"}")
        image = info.data.get("image")
        if isinstance(image, str) and registry.ecr(image) is not None:
            raise ValueError(f"{image} is in ECR, which the host role reads with its own permissions; "
                             "allowed: unset for ECR images, a secret ARN for other private registries")
        return v

    @field_validator("health_path")
    @classmethod
    def _health_path(cls, v: str) -> str:
        if not _SAFE_PATH.match(v):
            raise ValueError("must be an absolute URL path of letters, digits and . _ ~ / - (no spaces, quotes, ; or newlines)")
        return v

    @field_validator("env")
    @classmethod
    def _env(cls, v: dict[str, str]) -> dict[str, str]:
        for name, value in v.items():
            if not _ENV_NAME.match(name):
                raise ValueError(f"variable name {name!r} must match [A-Z_][A-Z0-9_]*")
            if not isinstance(value, str) or not _PRINTABLE.match(value) or _QUOTE_UNSAFE.search(value):
                raise ValueError(f"value of {name} must be printable ASCII without quotes, $, `, \\, ;, braces or newlines")
        return v

    @field_validator("worker_command", "queues")
    @classmethod
    def _words(cls, v: list[str]) -> list[str]:
        for word in v:
            if not re.match(r"^[A-Za-z0-9._/:=@-]+$", word):
                raise ValueError(f"{word!r}: words may use letters, digits and . _ / : = @ - only")
        return v

    @field_validator("queue_prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        if not re.match(r"^\{?[A-Za-z0-9_-]+\}?$", v):
            raise ValueError("must be a word, optionally a hash tag like {bull}")
        return v

    @field_validator("certificate_arn")
    @classmethod
    def _cert(cls, v: str | None) -> str | None:
        if v is not None and not _ACM_ARN.match(v):
            raise ValueError("must be an ACM certificate ARN (arn:aws:acm:<region>:<account>:certificate/<uuid>)")
        return v


class NetworkConfig(Section):
    cidr: str = Field(description="VPC CIDR; split into one public and one private subnet per AZ.")
    az_count: int = Field(ge=2, le=3, description="Availability zones to spread over.")
    nat_gateways: Literal["none", "single", "perAz"] = Field(description="NAT for private instances.")

    @field_validator("cidr")
    @classmethod
    def _cidr(cls, v: str) -> str:
        try:
            net = ipaddress.IPv4Network(v, strict=True)
        except ValueError as err:
            raise ValueError(f"must be an IPv4 network like 10.0.0.0/16 ({err})") from None
        if not 16 <= net.prefixlen <= MIN_SUBNET_PREFIX - SUBNET_EXTRA_BITS:
            raise ValueError(
                f"prefix length must be /16../{MIN_SUBNET_PREFIX - SUBNET_EXTRA_BITS}: the VPC is cut into eight "
                f"/{net.prefixlen + SUBNET_EXTRA_BITS} subnets and each must be /{MIN_SUBNET_PREFIX} or larger"
            )
        if not net.is_private:
            raise ValueError("must be a private range (10/8, 172.16/12, 192.168/16)")
        return v


class AppTierConfig(Section):
    instance_type: str = Field(description=(
        "EC2 type of app instances (phase 1: the VM). Graviton types (t4g, m7g, c7g, r7g ...) run arm64 and "
        "boot Canonical's arm64 Ubuntu: the app image needs an arm64 (or multi-arch) variant, as docker pulls "
        "the host's platform. Phase 1's deployed VM keeps its architecture."))
    min: int = Field(ge=1, le=100)
    desired: int = Field(ge=1, le=100)
    max: int = Field(ge=1, le=100)
    cpu_target: int = Field(ge=10, le=90, description="CPU % the app group's target tracking aims for.")


class WorkersConfig(Section):
    instance_type: str = Field(description="EC2 type of worker instances; an arm64 (Graviton) type needs an "
                                           "arm64 variant of the app image, like appTier.instanceType.")
    min: int = Field(ge=0, le=100)
    max: int = Field(ge=1, le=100)
    queue_depth_target: int = Field(ge=1, le=100_000, description="Waiting jobs per worker instance to aim for.")


class DatabaseConfig(Section):
    instance_class: str
    engine_version: Annotated[Literal["14", "15", "16", "17"], BeforeValidator(_cli_text)]
    storage_gb: int = Field(ge=aws_facts.RDS_MIN_STORAGE_GB, le=aws_facts.RDS_MAX_STORAGE_GB)
    max_storage_gb: int = Field(ge=aws_facts.RDS_MIN_STORAGE_GB, le=aws_facts.RDS_MAX_STORAGE_GB,
                                description="Storage autoscaling ceiling.")
    multi_az: bool
    replicas: int = Field(ge=0, le=aws_facts.RDS_MAX_READ_REPLICAS)
    backup_retention_days: int = Field(ge=7, le=35, description="Automated backups; 7 is the floor we allow.")


class PgBouncerConfig(Section):
    instances: int = Field(ge=1, le=10)
    instance_type: str
    version: Literal["1.17", "1.18", "1.21", "1.22", "1.23", "1.24", "1.25"] = Field(
        description="PgBouncer the hosts install (Ubuntu 24.04 ships 1.22); gates version-specific settings.")
    pool_mode: Literal["session", "transaction", "statement"]
    max_client_conn: int = Field(ge=10, le=100_000)
    default_pool_size: int = Field(ge=1, le=1000)
    reserve_pool_size: int = Field(ge=0, le=1000)


class RedisConfig(Section):
    node_type: str
    # Default redis: every group deployed before this key existed runs Redis OSS, and the ladder never
    # switches a stateful engine on its own (Valkey -> Redis OSS would need a new, empty group; see
    # ladder/inplace.py). `ladder recommend` prices the switch; one key opts in, applied in place.
    engine: Literal["redis", "valkey"] = Field(
        "redis", description="ElastiCache engine: `redis` (Redis OSS) or `valkey` (about 20 % cheaper per node). "
                             "A deployed Redis OSS group switches to Valkey in place: with a replica, writes pause "
                             "only for a failover of seconds; without one (phases 1-2) Redis is unavailable for the "
                             "upgrade, refused unless climb.acceptCacheInterruption is set. Valkey never goes back "
                             "(the provider would replace the group).")
    engine_version: Literal["7.0", "7.1", "7.2", "8.0", "8.1", "8.2"] = Field(
        description="Engine version: Redis OSS 7.0 or 7.1; Valkey 7.2, 8.0, 8.1 or 8.2. Default: the engine's newest.")
    cluster_mode: Literal["disabled", "compatible", "enabled"]
    shards: int = Field(ge=1, le=aws_facts.ELASTICACHE_MAX_SHARDS)
    replicas_per_shard: int = Field(ge=0, le=aws_facts.ELASTICACHE_MAX_REPLICAS_PER_SHARD)


class CdnConfig(Section):
    price_class: Literal["PriceClass_100", "PriceClass_200", "PriceClass_All"]
    aliases: list[str] = Field(default_factory=list)
    certificate_arn: str | None = Field(None, description="ACM certificate in us-east-1 for the aliases.")
    origin_domain: str | None = Field(
        None, description="DNS name, covered by app.certificateArn and pointed at the load balancer, that CloudFront "
                          "reaches the app at over HTTPS; required when app.certificateArn is set.")
    api_path: Literal["cloudfront", "loadBalancer"] = Field(
        "cloudfront", description="Phases 5-6: how clients reach the API. `cloudfront`: through the distribution "
                                  "(uncached), the load balancer admitting CloudFront only. `loadBalancer`: straight "
                                  "to the load balancer at https://<cdn.originDomain> (internet on 443, HTTP "
                                  "redirected, a REGIONAL web ACL with the same rate limit and rule groups), "
                                  "CloudFront serving /static only; no per-request CloudFront fee on API calls. "
                                  "Switching a deployed stack takes an `up` with climb.keepAlbOpen (phase 5; "
                                  "docs/api-path.md).")

    @field_validator("origin_domain")
    @classmethod
    def _origin(cls, v: str | None) -> str | None:
        if v is not None and (not _HOSTNAME.match(v) or v.startswith("*.")):
            raise ValueError(f"{v!r} is not a DNS name")
        return v

    @field_validator("aliases")
    @classmethod
    def _aliases(cls, v: list[str]) -> list[str]:
        for name in v:
            if not _HOSTNAME.match(name):
                raise ValueError(f"{name!r} is not a DNS name")
        return v

    @field_validator("certificate_arn")
    @classmethod
    def _cert(cls, v: str | None) -> str | None:
        if v is not None and not (_ACM_ARN.match(v) and v.startswith("arn:aws:acm:us-east-1:")):
            raise ValueError("must be an ACM certificate ARN in us-east-1 (CloudFront reads certificates only there)")
        return v


class HpaConfig(Section):
    min_replicas: int = Field(ge=1, le=1000)
    max_replicas: int = Field(ge=1, le=1000)
    cpu_percent: int = Field(ge=10, le=100)
    memory_percent: int = Field(ge=10, le=100)


# Ranges the EKS public endpoint never sees as a source (it is on the internet): a stack that
# wants VPC-internal clients chooses eks.endpointAccess: private instead.
_NON_PUBLIC = [ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10",
                                                   "127.0.0.0/8", "169.254.0.0/16")]
MIN_PUBLIC_ACCESS_PREFIX = 8
"""Ranges wider than /8 admit a large part of the internet: refused like 0.0.0.0/0."""
_IAM_PRINCIPAL_ARN = re.compile(r"^arn:aws:iam::\d{12}:(role|user)/[\w+=,.@/-]{1,512}$")


class EksConfig(Section):
    version: Literal[aws_facts.EKS_VERSIONS]  # type: ignore[valid-type]
    node_instance_type: str = Field(
        description="The managed node group's instance type. Unset on a stack whose node group is deployed: the "
                    "deployed type stays (output nodeInstanceType; the preset's type is for new groups only). A change "
                    "of a deployed group's type replaces the group (EKS cannot change it in place) and is refused "
                    "unless eks.replaceNodeGroupFrom confirms it (ladder/climb_eks.py).")
    nodes_min: int = Field(ge=1, le=450)
    nodes_max: int = Field(ge=1, le=450)
    hpa: HpaConfig
    replace_node_group_from: str | None = Field(
        None, description="Confirms one `pulumi up` that replaces the deployed node group: the type it runs now "
                          "(output nodeInstanceType). Set eks.nodesMin to the nodes the load needs on the new type "
                          "in the same `up` (the new group starts at nodesMin, then the old one is drained); remove "
                          "both in the next `up`.")
    endpoint_access: Literal["public", "private"] = Field(
        "public", description="Kubernetes API endpoint: public (plus the private one nodes use), reachable only from "
                              "eks.publicAccessCidrs; or private (VPC only: deploy from inside the VPC, a VPN or a peer).")
    public_access_cidrs: list[str] | None = Field(
        None, description="IPv4 ranges (the deployers' egress: CI runners, office VPN) allowed to reach the public "
                          "endpoint; required with endpointAccess public, no default; 0.0.0.0/0 is refused.")
    admin_principal_arns: list[str] = Field(
        default_factory=list, description="IAM roles/users that may assume the cluster's admin role (the only "
                                          "cluster-admin access entry); empty: any principal of the account whose "
                                          "IAM policy allows sts:AssumeRole on it.")

    @field_validator("public_access_cidrs")
    @classmethod
    def _cidrs(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return v
        if not v:
            raise ValueError("must list at least one range (or set eks.endpointAccess: private)")
        for cidr in v:
            try:
                net = ipaddress.IPv4Network(cidr, strict=True)
            except ValueError as err:
                raise ValueError(f"{cidr!r} is not an IPv4 network like 203.0.113.0/24 ({err})") from None
            if net.prefixlen < MIN_PUBLIC_ACCESS_PREFIX:
                raise ValueError(f"{cidr} opens the Kubernetes API to the internet; list the deployers' egress "
                                 f"ranges (/{MIN_PUBLIC_ACCESS_PREFIX} or narrower) or set eks.endpointAccess: private")
            if any(net.subnet_of(n) for n in _NON_PUBLIC):
                raise ValueError(f"{cidr} is a private range, never the source address the public endpoint sees; "
                                 "for clients inside the VPC set eks.endpointAccess: private")
        return v

    @field_validator("admin_principal_arns")
    @classmethod
    def _admins(cls, v: list[str]) -> list[str]:
        for arn in v:
            if not _IAM_PRINCIPAL_ARN.match(arn):
                raise ValueError(f"{arn!r} is not an IAM role or user ARN (arn:aws:iam::<account>:role/<name>)")
        return v


class EdgeConfig(Section):
    """Rate limiting and managed rules where requests enter the stack (`ladder.edge` says which
    enforcer each phase gets: nginx `limit_req`, or an AWS WAF web ACL on the ALB or CloudFront)."""

    rate_limit_per_minute: int = Field(
        aws_facts.EDGE_RATE_LIMIT_DEFAULT, ge=aws_facts.WAF_RATE_LIMIT_MIN, le=aws_facts.WAF_RATE_LIMIT_MAX,
        description="Requests per minute one client IP may send (everything but /static and the health check); "
                    "more get HTTP 429.")
    burst: int = Field(50, ge=0, le=100_000, description="nginx only: requests over the rate accepted at once "
                                                          "before 429s (a page load's parallel requests).")
    managed_rule_groups: list[Literal[aws_facts.WAF_MANAGED_RULE_GROUPS]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: list(aws_facts.WAF_DEFAULT_RULE_GROUPS),
        description="AWS managed rule groups in the web ACL (phases with WAF).")
    blocked_alarm_percent: float = Field(5.0, gt=0, le=100, description="Alarm when the web ACL blocks more than "
                                                                       "this share of requests (5-minute periods).")

    @field_validator("managed_rule_groups")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("each rule group may appear once")
        return v


class ClimbConfig(Section):
    """The intermediate states a climb needs, set by the operator for one `pulumi up` and checked
    by the program against what is deployed (`ladder.climb`; README "Climbing, step by step")."""

    keep_single_host: bool = Field(
        False, description="Phase 2 only: keep the phase-1 VM and its Elastic IP serving while the load balancer "
                           "and groups come up (the first phase-2 `pulumi up`; remove it once DNS points at the "
                           "load balancer). The VM keeps the instance type it was deployed with (output "
                           "singleHostType). Also the first step of stepping back 2 -> 1.")
    accept_cache_interruption: bool = Field(
        False, description="Acknowledges that the Redis OSS -> Valkey switch (redis.engine valkey) of a deployed group "
                           "without a replica (redis.replicasPerShard 0: phases 1-2) takes Redis away for the "
                           "upgrade: its only node cannot serve requests meanwhile (AWS Knowledge Center); the switch "
                           "is refused without it. Take a manual backup first; remove it after that `up`.")
    app_database_route: Literal["direct", "pgbouncer"] | None = Field(
        None, description="How app hosts reach PostgreSQL: `direct` to RDS or through `pgbouncer`. Default: "
                          "pgbouncer where the phase has a PgBouncer tier (3+), else direct. The first phase-3 "
                          "`pulumi up` of a climb sets direct (PgBouncer must serve before the app moves).")
    keep_alb_open: bool = Field(
        False, description="Phase 5 only: the load balancer keeps serving clients that reach it directly (no "
                           "CloudFront-only refusal, HTTP not redirected unless cdn.apiPath is loadBalancer, its security group admitting the internet on 80/443 "
                           "beside CloudFront) during the first phase-5 `pulumi up` of the "
                           "4 -> 5 climb; remove it once DNS points at CloudFront. Also the first step of stepping "
                           "back 5 -> 4, and the `up` serving both ways while cdn.apiPath switches (the REGIONAL "
                           "web ACL guards the load balancer meanwhile; docs/api-path.md).")
    keep_ec2_tier: bool = Field(
        False, description="Phase 6 only: keep the phase-5 EC2 tier (load balancer, app and worker groups, PgBouncer "
                           "hosts) serving beside EKS (the first phase-6 `pulumi up` of the 5 -> 6 climb, and the "
                           "first step of stepping back 6 -> 5); removing it is refused until an `up` brought the "
                           "EKS path up serving (ladder.climb_eks).")
    origin_domain_target: CliText | None = Field(
        None, description="With app.certificateArn: the load balancer hostname cdn.originDomain now points at, as the "
                          "last `up` output it (ingressHostname on the way to 6, ec2AlbHostname on the way back); "
                          "the EC2 tier (or EKS) goes only when it matches.")
    refreshed_templates: CliText | None = Field(
        None, description="APP/WORKER (e.g. 3/2; `-` for nginx mode's app): the app and worker launch template "
                          "versions the last `up` output (appTemplateVersion, workerTemplateVersion), set once `aws "
                          "autoscaling describe-instance-refreshes` says Successful for both groups. Required by "
                          "the `up`s that remove an old path after a rolling change: the direct app -> RDS rules "
                          "(2 -> 3 step 3) and cluster mode enabled (3 -> 4 step 3).")

    @field_validator("refreshed_templates")
    @classmethod
    def _refreshed(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"(-|[1-9][0-9]*)/[1-9][0-9]*", v):
            raise ValueError(f"{v!r} is not APP/WORKER launch template versions; allowed: e.g. 3/2, -/2")
        return v

    @field_validator("origin_domain_target")
    @classmethod
    def _target(cls, v: str | None) -> str | None:
        if v is not None and (not _HOSTNAME.match(v.lower()) or v.startswith("*.")):
            raise ValueError(f"{v!r} is not a DNS name")
        return v


_AMI_ID = re.compile(r"^ami-([0-9a-f]{8}|[0-9a-f]{17})$")
NGINX_LB_INSTANCE_TYPE = "t3.small"  # nginx mode's load balancer host (components/fleet.py)


class HostsConfig(Section):
    ami: str | None = Field(
        None, description="AMI of every EC2 host (app, workers, PgBouncer, nginx); only when they all run one "
                          "CPU architecture (x86_64, or arm64 on Graviton types). Unset: per architecture, the "
                          "AMI the last `pulumi up` recorded (outputs hostsAmi, hostsAmiArm64), or Canonical's "
                          "current Ubuntu 24.04 for it on the first one; set an id to roll the fleet onto it.")

    @field_validator("ami")
    @classmethod
    def _ami(cls, v: str | None) -> str | None:
        # EC2 image ids: `ami-` and 8 or 17 hex digits (EC2 API Reference, "Resource IDs").
        if v is not None and not _AMI_ID.match(v):
            raise ValueError("must be an EC2 image id like ami-0123456789abcdef0 (ami- and 8 or 17 hex digits)")
        return v


class LogsConfig(Section):
    retention_days: int = Field(
        30, description="Days CloudWatch Logs keeps the log groups the program makes: container logs (hosts "
                        "and pods), the RDS primary's exports, the EKS control plane.")
    rds_log_groups_imported: bool = Field(
        False, description="A primary deployed before the program made its log groups (commit a599ad3): RDS "
                           "made /aws/rds/instance/<id>/postgresql|upgrade, which the program leaves alone. Set "
                           "true after the `pulumi import` commands the `up` warns with; from then the program "
                           "manages them (logs.retentionDays) and records it in the output dbLogGroups.")

    @field_validator("retention_days")
    @classmethod
    def _retention(cls, v: int) -> int:
        if v not in aws_facts.LOG_RETENTION_DAYS:
            raise ValueError(f"must be one of CloudWatch Logs' retention periods: {', '.join(map(str, aws_facts.LOG_RETENTION_DAYS))}")
        return v


class AlarmsConfig(Section):
    email: str | None = Field(None, description="Subscribed to the alarm topic when set.")

    @field_validator("email")
    @classmethod
    def _email(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$", v):
            raise ValueError("must be an e-mail address")
        return v


# Tiers that run `app.image` (config key of each): the app and worker hosts, phase 1's VM (and the one
# climb.keepSingleHost keeps) and phase 6's EKS nodes. PgBouncer and nginx hosts run Ubuntu packages.
APP_IMAGE_TIERS = frozenset({"appTier.instanceType", "workers.instanceType", "climb.keepSingleHost",
                             "eks.nodeInstanceType"})


class StackConfig(Section):
    phase: int = Field(ge=1, le=6)
    region: str = Field(description="aws:region; must be a region the price catalog covers.")
    app: AppConfig = Field(default_factory=AppConfig)
    network: NetworkConfig
    app_tier: AppTierConfig
    workers: WorkersConfig
    load_balancer: Literal["alb", "nginx"]
    database: DatabaseConfig
    pgbouncer: PgBouncerConfig
    redis: RedisConfig
    cdn: CdnConfig
    eks: EksConfig
    alarms: AlarmsConfig = Field(default_factory=AlarmsConfig)
    logs: LogsConfig = Field(default_factory=LogsConfig)
    climb: ClimbConfig = Field(default_factory=ClimbConfig)
    hosts: HostsConfig = Field(default_factory=HostsConfig)
    edge: EdgeConfig = Field(default_factory=EdgeConfig)

    @property
    def phase_spec(self):
        return PHASES[self.phase]

    @property
    def uses_fleet(self) -> bool:
        """Phases 2-5 run the app on EC2 Auto Scaling groups."""
        return 2 <= self.phase <= 5

    @property
    def uses_pgbouncer(self) -> bool:
        return self.phase >= 3

    _ec2_tier: StackConfig | None = PrivateAttr(default=None)

    @property
    def ec2_tier(self) -> StackConfig:
        """What the phase-5 EC2 tier kept beside EKS (climb.keepEc2Tier) is built from: the stack's
        own keys over phase 5's defaults, so that `up` leaves the tier exactly as phase 5 built it
        (phase 6's defaults size the pods, not the hosts). Set by `load`; else this config."""
        return self._ec2_tier or self

    _phase1_instance_type: str | None = PrivateAttr(default=None)
    _node_type_explicit: bool = PrivateAttr(default=False)

    @property
    def node_type_explicit(self) -> bool:
        """The stack sets `eks.nodeInstanceType` (not the preset): only then may a deployed node
        group's type change (ladder/climb_eks.py). Set by `load`."""
        return self._node_type_explicit

    @property
    def ec2_hosts(self) -> dict[str, str]:
        """The Ubuntu EC2 hosts this `up` runs, config key -> instance type: their AMIs follow the
        types' CPU architectures (components/app_host.py). Phase 6's EKS nodes boot EKS's own AMIs;
        with climb.keepEc2Tier the phase-5 tier's hosts stay. The VM kept by climb.keepSingleHost is
        named by that key (its type: phase 1's, `phase1_instance_type`)."""
        c = self.ec2_tier if self.phase == 6 and self.climb.keep_ec2_tier else self
        hosts: dict[str, str] = {}
        if c.phase == 1:
            hosts["appTier.instanceType"] = c.app_tier.instance_type
        if c.climb.keep_single_host and c.phase == 2:
            hosts["climb.keepSingleHost"] = c.phase1_instance_type
        if c.uses_fleet:
            hosts["appTier.instanceType"] = c.app_tier.instance_type
            hosts["workers.instanceType"] = c.workers.instance_type
            if c.load_balancer == "nginx":
                hosts["loadBalancer"] = NGINX_LB_INSTANCE_TYPE
            if c.uses_pgbouncer:
                hosts["pgbouncer.instanceType"] = c.pgbouncer.instance_type
        return hosts

    @property
    def app_image_hosts(self) -> dict[str, str]:
        """The tiers that run `app.image`, config key -> instance type: the app and worker hosts (phase
        1's VM, the one climb.keepSingleHost keeps, the phase-5 tier climb.keepEc2Tier keeps) and phase
        6's EKS nodes. PgBouncer and nginx hosts run Ubuntu packages, not the app image."""
        hosts = {k: v for k, v in self.ec2_hosts.items() if k in APP_IMAGE_TIERS}
        if self.phase == 6:
            hosts["eks.nodeInstanceType"] = self.eks.node_instance_type
        return hosts

    @property
    def phase1_instance_type(self) -> str:
        """The phase-1 VM's type as phase 1 resolves it from the stack's own keys (`appTier.instanceType`
        over phase 1's default): what the VM kept by climb.keepSingleHost runs on when no `up` recorded
        `singleHostType` (stacks deployed before that output, or a VM the 2 -> 1 step back creates).
        Set by `load`; else this config's own type."""
        return self._phase1_instance_type or self.app_tier.instance_type

    @property
    def api_direct(self) -> bool:
        """Phases 5-6 with `cdn.apiPath: loadBalancer`: clients send the API straight to the load
        balancer; CloudFront carries /static only (ladder.edge says who is guarded by what)."""
        return self.phase >= 5 and self.cdn.api_path == "loadBalancer"

    @property
    def app_database_route(self) -> Literal["direct", "pgbouncer"]:
        """Where the app hosts send their queries (phase default unless `climb.appDatabaseRoute` says)."""
        if self.climb.app_database_route is not None:
            return self.climb.app_database_route
        return "pgbouncer" if self.uses_pgbouncer else "direct"


SECTIONS = {field.alias or name: name for name, field in StackConfig.model_fields.items()}


_INTERNAL = {"region"}  # filled from aws:region, not a scaleladder key


def _loc_to_key(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts[-1] = f"{parts[-1]}[{item}]" if parts else f"[{item}]"
        else:
            parts.append(str(item))
    return key(".".join(parts))


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    model: type[BaseModel] | None = StackConfig
    for item in loc[:-1]:
        if model is None or isinstance(item, int):
            return []
        fields = {f.alias or n: f for n, f in model.model_fields.items()}
        ann = fields[item].annotation if item in fields else None
        model = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
    return sorted(f.alias or n for n, f in model.model_fields.items() if n not in _INTERNAL) if model else []


def _describe(err: dict[str, Any]) -> str:
    loc = tuple(err["loc"])
    if err["type"] == "extra_forbidden":
        allowed = _allowed_keys(loc)
        return f"{_loc_to_key(loc)}: unknown key; allowed keys here: {', '.join(allowed)}"
    msg = err["msg"].removeprefix("Value error, ")
    got = err.get("input")
    shown = f" (got {got!r})" if not isinstance(got, (dict, list)) else ""
    return f"{_loc_to_key(loc)}: {msg}{shown}"


def _ami_architecture_problems(cfg: StackConfig) -> list[str]:
    """`hosts.ami` is one image of one CPU architecture; EC2 refuses to launch it on a type of the
    other (ladder/aws_facts.py EC2_FAMILY_ARCHITECTURE), so tiers of two architectures need one AMI
    each: Canonical's per architecture (hosts.ami unset)."""
    if not cfg.hosts.ami:
        return []
    by_arch: dict[str, list[str]] = {}
    for path, itype in cfg.ec2_hosts.items():
        try:
            by_arch.setdefault(aws_facts.ec2_architecture(itype), []).append(f"{key(path)} {itype}")
        except ValueError:  # a type the catalog refuses: reported by `known`
            return []
    if len(by_arch) < 2:
        return []
    tiers = "; ".join(f"{arch}: {', '.join(paths)}" for arch, paths in sorted(by_arch.items()))
    return [f"{key('hosts.ami')}: one AMI boots one CPU architecture and phase {cfg.phase}'s hosts run two ({tiers}); "
            "allowed: unset (each architecture boots Canonical's Ubuntu 24.04 AMI for it), or an AMI with every "
            "host tier's instance type on that AMI's architecture"]


# OCI image index: a manifest's platform.architecture takes Go's GOARCH values (amd64, arm64)
# (opencontainers/image-spec image-index.md); EC2's x86_64 / arm64 (aws_facts.ec2_architecture).
IMAGE_PLATFORM_OF_ARCHITECTURE = {aws_facts.X86_64: "linux/amd64", aws_facts.ARM64: "linux/arm64"}


def image_platform_problems(cfg: StackConfig) -> list[str]:
    """A tier running the app image on a type whose platform `app.imagePlatforms` does not list:
    docker pulls the host's platform, so an amd64-only image fails on Graviton (`exec format error`),
    and the worker group's EC2 health checks would not stop the rollout (review cost-aws finding 4)."""
    problems: list[str] = []
    listed = cfg.app.image_platforms
    for path, itype in cfg.app_image_hosts.items():
        try:
            platform = IMAGE_PLATFORM_OF_ARCHITECTURE[aws_facts.ec2_architecture(itype)]
        except ValueError:  # a type the catalog refuses: reported by `known`
            continue
        if platform not in listed:
            problems.append(
                f"{key(path)}: {itype} pulls app.image for {platform}, and {key('app.imagePlatforms')} lists "
                f"{', '.join(listed)} only; allowed: a type of a listed platform, or add {platform} to "
                f"{key('app.imagePlatforms')} once {cfg.app.image} has a {platform} (or multi-arch) build")
    return problems


def _cross_checks(cfg: StackConfig) -> list[str]:
    """Impossible combinations, each naming the keys involved and what is allowed."""
    problems: list[str] = []
    region = cfg.region
    prices = catalog()
    if region not in prices.regions:
        return [f"aws:region: {region!r} is not covered by the price catalog; allowed: {', '.join(sorted(prices.regions))}"]

    def known(table: str, value: str, path: str) -> None:
        allowed = prices.instance_types(region, table)
        if value not in allowed:
            problems.append(f"{key(path)}: {value!r} is not in the price catalog for {region}; allowed: {', '.join(allowed)}")

    known("ec2_instance_hour", cfg.app_tier.instance_type, "appTier.instanceType")
    known("ec2_instance_hour", cfg.workers.instance_type, "workers.instanceType")
    known("ec2_instance_hour", cfg.pgbouncer.instance_type, "pgbouncer.instanceType")
    known("ec2_instance_hour", cfg.eks.node_instance_type, "eks.nodeInstanceType")
    known("rds_postgres_instance_hour", cfg.database.instance_class, "database.instanceClass")
    problems += _ami_architecture_problems(cfg)
    problems += image_platform_problems(cfg)
    known(redis_settings.node_price_table(cfg.redis.engine), cfg.redis.node_type, "redis.nodeType")

    if cfg.phase >= 2 and cfg.network.nat_gateways == "none":
        problems.append(f"{key('network.natGateways')}: phase {cfg.phase} runs instances in private subnets that pull images and packages; allowed: single, perAz")
    if cfg.phase == 6 and subnet_prefix(cfg.network.cidr) > MIN_EKS_SUBNET_PREFIX:
        problems.append(
            f"{key('network.cidr')}: EKS gives every pod a VPC address; phase 6 needs /{MIN_EKS_SUBNET_PREFIX} subnets or larger, "
            f"so a VPC of /{MIN_EKS_SUBNET_PREFIX - SUBNET_EXTRA_BITS} or larger (got {cfg.network.cidr})"
        )

    t = cfg.app_tier
    if not t.min <= t.desired <= t.max:
        problems.append(f"{key('appTier.min')}/{key('appTier.desired')}/{key('appTier.max')}: need min <= desired <= max (got {t.min}, {t.desired}, {t.max})")
    if cfg.phase == 1 and (t.min, t.desired, t.max) != (1, 1, 1):
        problems.append(f"{key('appTier.max')}: phase 1 is one VM; min, desired and max must be 1 (got {t.min}, {t.desired}, {t.max}); climb to phase 2 for more")
    if cfg.workers.min > cfg.workers.max:
        problems.append(f"{key('workers.min')}: must be <= {key('workers.max')} (got {cfg.workers.min} > {cfg.workers.max})")
    if cfg.eks.nodes_min > cfg.eks.nodes_max:
        problems.append(f"{key('eks.nodesMin')}: must be <= {key('eks.nodesMax')} (got {cfg.eks.nodes_min} > {cfg.eks.nodes_max})")
    hpa = cfg.eks.hpa
    if hpa.min_replicas > hpa.max_replicas:
        problems.append(f"{key('eks.hpa.minReplicas')}: must be <= {key('eks.hpa.maxReplicas')} (got {hpa.min_replicas} > {hpa.max_replicas})")
    e = cfg.eks
    if cfg.phase == 6 and e.endpoint_access == "public" and not e.public_access_cidrs:
        problems.append(f"{key('eks.publicAccessCidrs')}: required with {key('eks.endpointAccess')} public (the "
                        "default): list the IPv4 ranges allowed to reach the Kubernetes API (CI runners, office VPN); "
                        "there is no open default; or set eks.endpointAccess: private")
    if e.endpoint_access == "private" and e.public_access_cidrs:
        problems.append(f"{key('eks.publicAccessCidrs')}: only used with {key('eks.endpointAccess')} public "
                        "(a private endpoint has no public address to restrict)")
    if cfg.phase == 6 and hpa.min_replicas < 2:
        problems.append(f"{key('eks.hpa.minReplicas')}: must be >= 2 so a node drain never takes the app down (got {hpa.min_replicas})")

    db = cfg.database
    if db.max_storage_gb < db.storage_gb:
        problems.append(f"{key('database.maxStorageGb')}: must be >= {key('database.storageGb')} (got {db.max_storage_gb} < {db.storage_gb})")
    if cfg.phase >= 3 and db.replicas < 1:
        problems.append(f"{key('database.replicas')}: phase {cfg.phase} reads from replicas; allowed 1..{aws_facts.RDS_MAX_READ_REPLICAS} (got 0)")

    pb = cfg.pgbouncer
    if cfg.phase == 6 and images.pgbouncer_image(pb.version) is None:
        problems.append(f"{key('pgbouncer.version')}: phase 6 runs PgBouncer from {images.PGBOUNCER_REPOSITORY}, which "
                        f"publishes no {pb.version} image; allowed: {', '.join(images.PGBOUNCER_TAGS)}")
    per_pool = pb.default_pool_size + pb.reserve_pool_size
    if per_pool > pb.max_client_conn:
        problems.append(f"{key('pgbouncer.defaultPoolSize')}: pool ({pb.default_pool_size} + reserve {pb.reserve_pool_size}) cannot exceed {key('pgbouncer.maxClientConn')} ({pb.max_client_conn})")
    if cfg.uses_pgbouncer and db.instance_class in aws_facts.RDS_CLASS_MEMORY_GIB:
        limit = aws_facts.rds_max_connections(db.instance_class)
        # Each PgBouncer host opens up to pool + reserve to the primary, and as many to each replica.
        primary_conns = pb.instances * per_pool
        if primary_conns >= limit:
            problems.append(
                f"{key('pgbouncer.instances')} x ({key('pgbouncer.defaultPoolSize')} + {key('pgbouncer.reservePoolSize')}) = "
                f"{primary_conns} server connections must stay under max_connections of {key('database.instanceClass')} "
                f"{db.instance_class} ({limit}); lower the pool or choose a larger class"
            )

    if cfg.phase >= 3 and cfg.load_balancer == "nginx":
        # nginx mode's app hosts are fixed instances outside any Auto Scaling group, each climb
        # from phase 2 rewrites what they boot with (3: the route to PgBouncer, 4: Redis cluster
        # mode, 5: CloudFront's STATIC_URL, from the distribution whose origin is the nginx host
        # built from the app hosts: a cycle). Replacing them would swap every app host and then
        # the LB host at once (review aws finding 6); with their user data ignored (app_host.py
        # host_instance) they would keep the old route while its firewall rules go. The ALB's
        # groups roll one batch at a time instead.
        problems.append(f"{key('loadBalancer')}: nginx serves phase 2 only (got phase {cfg.phase}): its app hosts "
                        "are fixed instances, and every later phase changes what they boot with (PgBouncer, Redis "
                        "cluster mode, CloudFront), which no `pulumi up` can roll one host at a time; allowed in "
                        f"phase {cfg.phase}: alb. To climb, set loadBalancer: alb in phase 2 first (its own `up`: the "
                        "ALB and its groups replace the nginx hosts; then point DNS at the ALB), then climb")
    cert = cfg.app.certificate_arn
    if cert and cert.split(":")[3] != region:
        problems.append(f"{key('app.certificateArn')}: the certificate is in {cert.split(':')[3]}, the load balancer in "
                        f"{region}; a load balancer uses ACM certificates of its own region only (ELB User Guide, "
                        f"\"SSL certificates for your Application Load Balancer\"); allowed: an ACM ARN in {region}")
    cdn = cfg.cdn
    if cfg.phase >= 5 and not cfg.app.certificate_arn:
        # CloudFront forwards the viewer's cookies and Authorization to the app origin: from phase 5 on
        # that leg is HTTPS only (https-only to cdn.originDomain, a name in the certificate).
        problems.append(
            f"{key('app.certificateArn')}: required from phase 5 (got phase {cfg.phase}): CloudFront reaches the "
            f"load balancer over HTTPS only, at {key('cdn.originDomain')}; set an ACM certificate ARN in {region} "
            "covering that name, and cdn.originDomain to it (a DNS name pointed at the load balancer)")
    if cfg.phase >= 5 and cfg.app.certificate_arn and not cdn.origin_domain:
        problems.append(
            f"{key('cdn.originDomain')}: required when {key('app.certificateArn')} is set: CloudFront checks the "
            "origin's certificate against the origin's name, and no certificate covers the load balancer's AWS name; "
            "set a DNS name in that certificate that points at the load balancer")
    if cdn.origin_domain and not cfg.app.certificate_arn:
        problems.append(f"{key('cdn.originDomain')}: only used with {key('app.certificateArn')} (HTTPS to the origin); "
                        "without a certificate CloudFront reaches the load balancer by its own name over HTTP")
    if cdn.aliases and not cdn.certificate_arn:
        problems.append(f"{key('cdn.aliases')}: CloudFront serves aliases only with {key('cdn.certificateArn')} "
                        "(an ACM certificate in us-east-1 covering them)")
    if cdn.certificate_arn and not cdn.aliases:
        problems.append(f"{key('cdn.certificateArn')}: needs {key('cdn.aliases')}, the names the certificate is for")

    r = cfg.redis
    engine_versions = aws_facts.ELASTICACHE_ENGINE_VERSIONS[r.engine]
    if r.engine_version not in engine_versions:
        problems.append(f"{key('redis.engineVersion')}: {r.engine_version} is not a {redis_settings.engine_name(r.engine)} "
                        f"version on ElastiCache ({key('redis.engine')} is {r.engine}); allowed: "
                        f"{', '.join(engine_versions)} (or unset: {engine_versions[-1]})")
    nodes = r.shards * (1 + r.replicas_per_shard)
    if nodes > aws_facts.ELASTICACHE_MAX_NODES:
        problems.append(f"{key('redis.shards')} x (1 + {key('redis.replicasPerShard')}) = {nodes} nodes; an ElastiCache "
                        f"cluster holds at most {aws_facts.ELASTICACHE_MAX_NODES} (ElastiCache quotas)")
    if r.cluster_mode != "enabled" and r.shards != 1:
        problems.append(f"{key('redis.shards')}: more than one shard needs {key('redis.clusterMode')}: enabled (got shards {r.shards} with clusterMode {r.cluster_mode})")
    if r.cluster_mode in ("compatible", "enabled") and r.replicas_per_shard < 1:
        problems.append(f"{key('redis.replicasPerShard')}: clusterMode {r.cluster_mode} needs automatic failover, so at least 1 replica per shard (got 0)")
    if cfg.phase >= 4 and r.cluster_mode == "disabled":
        problems.append(f"{key('redis.clusterMode')}: phase {cfg.phase} runs Redis in cluster mode; allowed: compatible (one step on the climb) or enabled")
    if cfg.phase <= 3 and r.cluster_mode == "enabled":
        problems.append(f"{key('redis.clusterMode')}: enabled belongs to phase 4 and later (phase is {cfg.phase}); allowed here: disabled, compatible")
    if r.cluster_mode == "compatible" and r.shards != 1:
        problems.append(f"{key('redis.shards')}: AWS blocks scaling while clusterMode is compatible; keep 1 shard (got {r.shards})")

    climb = cfg.climb
    if climb.keep_single_host and cfg.phase != 2:
        problems.append(f"{key('climb.keepSingleHost')}: keeps the phase-1 VM beside the load balancer during the "
                        f"1 -> 2 climb (or the 2 -> 1 step back) only; allowed in phase {cfg.phase}: false (unset)")
    if climb.app_database_route == "pgbouncer" and not cfg.uses_pgbouncer:
        problems.append(f"{key('climb.appDatabaseRoute')}: phase {cfg.phase} has no PgBouncer hosts; allowed: direct")
    if climb.keep_alb_open and cfg.phase != 5:
        problems.append(f"{key('climb.keepAlbOpen')}: keeps the load balancer open to direct clients during the "
                        f"4 -> 5 climb (or the 5 -> 4 step back, or a cdn.apiPath switch in phase 5) only; allowed in "
                        f"phase {cfg.phase}: false (unset)")
    if climb.keep_ec2_tier and cfg.phase != 6:
        problems.append(f"{key('climb.keepEc2Tier')}: keeps the phase-5 EC2 tier beside EKS during the 5 -> 6 climb "
                        f"(or the 6 -> 5 step back) only; allowed in phase {cfg.phase}: false (unset)")
    if climb.origin_domain_target is not None and not (cfg.app.certificate_arn and cfg.cdn.origin_domain):
        problems.append(f"{key('climb.originDomainTarget')}: confirms where {key('cdn.originDomain')} points, which "
                        f"CloudFront uses only with {key('app.certificateArn')}; allowed here: unset")
    if climb.app_database_route == "direct" and cfg.phase == 6:
        problems.append(f"{key('climb.appDatabaseRoute')}: phase 6 pods reach RDS through the PgBouncer Deployment; "
                        "allowed: pgbouncer (unset)")

    from .userdata import app_env_problems  # renders the hosts' user data: app.env must fit EC2's 16 KB

    problems.extend(app_env_problems(cfg))
    return problems


def unused_keys(raw: Mapping[str, Any], phase: int) -> list[str]:
    """Keys the stack sets that this phase does not read (reported, not rejected)."""
    uses = PHASES[phase].uses if phase in PHASES else frozenset()
    out: list[str] = []
    for section, value in raw.items():
        if section in SECTIONS and section not in uses:
            if isinstance(value, dict):
                out.extend(key(f"{section}.{k}") for k in value)
            else:
                out.append(key(section))
    return sorted(out)


def _redis_version_default(merged: dict[str, Any]) -> dict[str, Any]:
    """`redis.engineVersion` unset: the newest version of `redis.engine` (Redis OSS 7.1, the preset's
    value before the engine key existed), so `redis.engine: valkey` alone is a complete switch."""
    redis = merged.get("redis")
    if not isinstance(redis, dict) or "engineVersion" in redis or "engine_version" in redis:
        return merged
    versions = aws_facts.ELASTICACHE_ENGINE_VERSIONS.get(str(redis.get("engine", "redis")))
    return {**merged, "redis": {**redis, "engineVersion": versions[-1]}} if versions else merged


def load(raw: Mapping[str, Any], region: str | None) -> StackConfig:
    """Validate a stack's `scaleladder:*` values (keys without the namespace).

    Raises ConfigError listing every problem; nothing else escapes for bad input.
    """
    phase = raw.get("phase")
    if isinstance(phase, bool) or not isinstance(phase, int) or phase not in PHASES:
        raise ConfigError([f"{key('phase')}: required, an integer 1..6 (got {phase!r})"])
    if "region" in raw:
        raise ConfigError([f"{key('region')}: unknown key; the region is aws:region"])
    merged = _redis_version_default(deep_merge(phase_defaults(phase), dict(raw)))
    merged["region"] = region if region is not None else ""
    if region is None:
        raise ConfigError(["aws:region: required; allowed: " + ", ".join(sorted(catalog().regions))])
    try:
        cfg = StackConfig.model_validate(merged)
    except ValidationError as err:
        raise ConfigError([_describe(dict(e)) for e in err.errors()]) from None
    if cfg.phase == 2 and cfg.climb.keep_single_host:  # before the checks: the kept VM is one of ec2_hosts
        tier = dict(raw.get("appTier") or raw.get("app_tier") or {})
        cfg._phase1_instance_type = str(tier.get("instanceType") or tier.get("instance_type")
                                        or phase_defaults(1)["appTier"]["instanceType"])
    eks = raw.get("eks")
    cfg._node_type_explicit = isinstance(eks, Mapping) and any(
        eks.get(k) not in (None, "") for k in ("nodeInstanceType", "node_instance_type"))
    problems = _cross_checks(cfg)
    if problems:
        raise ConfigError(problems)
    if cfg.phase == 6 and cfg.climb.keep_ec2_tier:
        climb = {k: v for k, v in dict(raw.get("climb") or {}).items() if k not in ("keepEc2Tier", "keep_ec2_tier")}
        cfg._ec2_tier = load({**raw, "phase": 5, "climb": climb}, region)
    return cfg


def from_cli_values(values: Mapping[str, str], secret_keys: Iterable[str], root: Any = None) -> StackConfig:
    """Validate config as the Pulumi CLI hands it to a program (text by full key, objects as JSON):
    the one reading both engines share (`ladder.stackconfig.program_values`)."""
    from . import stackconfig

    root = root or stackconfig.REPO
    stackconfig.refuse_secret_keys(secret_keys, NAMESPACE)
    return load(stackconfig.program_values(values, NAMESPACE, root), values.get("aws:region"))


def from_pulumi() -> StackConfig:
    """Read and validate the running stack's config (the real engine's entry point)."""
    from pulumi.runtime.config import _SECRET_KEYS, CONFIG, get_config_env, get_config_secret_keys_env

    values = {**get_config_env(), **CONFIG.get()}
    secret_keys = set(_SECRET_KEYS.get()) | set(get_config_secret_keys_env())
    return from_cli_values(values, secret_keys)
