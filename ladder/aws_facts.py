"""AWS facts the config model and the review tooling rest on, each with where it
comes from. Prices live in `catalog/prices.yaml`; this file holds limits and
behaviours, not money.
"""

from __future__ import annotations

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

# EKS versions in standard or extended support at the catalog date.
EKS_VERSIONS = ("1.30", "1.31", "1.32", "1.33", "1.34")

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
        }
    ),
    "aws:elasticache/replicationGroup:ReplicationGroup": frozenset(
        {
            "replicationGroupId",
            "engine",
            "port",
            "subnetGroupName",
            "atRestEncryptionEnabled",
            "kmsKeyId",
            "preferredCacheClusterAzs",
            "snapshotArns",
            "snapshotName",
            "networkType",
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
