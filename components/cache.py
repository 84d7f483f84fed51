"""Cache: the ElastiCache replication group (Redis OSS or Valkey) BullMQ and the app share.

One group, logical name `redis`, from phase 1 on: AWS moves a group from
cluster mode disabled to `compatible` to `enabled` in place, once, never back,
so every phase reaches the next without a new group. What AWS cannot do in place
(ladder/inplace.py) is refused against the deployed group before it is registered. The auth token lives in
Secrets Manager; `maxmemory-policy noeviction` (BullMQ's requirement) is set in
both parameter groups. `redis.engine: valkey` switches a deployed Redis OSS group to Valkey in
place (engine, version and a Valkey-family parameter group in one ModifyReplicationGroup); the
way back is refused (ladder/inplace.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from ladder import inplace, redis_settings
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
    shards: int
    replicas_per_shard: int
    tags: Tags
    # The deployed group in its input names (components/deployed.py: from AWS, else the last
    # outputs); empty when nothing is deployed. Checked with ladder/inplace.py before the group.
    deployed: pulumi.Input[dict[str, Any]] = field(default_factory=dict)
    engine: str = "redis"  # redis (Redis OSS) | valkey: config redis.engine
    accept_interruption: bool = False  # climb.acceptCacheInterruption: the single-node Valkey switch's outage


class Cache(Tier):
    TOKEN = "scaleladder:data:Cache"

    def __init__(self, name: str, args: CacheArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(name, opts)
        family = redis_settings.parameter_family(args.engine_version, args.engine)
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

        failover = args.replicas_per_shard > 0
        wanted = wanted_inputs(args)
        checked = pulumi.Output.from_input(args.deployed).apply(
            lambda deployed: _refuse(name, deployed, wanted, args.accept_interruption))
        checked_mode = checked.apply(lambda w: w["clusterMode"])
        self.group = aws.elasticache.ReplicationGroup(  # type: ignore[call-overload]  # pulumi stubs: Input/Output types the SDK accepts at runtime
            name,
            description="scaleladder Redis (app cache and BullMQ)",
            engine=checked.apply(lambda w: w["engine"]),
            engine_version=checked.apply(lambda w: w["engineVersion"]),
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
        # Cluster clients use the configuration endpoint, from `compatible` on: AWS's order for the
        # move (ElastiCache "Modifying cluster mode": in compatible mode "applications must be
        # reconfigured to start using ... cluster protocol and configuration endpoint", then set
        # enabled). A cluster-mode-disabled group has no configuration endpoint: the primary one.
        self.endpoint = (self.group.configuration_endpoint_address if args.cluster_mode != "disabled"
                         else self.group.primary_endpoint_address)
        self.port = REDIS_PORT
        self.cluster_mode = checked_mode
        self.engine_version = args.engine_version
        self.engine = args.engine
        self.register_outputs({"redisEndpoint": self.endpoint, "redisSecretArn": self.secret.arn,
                               "redisClusterMode": checked_mode})


def _sizing(args: CacheArgs) -> dict[str, int]:
    """Cluster mode disabled/compatible counts nodes; enabled counts shards and replicas per shard."""
    if args.cluster_mode == "enabled":
        return {"num_node_groups": args.shards, "replicas_per_node_group": args.replicas_per_shard}
    return {"num_cache_clusters": 1 + args.replicas_per_shard}


def wanted_inputs(args: CacheArgs) -> dict[str, Any]:
    """The group's inputs the in-place rules look at, as the program will set them."""
    return {"clusterMode": args.cluster_mode, "engineVersion": args.engine_version, "nodeType": args.node_type,
            "automaticFailoverEnabled": args.replicas_per_shard > 0, "engine": args.engine,
            "transitEncryptionEnabled": True, "atRestEncryptionEnabled": True, **_sizing_inputs(args)}


def _sizing_inputs(args: CacheArgs) -> dict[str, int]:
    return {_CAMEL[k]: v for k, v in _sizing(args).items()}


_CAMEL = {"num_node_groups": "numNodeGroups", "replicas_per_node_group": "replicasPerNodeGroup",
          "num_cache_clusters": "numCacheClusters"}


def _refuse(name: str, deployed: dict[str, Any] | None, wanted: dict[str, Any],
            accept_interruption: bool = False) -> dict[str, Any]:
    """`wanted` when AWS can apply it to the deployed group in place; else ConfigError naming each
    config key (ladder/inplace.py: cluster mode only forward, one step, alone; no downgrade ...)."""
    found = inplace.refusals(inplace.REPLICATION_GROUP, name, deployed or {}, wanted, accept_interruption)
    if found:
        raise ConfigError([r.message() for r in found])
    return wanted
