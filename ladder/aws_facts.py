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
