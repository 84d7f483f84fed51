"""ladder/inplace.py: each rule on a change AWS refuses and on the nearest change it accepts.

Inputs are Pulumi input names, as the program's deployed state and `ladder diff`'s plans
hand them over. No plans here: the rules are pure functions.
"""

from __future__ import annotations

import pytest

from ladder import inplace
from ladder.inplace import RDS_INSTANCE, REPLICATION_GROUP, refusals

CMD = {"clusterMode": "disabled", "numCacheClusters": 2, "nodeType": "cache.m6g.large", "engineVersion": "7.1",
       "automaticFailoverEnabled": True}
COMPATIBLE = {**CMD, "clusterMode": "compatible"}
ENABLED = {"clusterMode": "enabled", "numNodeGroups": 1, "replicasPerNodeGroup": 1, "nodeType": "cache.m6g.large",
           "engineVersion": "7.1", "automaticFailoverEnabled": True}


def redis(before: dict, after: dict) -> list[tuple[str, str]]:
    return [(r.input, r.source) for r in refusals(REPLICATION_GROUP, "redis", before, after)]


def inputs(before: dict, after: dict, type_: str = REPLICATION_GROUP) -> list[str]:
    return [r.input for r in refusals(type_, "x", before, after)]


@pytest.mark.parametrize("old,new", [("enabled", "disabled"), ("enabled", "compatible"), ("compatible", "disabled")])
def test_cluster_mode_never_goes_back(old, new):
    before = ENABLED if old == "enabled" else COMPATIBLE
    after = {**(CMD if new != "enabled" else ENABLED), "clusterMode": new}
    found = refusals(REPLICATION_GROUP, "redis", before, after)
    assert found and found[0].input == "clusterMode" and "cannot revert" in found[0].rule
    assert found[0].source == inplace.SRC_CLUSTER_MODE and found[0].key == "scaleladder:redis.clusterMode"
    assert found[0].allowed.startswith(old)


def test_cluster_mode_cannot_skip_compatible():
    found = refusals(REPLICATION_GROUP, "redis", CMD, {**ENABLED})
    assert [r.input for r in found] == ["clusterMode"] and "one step at a time" in found[0].rule


def test_each_forward_step_alone_is_accepted():
    assert refusals(REPLICATION_GROUP, "redis", CMD, COMPATIBLE) == []
    # compatible counts cache clusters, enabled counts node groups: 2 clusters = 1 shard x 1 replica, no change
    assert refusals(REPLICATION_GROUP, "redis", COMPATIBLE, ENABLED) == []
    assert refusals(REPLICATION_GROUP, "redis", ENABLED, {**ENABLED, "numNodeGroups": 3}) == []  # reshard once enabled


@pytest.mark.parametrize("change,field", [
    ({"numNodeGroups": 3}, "shards"),
    ({"replicasPerNodeGroup": 2}, "replicas"),
    ({"nodeType": "cache.r6g.large"}, "nodeType"),
    ({"engineVersion": "7.2"}, "engineVersion"),
])
def test_a_mode_change_with_anything_else_is_refused(change, field):
    found = refusals(REPLICATION_GROUP, "redis", COMPATIBLE, {**ENABLED, **change})
    assert [r.input for r in found] == [field] and found[0].source == inplace.SRC_COMPATIBLE_ONLY
    assert "changes cluster mode" in found[0].rule


def test_the_reshard_refusal_names_the_shards_key_and_one_shard():
    (found,) = refusals(REPLICATION_GROUP, "redis", {"clusterMode": "compatible"}, {**ENABLED, "numNodeGroups": 3})
    assert found.message().startswith("scaleladder:redis.shards:") and found.message().endswith("allowed: 1")


@pytest.mark.parametrize("change", [{"numCacheClusters": 3}, {"nodeType": "cache.r6g.large"}, {"engineVersion": "7.2"}])
def test_nothing_scales_while_compatible(change):
    found = refusals(REPLICATION_GROUP, "redis", COMPATIBLE, {**COMPATIBLE, **change})
    assert found and "compatible" in found[0].rule
    assert refusals(REPLICATION_GROUP, "redis", CMD, {**CMD, **change}) == []  # disabled: in place


def test_a_mode_change_needs_a_replica_with_failover_and_redis_7():
    lone = {**CMD, "numCacheClusters": 1, "automaticFailoverEnabled": False}
    assert "automaticFailoverEnabled" in inputs(lone, {**lone, "clusterMode": "compatible"})
    old = {**CMD, "engineVersion": "6.2"}
    assert inputs(old, {**old, "clusterMode": "compatible"}) == ["engineVersion"]


def test_redis_engine_downgrade_is_refused_and_upgrades_are_not():
    assert redis(ENABLED, {**ENABLED, "engineVersion": "7.0"}) == [("engineVersion", inplace.SRC_REDIS_DOWNGRADE)]
    assert redis(ENABLED, {**ENABLED, "engineVersion": "7.2"}) == []
    assert redis({**ENABLED, "engineVersion": "7.1.0"}, ENABLED) == []  # the engine's actual version, same minor


def test_conditional_replacements_of_the_group():
    old = {"engineVersion": "7.0.4", "transitEncryptionEnabled": False, "engine": "redis"}
    assert "transitEncryptionEnabled" in inplace.conditional_replace_inputs(
        REPLICATION_GROUP, old, {**old, "transitEncryptionEnabled": True})
    new_engine = {**old, "engineVersion": "7.1"}
    assert "transitEncryptionEnabled" not in inplace.conditional_replace_inputs(
        REPLICATION_GROUP, new_engine, {**new_engine, "transitEncryptionEnabled": True})
    assert "engine" not in inplace.conditional_replace_inputs(REPLICATION_GROUP, old, {**old, "engine": "valkey"})
    assert "engine" in inplace.conditional_replace_inputs(REPLICATION_GROUP, {**old, "engine": "valkey"}, old)


@pytest.mark.parametrize("key,old,new", [("atRestEncryptionEnabled", True, False), ("kmsKeyId", "k1", "k2"),
                                         ("dataTieringEnabled", False, True), ("subnetGroupName", "a", "b")])
def test_replace_forcing_inputs_of_the_group(key, old, new):
    found = refusals(REPLICATION_GROUP, "redis", {**ENABLED, key: old}, {**ENABLED, key: new})
    assert [(r.input, r.before, r.after) for r in found] == [(key, old, new)]
    assert refusals(REPLICATION_GROUP, "redis", {**ENABLED, key: old}, {**ENABLED, key: "<unknown>"}) == []


def test_rds_storage_never_shrinks():
    (autoscaled,) = refusals(RDS_INSTANCE, "db", {"allocatedStorage": 200},
                             {"allocatedStorage": 100, "maxAllocatedStorage": 500})
    assert autoscaled.key == "scaleladder:database.storageGb" and "stays at 200 GB" in autoscaled.rule
    assert autoscaled.source == inplace.SRC_RDS_SHRINK and autoscaled.allowed == "200 or more"
    (fixed,) = refusals(RDS_INSTANCE, "db", {"allocatedStorage": 200}, {"allocatedStorage": 100})
    assert "ModifyDBInstance refuses" in fixed.rule
    assert refusals(RDS_INSTANCE, "db", {"allocatedStorage": 100}, {"allocatedStorage": 200}) == []


def test_rds_engine_downgrade():
    (found,) = refusals(RDS_INSTANCE, "db", {"engineVersion": "16.4"}, {"engineVersion": "15"})
    assert found.key == "scaleladder:database.engineVersion" and found.allowed == "16 or later"
    assert inputs({"engineVersion": "16.4"}, {"engineVersion": "16.2"}, RDS_INSTANCE) == ["engineVersion"]
    assert inputs({"engineVersion": "16.4"}, {"engineVersion": "16"}, RDS_INSTANCE) == []  # "16": newest 16.x
    assert inputs({"engineVersion": "16.4"}, {"engineVersion": "17"}, RDS_INSTANCE) == []


@pytest.mark.parametrize("key,old,new", [("storageEncrypted", True, False), ("kmsKeyId", "k1", "k2"),
                                         ("dbName", "app", "other"), ("username", "a", "b")])
def test_replace_forcing_inputs_of_the_primary(key, old, new):
    assert inputs({key: old}, {key: new}, RDS_INSTANCE) == [key]
    assert inputs({key: old}, {key: old}, RDS_INSTANCE) == []


def test_read_replicas_and_new_resources_are_never_refused():
    replica = {"replicateSourceDb": "db", "allocatedStorage": 200, "storageEncrypted": True}
    assert refusals(RDS_INSTANCE, "db-replica-0", replica, {**replica, "allocatedStorage": 100}) == []
    assert refusals(REPLICATION_GROUP, "redis", {}, {**CMD, "clusterMode": "enabled"}) == []


def test_plan_refusals_match_resources_by_urn():
    def plan(mode: str, urn: str = "urn:redis") -> dict:
        return {"resources": [{"urn": urn, "type": REPLICATION_GROUP, "name": "redis",
                               "inputs": {**ENABLED, "clusterMode": mode}}]}
    assert [r.input for r in inplace.plan_refusals(plan("enabled"), plan("disabled"))] == ["clusterMode"]
    assert inplace.plan_refusals(plan("enabled"), plan("disabled", "urn:other")) == []  # a new group


def test_node_group_configuration_replaces_the_group_only_when_set_and_changed():
    groups = [{"nodeGroupId": "0001", "replicaCount": 1}]
    assert "nodeGroupConfiguration" in inplace.conditional_replace_inputs(
        REPLICATION_GROUP, {"nodeGroupConfiguration": groups}, {"nodeGroupConfiguration": [{**groups[0], "slots": "0-5"}]})
    assert inplace.conditional_replace_inputs(REPLICATION_GROUP, {}, {}) == set()
    assert inplace.conditional_replace_inputs(REPLICATION_GROUP, {"nodeGroupConfiguration": groups},
                                              {"nodeGroupConfiguration": groups}) == set()


def test_a_suppressed_shrink_still_sends_the_maximum_which_must_exceed_the_kept_storage():
    found = refusals(RDS_INSTANCE, "db", {"allocatedStorage": 100}, {"allocatedStorage": 20, "maxAllocatedStorage": 100})
    assert [r.input for r in found] == ["allocatedStorage", "maxAllocatedStorage"]
    assert found[1].key == "scaleladder:database.maxStorageGb" and found[1].allowed == "110 or more"
    assert [r.input for r in refusals(RDS_INSTANCE, "db", {"allocatedStorage": 100},
                                      {"allocatedStorage": 20, "maxAllocatedStorage": 110})] == ["allocatedStorage"]
