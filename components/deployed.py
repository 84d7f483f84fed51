"""What is deployed: the stateful resources as AWS reports them, for the in-place rules
(`ladder/inplace.py`) the data tier checks its config against.

The stack's own last outputs (`previous_outputs()`) name the Redis group and the RDS
instance; when they do, the program reads them from AWS (`get_replication_group`,
`get_cluster` for the engine version, `get_instance`), so an `up` that failed after AWS
changed the group is judged by what AWS has, not by outputs written before (review finding
23). Without those outputs (first `up`, or a stack deployed before they existed) the last
outputs' values stand in; with no outputs at all nothing is deployed and every value is new.
Each state is a dict in the resource's Pulumi input names (`clusterMode`, `numNodeGroups`,
`allocatedStorage` ...): the same shape `ladder diff` hands the rules from a plan.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws

REDIS_GROUP_ID_OUTPUT = "redisGroupId"
DB_IDENTIFIER_OUTPUT = "dbIdentifier"
# The primary's /aws/rds/instance/<id>/<log> groups the program manages (components/signals.py).
DB_LOG_GROUPS_OUTPUT = "dbLogGroups"


def previous_outputs() -> pulumi.StackReference:
    """This stack's own last outputs: how the program knows what is already deployed."""
    return pulumi.StackReference(f"{pulumi.get_organization()}/{pulumi.get_project()}/{pulumi.get_stack()}")


def _known(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None and v != ""}


def deployed_redis(previous: pulumi.StackReference) -> pulumi.Output[dict[str, Any]]:
    """The Redis group's mode, engine, engine version, node type and shape: from AWS when the outputs
    name the group, else the last outputs' `redisClusterMode`/`redisEngine`/`redisEngineVersion`.
    A group deployed before `redisEngine` existed ran Redis OSS (the only engine the program set)."""
    def read(group_id: str | None, mode: str | None, version: str | None, engine: str | None) -> Any:
        fallback = _known({"clusterMode": mode, "engineVersion": version,
                           "engine": engine or ("redis" if group_id or mode or version else None)})
        if not group_id:
            return fallback
        group = aws.elasticache.get_replication_group_output(replication_group_id=group_id)

        def live(g: Any) -> Any:
            state = _known({"clusterMode": g.cluster_mode, "nodeType": g.node_type,
                            "automaticFailoverEnabled": g.automatic_failover_enabled})
            if g.cluster_mode == "enabled":
                state.update(numNodeGroups=g.num_node_groups, replicasPerNodeGroup=g.replicas_per_node_group)
            else:
                state["numCacheClusters"] = g.num_cache_clusters
            merged = {**fallback, **state}
            if not g.member_clusters:
                return merged
            # The group reports no engine or engine version; its member clusters do (all run the same).
            member = aws.elasticache.get_cluster_output(cluster_id=sorted(g.member_clusters)[0])
            return member.apply(lambda c: {**merged, **_known({"engineVersion": c.engine_version,
                                                                "engine": c.engine})})

        return group.apply(live)

    return pulumi.Output.all(previous.get_output(REDIS_GROUP_ID_OUTPUT), previous.get_output("redisClusterMode"),
                             previous.get_output("redisEngineVersion"),
                             previous.get_output("redisEngine")).apply(lambda a: read(*a))


def deployed_database(previous: pulumi.StackReference) -> pulumi.Output[dict[str, Any]]:
    """The RDS primary's engine version and storage: the engine version from AWS when the outputs
    name the instance (auto minor upgrades move it); the storage from the last configured size
    `dbStorageGb` (autoscaling grows the disk past it, which is no shrink), else from AWS."""
    def read(identifier: str | None, storage: int | None, engine: str | None) -> Any:
        fallback = _known({"allocatedStorage": storage, "engineVersion": engine})
        if not identifier:
            return fallback
        instance = aws.rds.get_instance_output(db_instance_identifier=identifier)
        return instance.apply(lambda i: {
            **_known({"allocatedStorage": i.allocated_storage, "storageEncrypted": i.storage_encrypted}),
            **fallback, **_known({"engineVersion": i.engine_version})})

    return pulumi.Output.all(previous.get_output(DB_IDENTIFIER_OUTPUT), previous.get_output("dbStorageGb"),
                             previous.get_output("dbEngineVersion")).apply(lambda a: read(*a))
