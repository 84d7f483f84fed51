"""Cache: the ElastiCache Redis replication group BullMQ and the app share.

One group, logical name `redis`, from phase 1 on: AWS moves a group from
cluster mode disabled to `compatible` to `enabled` in place, once, never back,
so every phase reaches the next without a new group. The auth token lives in
Secrets Manager; `maxmemory-policy noeviction` (BullMQ's requirement) is set in
both parameter groups.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from ladder import redis_settings
from ladder.config import ConfigError

from .base import Tags, Tier, tagged

REDIS_PORT = 6379
ClusterMode = Literal["disabled", "compatible", "enabled"]


@dataclass(frozen=True)
class CacheArgs:
    subnet_ids: Sequence[pulumi.Input[str]]
    security_group_id: pulumi.Input[str]
    node_type: str
    engine_version: str
    cluster_mode: ClusterMode
    previous_cluster_mode: pulumi.Input[str | None]  # last deployed mode (a stack output), None when new
    shards: int
    replicas_per_shard: int
    tags: Tags
    previous_engine_version: pulumi.Input[str | None] = None  # last deployed engine version, None when new


class Cache(Tier):
    TOKEN = "scaleladder:data:Cache"

    def __init__(self, name: str, args: CacheArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(name, opts)
        family = redis_settings.parameter_family(args.engine_version)
        # Both groups exist in every phase so the climb only switches the group's reference.
        param_groups = {
            mode: aws.elasticache.ParameterGroup(
                f"{name}-params-{suffix}", family=family,
                description=f"scaleladder: BullMQ-safe settings, cluster {suffix}",
                parameters=[aws.elasticache.ParameterGroupParameterArgs(name=k, value=v)
                            for k, v in redis_settings.parameters(mode).items() if v != ""],
                tags=args.tags, opts=self.child())
            for mode, suffix in (("disabled", "off"), ("enabled", "on"))
        }
        subnets = aws.elasticache.SubnetGroup(f"{name}-subnets", subnet_ids=list(args.subnet_ids),
                                              description="scaleladder Redis, private subnets", tags=args.tags,
                                              opts=self.child())
        password = random.RandomPassword(f"{name}-auth-token", length=48, special=False, opts=self.child())
        self.auth_token = pulumi.Output.secret(password.result)  # type: ignore[arg-type,var-annotated]  # pulumi stubs: Input/Output types the SDK accepts at runtime
        self.secret = aws.secretsmanager.Secret(f"{name}-auth-token", description="Redis AUTH token (scaleladder)",
                                                recovery_window_in_days=7, tags=args.tags, opts=self.child())
        aws.secretsmanager.SecretVersion(f"{name}-auth-token", secret_id=self.secret.id,
                                         secret_string=self.auth_token, opts=self.child())
        slow_log = aws.cloudwatch.LogGroup(f"{name}-slow-log", retention_in_days=30, tags=args.tags,
                                           opts=self.child())

        checked_mode = pulumi.Output.from_input(args.previous_cluster_mode).apply(
            lambda previous: _refuse_backwards(previous, args.cluster_mode, args.shards))
        failover = args.replicas_per_shard > 0
        self.group = aws.elasticache.ReplicationGroup(  # type: ignore[call-overload]  # pulumi stubs: Input/Output types the SDK accepts at runtime
            name,
            description="scaleladder Redis (app cache and BullMQ)",
            engine="redis",
            engine_version=pulumi.Output.from_input(args.previous_engine_version).apply(
                lambda previous: _refuse_downgrade(previous, args.engine_version)),
            node_type=args.node_type,
            port=REDIS_PORT,
            cluster_mode=checked_mode,
            parameter_group_name=param_groups["disabled" if args.cluster_mode == "disabled" else "enabled"].name,
            automatic_failover_enabled=failover,
            multi_az_enabled=failover,
            at_rest_encryption_enabled=True,
            transit_encryption_enabled=True,
            auth_token=self.auth_token,
            auth_token_update_strategy="ROTATE",
            subnet_group_name=subnets.name,
            security_group_ids=[args.security_group_id],
            snapshot_retention_limit=7,
            snapshot_window="02:00-03:00",
            maintenance_window="sun:05:30-sun:06:30",
            apply_immediately=True,
            log_delivery_configurations=[aws.elasticache.ReplicationGroupLogDeliveryConfigurationArgs(
                destination=slow_log.name, destination_type="cloudwatch-logs", log_format="json",
                log_type="slow-log")],
            tags=tagged(args.tags, role="redis"),
            opts=self.child(protect=True, retain_on_delete=True),
            **_sizing(args),
        )
        # Cluster clients use the configuration endpoint; the others the primary endpoint.
        self.endpoint = (self.group.configuration_endpoint_address if args.cluster_mode == "enabled"
                         else self.group.primary_endpoint_address)
        self.port = REDIS_PORT
        self.cluster_mode = checked_mode
        self.engine_version = args.engine_version
        self.register_outputs({"redisEndpoint": self.endpoint, "redisSecretArn": self.secret.arn,
                               "redisClusterMode": checked_mode})


def _sizing(args: CacheArgs) -> dict[str, int]:
    """Cluster mode disabled/compatible counts nodes; enabled counts shards and replicas per shard."""
    if args.cluster_mode == "enabled":
        return {"num_node_groups": args.shards, "replicas_per_node_group": args.replicas_per_shard}
    return {"num_cache_clusters": 1 + args.replicas_per_shard}


def _refuse_downgrade(previous: str | None, wanted: str) -> str:
    """ElastiCache cannot downgrade an engine: the provider plans a replacement of the group
    (terraform-provider-aws internal/service/elasticache/replication_group.go, CustomizeDiff
    `engineVersionForceNewOnDowngrade`), which would lose every queued job."""
    def parse(v: str) -> tuple[int, ...]:
        return tuple(int(x) for x in v.split("."))
    if previous and parse(wanted) < parse(str(previous)):
        raise ConfigError([
            f"scaleladder:redis.engineVersion: the Redis group runs {previous} and ElastiCache cannot downgrade "
            f"in place (the group would be replaced and its data lost; got {wanted}); allowed: {previous} or newer"])
    return wanted


def _refuse_backwards(previous: str | None, wanted: str, shards: int = 1) -> str:
    problem = redis_settings.cluster_mode_step_problem(previous, wanted)
    if problem:
        raise ConfigError([problem])
    # A compatible group has one shard and AWS allows no scaling while compatible. The provider
    # runs a shard-count change (ModifyReplicationGroupShardConfiguration) *before* the
    # ModifyReplicationGroup that sets cluster mode, so "enabled + N shards" in the same update
    # reshards a group that is still compatible, and AWS rejects it. Enable first, then reshard.
    if previous == "compatible" and wanted == "enabled" and shards != 1:
        raise ConfigError([
            f"scaleladder:redis.shards: the Redis group is in cluster mode 'compatible' (one shard) and AWS allows "
            f"no resharding until it is 'enabled'; set redis.shards: 1 for the `pulumi up` that sets "
            f"redis.clusterMode: enabled, then raise it (got {shards}); allowed: 1"])
    return wanted
