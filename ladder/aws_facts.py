"""AWS facts the config model and the review tooling rest on, each with where it
comes from. Prices live in `catalog/prices.yaml`; this file holds limits and
behaviours, not money.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

# RDS for PostgreSQL: default max_connections = LEAST(DBInstanceClassMemory/9531392, 5000)
# (RDS User Guide, "Maximum number of database connections"). DBInstanceClassMemory is the
# class memory less what the OS and RDS processes reserve; we take 90 % of the nominal GiB.
RDS_CLASS_MEMORY_GIB: dict[str, float] = {
    "db.t4g.micro": 1,
    "db.t4g.small": 2,
    "db.t4g.medium": 4,
    "db.t4g.large": 8,
    "db.m6g.large": 8,
    "db.m6g.xlarge": 16,
    "db.m6g.2xlarge": 32,
    "db.r6g.large": 16,
    "db.r6g.xlarge": 32,
    "db.r6g.2xlarge": 64,
}


def rds_max_connections(instance_class: str) -> int:
    memory_bytes = RDS_CLASS_MEMORY_GIB[instance_class] * 0.9 * 1024**3
    return int(min(memory_bytes // 9531392, 5000))


# RDS: up to 15 read replicas per PostgreSQL source (RDS User Guide, "Working with read replicas").
RDS_MAX_READ_REPLICAS = 15
# RDS gp3 storage: 20 GiB to 65,536 GiB for PostgreSQL.
RDS_MIN_STORAGE_GB, RDS_MAX_STORAGE_GB = 20, 65536
# ElastiCache (Redis OSS): 0..5 replicas per shard; cluster mode enabled up to 500 shards.
ELASTICACHE_MAX_REPLICAS_PER_SHARD = 5
ELASTICACHE_MAX_SHARDS = 500
# Nodes per cluster (shards x (1 + replicas)): 500 for Redis OSS 5.0.6+ / Valkey 7.2+, the
# ceiling no quota request lifts (ElastiCache User Guide, "Scaling clusters in Redis OSS
# (cluster mode enabled)" / "Quotas for ElastiCache": default 90, up to 500 per cluster).
ELASTICACHE_MAX_NODES = 500


@dataclass(frozen=True)
class EksRelease:
    """One Kubernetes minor on EKS: when it came out and when standard support ends.

    Under the cluster's STANDARD upgrade policy EKS upgrades the control plane itself at
    `end_of_standard` (then config, autoscaler image and charts no longer match), so a
    version is allowed only while it is in standard support."""

    released: date
    end_of_standard: date
    end_of_extended: date


# EKS Kubernetes release calendar (EKS User Guide, "Understand the Kubernetes version
# lifecycle on EKS", table "Amazon EKS Kubernetes release calendar"), as recorded by
# endoflife-date/endoflife.date products/amazon-eks.md (snapshot of 2026-08-22): standard
# support is 14 months from the EKS release, extended support 12 more.
EKS_CALENDAR: dict[str, EksRelease] = {
    "1.30": EksRelease(date(2024, 5, 23), date(2025, 7, 23), date(2026, 7, 23)),
    "1.31": EksRelease(date(2024, 9, 26), date(2025, 11, 26), date(2026, 11, 26)),
    "1.32": EksRelease(date(2025, 1, 25), date(2026, 3, 23), date(2027, 3, 23)),
    "1.33": EksRelease(date(2025, 5, 28), date(2026, 7, 29), date(2027, 7, 29)),
    "1.34": EksRelease(date(2025, 10, 6), date(2026, 12, 2), date(2027, 12, 2)),
    "1.35": EksRelease(date(2026, 1, 28), date(2027, 3, 27), date(2028, 3, 27)),
    "1.36": EksRelease(date(2026, 6, 2), date(2027, 8, 2), date(2028, 8, 2)),
}


@dataclass(frozen=True)
class ClusterServices:
    """The cluster services pinned for one Kubernetes minor (each must support that minor)."""

    autoscaler_chart: str
    """kubernetes/autoscaler chart `cluster-autoscaler`: its ClusterRole must cover what that
    autoscaler minor watches (it waits for every informer cache at start)."""
    autoscaler_image: str
    """registry.k8s.io/autoscaling/cluster-autoscaler tag: the newest patch of the cluster's minor
    (the autoscaler's own rule: its minor = the cluster's minor)."""
    keda_chart: str
    """kedacore/charts `keda`: a KEDA release tested on this minor."""
    external_secrets_chart: str
    """external-secrets chart: an ESO release tested on this minor."""


# Sources, per column:
# - autoscaler chart: kubernetes/autoscaler cluster-autoscaler/README.md "Releases" (1.34 needs
#   chart >= 9.51.0) and the chart's Chart.yaml at each tag `cluster-autoscaler-chart-X`:
#   9.53.0 ships appVersion 1.34.2 (the last 1.34 chart); 9.59.0 (2026-07-21) ships 1.35.0.
# - autoscaler image: the newest `cluster-autoscaler-1.MINOR.PATCH` release tag as of the
#   snapshot (2026-08-22): 1.34.5 and 1.35.2, both of 2026-07-22.
# - KEDA: keda.sh "Kubernetes Compatibility" (keda-docs content/docs/2.20/operate/cluster.md):
#   v2.20 tested on 1.33-1.35, v2.19 on 1.32-1.34; chart 2.20.2 (kedacore/charts tag v2.20.2).
# - External Secrets Operator: docs/introduction/stability-support.md: 2.6 on 1.34-1.35,
#   2.8 on 1.35-1.36; charts 2.6.0 and 2.8.0 (deploy/charts/external-secrets/Chart.yaml,
#   "release helm chart" commits of 2026-06-07 and 2026-07-18).
EKS_CLUSTER_SERVICES: dict[str, ClusterServices] = {
    "1.34": ClusterServices(autoscaler_chart="9.53.0", autoscaler_image="v1.34.5", keda_chart="2.20.2",
                            external_secrets_chart="2.6.0"),
    "1.35": ClusterServices(autoscaler_chart="9.59.0", autoscaler_image="v1.35.2", keda_chart="2.20.2",
                            external_secrets_chart="2.8.0"),
    # 1.36 is in standard support, but no KEDA release is tested on it yet (2.20 stops at 1.35)
    # and no autoscaler chart ships a 1.36 appVersion: it is left out until both exist.
}


def eks_versions_on(day: date) -> tuple[str, ...]:
    """Versions a stack may run on `day`: in EKS standard support and with cluster services pinned."""
    return tuple(v for v, r in EKS_CALENDAR.items()
                 if r.released <= day < r.end_of_standard and v in EKS_CLUSTER_SERVICES)


def _catalog_date() -> date:
    """The price catalog's date (the newest `retrieved` of its regions): the day the facts hold for."""
    from .prices import catalog

    return max(date.fromisoformat(str(meta["retrieved"])) for meta in catalog().regions.values())


EKS_FACTS_DATE = _catalog_date()
EKS_VERSIONS = eks_versions_on(EKS_FACTS_DATE)
"""Allowed `eks.version` values, newest last (the phase catalog's default is the newest)."""

# Regions the price catalog covers are the regions a stack may use; see ladder.prices.

# Stateful resource types: their deletion or replacement loses data. For each, the inputs
# whose change makes the provider replace the resource ("Changing this forces a new
# resource" in the AWS provider's resource docs).
STATEFUL_REPLACE_FORCING: dict[str, frozenset[str]] = {
    "aws:rds/instance:Instance": frozenset(
        {
            "identifier",
            "identifierPrefix",
            "engine",
            "username",
            "dbName",
            "storageEncrypted",
            "kmsKeyId",
            "characterSetName",
            "availabilityZone",
            "snapshotIdentifier",
            "replicateSourceDb",
            "timezone",
            # also ForceNew in internal/service/rds/instance.go:
            "ncharCharacterSetName",
            "customIamInstanceProfile",
            "restoreToPointInTime",
        }
    ),
    "aws:elasticache/replicationGroup:ReplicationGroup": frozenset(
        {
            "replicationGroupId",
            "port",
            "subnetGroupName",
            "atRestEncryptionEnabled",
            "kmsKeyId",
            "preferredCacheClusterAzs",
            "snapshotArns",
            "snapshotName",
            "networkType",
            # Also ForceNew in internal/service/elasticache/replication_group.go (review finding 22):
            "dataTieringEnabled",
            "securityGroupNames",
            "globalReplicationGroupId",
            # Forcing only under a condition, decided in ladder/inplace.py (redis_replace_inputs):
            # `engine` (any change but redis -> valkey), `engineVersion` (a downgrade),
            # `transitEncryptionEnabled` (below 7.0.5), `nodeGroupConfiguration` (set and changed).
        }
    ),
    "aws:s3/bucket:Bucket": frozenset({"bucket", "bucketPrefix", "objectLockEnabled"}),
    "aws:s3/bucketV2:BucketV2": frozenset({"bucket", "bucketPrefix", "objectLockEnabled"}),
}
STATEFUL_TYPES = frozenset(STATEFUL_REPLACE_FORCING)

# CloudFront managed policies: fixed ids, the same in every account (CloudFront Developer
# Guide, "Use managed cache policies" / "Use managed origin request policies" / "Use managed
# response headers policies"). The program looks them up by name; the mocks answer with these.
CLOUDFRONT_MANAGED_POLICIES: dict[str, str] = {
    "Managed-CachingOptimized": "658327ea-f89d-4fab-a63d-7e88639e58f6",
    "Managed-CachingDisabled": "4135ea2d-6df8-44a3-9df3-4b5a84be39ad",
    "Managed-AllViewer": "216adef6-5c7f-47e4-b989-5492eafa07d3",
    "Managed-AllViewerExceptHostHeader": "b689b0a8-53d0-40ab-baf2-68738e2966ac",
    "Managed-SecurityHeadersPolicy": "67f7725c-6f97-4210-82d7-5512b31e9d03",
}
# The awslogsdelivery account CloudFront standard logging (legacy) writes with; the log
# bucket's ACL grants it FULL_CONTROL (CloudFront Developer Guide, "Permissions required to
# configure standard logging"). The program reads it through getLogDeliveryCanonicalUserId.
CLOUDFRONT_LOG_DELIVERY_CANONICAL_ID = "c4c1ede66af53448b93c283ce9448c4ba468c9432aa01d700d3878632f77d2d0"

# --- AWS WAF (edge rate limiting, ladder/edge.py) -------------------------------------
# Rate-based rule limit: terraform-provider-aws internal/service/wafv2/schemas.go
# rateBasedStatementSchema: `limit` validation.IntBetween(10, 2000000000) and
# `evaluation_window_sec` IntInSlice(60, 120, 300, 600). A 60 s window makes the limit
# "requests per minute per client".
WAF_RATE_LIMIT_MIN = 10
WAF_RATE_LIMIT_MAX = 2_000_000_000
WAF_EVALUATION_WINDOWS = (60, 120, 300, 600)
# The sources ask for about 100 requests per minute per client for the API.
EDGE_RATE_LIMIT_DEFAULT = 100
# AWS managed rule groups we offer, with their web ACL capacity units (AWS WAF Developer
# Guide, "AWS Managed Rules rule groups list": baseline, IP reputation and use-case groups).
WAF_MANAGED_RULE_GROUP_WCU: dict[str, int] = {
    "AWSManagedRulesCommonRuleSet": 700,
    "AWSManagedRulesKnownBadInputsRuleSet": 200,
    "AWSManagedRulesAmazonIpReputationList": 25,
    "AWSManagedRulesAnonymousIpList": 50,
    "AWSManagedRulesSQLiRuleSet": 200,
    "AWSManagedRulesLinuxRuleSet": 200,
}
WAF_MANAGED_RULE_GROUPS = tuple(WAF_MANAGED_RULE_GROUP_WCU)
WAF_DEFAULT_RULE_GROUPS = ("AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet",
                           "AWSManagedRulesAmazonIpReputationList")
# A web ACL may use up to 5,000 WCUs; the base request price covers 1,500 (AWS WAF pricing:
# "for inspection up to 1500 WCUs"; Developer Guide, "Web ACL capacity units").
WAF_MAX_WCU = 5000
WAF_PRICED_WCU = 1500

# --- EC2 sizes (capacity model, ladder/capacity.py) -------------------------------------
# vCPUs per instance type (EC2 User Guide, "Amazon EC2 instance types": general purpose
# T3 / M6i, compute optimized C6i, memory optimized R6i specifications). Every EC2 type the
# price catalog lists must be here (tests/unit/test_capacity.py checks it).
EC2_VCPUS: dict[str, int] = {
    "t3.micro": 2, "t3.small": 2, "t3.medium": 2, "t3.large": 2, "t3.xlarge": 4,
    "m6i.large": 2, "m6i.xlarge": 4, "m6i.2xlarge": 8,
    "c6i.large": 2, "c6i.xlarge": 4, "c6i.2xlarge": 8,
    "r6i.large": 2,
}
# Pods per EKS node with the VPC CNI without prefix delegation: ENIs x (IPv4 per ENI - 1) + 2
# (awslabs/amazon-eks-ami templates/shared/runtime/eni-max-pods.txt).
EKS_MAX_PODS: dict[str, int] = {
    "t3.micro": 4, "t3.small": 11, "t3.medium": 17, "t3.large": 35, "t3.xlarge": 58,
    "m6i.large": 29, "m6i.xlarge": 58, "m6i.2xlarge": 58,
    "c6i.large": 29, "c6i.xlarge": 58, "c6i.2xlarge": 58,
    "r6i.large": 29,
}


def eks_kube_reserved_cpu(vcpus: int) -> float:
    """CPU the EKS AMI reserves for the kubelet and runtime (kubeReserved), in cores: 6 % of
    the first core, 1 % of the second, 0.5 % of cores 3-4, 0.25 % of every core above 4
    (awslabs/amazon-eks-ami: the kubelet config's CPU reservation, the table GKE publishes)."""
    shares = [0.06, 0.01, 0.005, 0.005]
    return sum(shares[i] if i < len(shares) else 0.0025 for i in range(vcpus))

# CloudWatch Logs PutRetentionPolicy `retentionInDays`: "Possible values are: 1, 3, 5, 7, 14,
# 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, and 3653"
# (CloudWatch Logs API Reference); the provider validates the same list (aws_cloudwatch_log_group
# retention_in_days, internal/service/logs/group.go validation.IntInSlice, plus 0 = never expire).
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
                      3288, 3653)
