"""Climbing and stepping back never replace or delete a stateful resource.

The same stack (same URNs) planned before and after `scaleladder:phase` changes, compared
by `ladder diff`'s own rules (`diff.compare(...).losses`: a stateful resource replaced, or
removed without retainOnDelete; `.refusals`: ladder/inplace.py). A change AWS cannot make
in place (reverting Redis cluster mode) is refused by the program against what is deployed.
"""

from __future__ import annotations

import pytest

from ladder import engine
from ladder.config import ConfigError
from ladder.diff import compare
from ladder.mocks import AwsMocks
from ladder.phases import deep_merge

from .plans import plan, stack_values


def losses(before: engine.Plan, after: engine.Plan) -> list[str]:
    """Stateful losses and changes AWS cannot apply in place, as `ladder diff` reports them."""
    d = compare(before.to_json(), after.to_json())
    return [f.reason for f in d.losses] + [r.line() for r in d.refusals]


PAIRS = [(n, n + 1) for n in range(1, 6)]
# What a higher rung requires that the lower one does not (phase 5: the certificate and origin
# name, CloudFront -> origin is HTTPS; phase 6: the EKS API ranges): a real climb sets them, as
# the higher preset does.
CLIMB_REQUIRES = ("scaleladder:app", "scaleladder:cdn", "scaleladder:eks")


def climbed(low: int, high: int, **overrides) -> dict:
    values = {**stack_values(f"phase{low}", **overrides), "scaleladder:phase": high}
    target = engine.read_stack(f"phase{high}")
    for key in CLIMB_REQUIRES:
        if key in target:
            values[key] = deep_merge(values.get(key) or {}, target[key])
    return values


@pytest.mark.parametrize("low,high", PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
def test_climbing_keeps_every_stateful_resource(low, high):
    before = plan(f"phase{low}")
    if high == 4:  # the Redis move needs its intermediate step (see README)
        values = climbed(low, high, redis={"clusterMode": "compatible"})
        values["scaleladder:redis"]["shards"] = 1
        after = engine.run(f"phase{low}", values=values, previous_outputs={"redisEngine": "valkey", "redisClusterMode": "disabled"})
    else:
        after = engine.run(f"phase{low}", values=climbed(low, high),
                           previous_outputs={"redisEngine": "valkey", "redisClusterMode": before.config.redis.cluster_mode})
    assert not losses(before, after)
    assert {r.urn for r in before.resources if r.options["protect"]} <= {r.urn for r in after.resources}


# Step backs as `ladder diff` sees them (the lower phase planned for the upper phase's stack;
# a deployed stack is refused by the program itself, tests below): exactly these changes are
# reported as AWS cannot apply them in place, never passed silently. From phase 5 down,
# Redis stays in cluster mode (the documented step back keeps it).
STEP_BACK_REFUSALS = {
    (1, 2): set(),
    (2, 3): {("db", "allocatedStorage"), ("db", "maxAllocatedStorage")},  # phase 2's maximum 100 = the 100 GB kept
    (3, 4): {("redis", "clusterMode"), ("db", "allocatedStorage")},
    (4, 5): set(),
    (5, 6): set(),
}


@pytest.mark.parametrize("low,high", PAIRS, ids=[f"{b}->{a}" for a, b in PAIRS])
def test_stepping_back_loses_nothing_and_reports_what_aws_cannot_do(low, high):
    upper = plan(f"phase{high}")
    keep = {"redis": {"clusterMode": "enabled", "shards": 3}} if high >= 5 else {}
    lower = plan(f"phase{high}", phase=low, **keep)
    d = compare(upper.to_json(), lower.to_json())
    assert not d.losses
    assert {(r.resource, r.input) for r in d.refusals} == STEP_BACK_REFUSALS[(low, high)]


def test_stepping_back_from_cluster_mode_is_refused_with_the_reason():
    with pytest.raises(ConfigError) as err:
        engine.run("phase3", previous_outputs={"redisEngine": "valkey", "redisClusterMode": "enabled"})
    assert "cannot revert cluster mode" in str(err.value) and "scaleladder:redis.clusterMode" in str(err.value)


def test_cluster_mode_cannot_skip_the_compatible_step():
    with pytest.raises(ConfigError) as err:
        engine.run("phase4", previous_outputs={"redisEngine": "valkey", "redisClusterMode": "disabled"})
    assert "compatible" in str(err.value)


def test_the_redis_climb_is_accepted_step_by_step_and_keeps_the_group():
    """disabled -> compatible (1 shard) -> enabled (still 1 shard) -> 3 shards: AWS allows no
    scaling while compatible, and the provider reshards before it changes cluster mode."""
    step1 = engine.run("phase4", values=stack_values("phase4", redis={"clusterMode": "compatible", "shards": 1}),
                       previous_outputs={"redisEngine": "valkey", "redisClusterMode": "disabled"})
    step2 = engine.run("phase4", values=stack_values("phase4", redis={"shards": 1}),
                       previous_outputs={"redisEngine": "valkey", "redisClusterMode": "compatible"})
    step3 = engine.run("phase4", previous_outputs={"redisEngine": "valkey", "redisClusterMode": "enabled"})
    g1, g2, g3 = (s.one("aws:elasticache/replicationGroup:ReplicationGroup") for s in (step1, step2, step3))
    assert g1.urn == g2.urn == g3.urn
    assert [g.inputs["clusterMode"] for g in (g1, g2, g3)] == ["compatible", "enabled", "enabled"]
    assert g2.inputs["numNodeGroups"] == 1 and g2.inputs["replicasPerNodeGroup"] == 1
    assert g3.inputs["numNodeGroups"] == 3 and g3.inputs["replicasPerNodeGroup"] == 1


def test_enabling_cluster_mode_and_resharding_in_one_update_is_refused():
    with pytest.raises(ConfigError) as err:
        engine.run("phase4", previous_outputs={"redisEngine": "valkey", "redisClusterMode": "compatible"})
    assert "scaleladder:redis.shards" in str(err.value) and "allowed: 1" in str(err.value)


@pytest.mark.parametrize("knob", [
    {"database": {"instanceClass": "db.r6g.2xlarge"}},
    {"database": {"storageGb": 400, "maxStorageGb": 2000}},
    {"database": {"replicas": 3}},
    {"database": {"multiAz": False}},
    {"redis": {"nodeType": "cache.r6g.xlarge"}},
    {"redis": {"replicasPerShard": 2}},
    {"appTier": {"instanceType": "m6i.xlarge"}},
    {"pgbouncer": {"instances": 3}},
], ids=lambda k: next(iter(k)) + "." + next(iter(next(iter(k.values())))))
def test_turning_a_sizing_knob_replaces_nothing_stateful(knob):
    before = plan("phase3")
    after = engine.run("phase3", values=stack_values("phase3", **knob),
                       previous_outputs={"redisEngine": "valkey", "redisClusterMode": "disabled"})
    assert not losses(before, after), knob


def test_shrinking_database_storage_is_refused_with_the_reason():
    """AWS never reduces allocated storage; the program says so instead of planning a failing update."""
    with pytest.raises(ConfigError) as err:
        engine.run("phase3", previous_outputs={"redisEngine": "valkey", "redisClusterMode": "disabled", "dbStorageGb": 400})
    assert "scaleladder:database.storageGb" in str(err.value) and "400" in str(err.value)
    grown = engine.run("phase3", previous_outputs={"redisEngine": "valkey", "redisClusterMode": "disabled", "dbStorageGb": 50})
    assert grown.one("aws:rds/instance:Instance", "db").inputs["allocatedStorage"] == 100


# ---------------------------------------------------------------------------
# The program reads what is deployed from AWS (components/deployed.py) and applies the same
# in-place rules as `ladder diff` (ladder/inplace.py).

REDIS = "aws:elasticache/replicationGroup:ReplicationGroup"
NAMED = {"redisGroupId": "redis-0a1b2c3", "dbIdentifier": "db-4d5e6f7"}  # outputs naming the deployed resources
# The previous outputs carry redisEngine valkey: the group a preset deployed (stacks/*.yaml set redis.engine
# valkey; outputs without it would be a pre-key Redis OSS group, whose switch no cluster-mode step may carry).


def test_deployed_cluster_mode_enabled_refuses_disabled_before_the_group_exists():
    """AWS reports the group `enabled` (the outputs agree); phase 3's config says disabled."""
    cli = engine.cli_config("phase3", engine.read_stack("phase3"))
    monitor = engine.RecordingMonitor(AwsMocks("us-east-1", {**NAMED, "redisEngine": "valkey", "redisClusterMode": "enabled"}))
    with pytest.raises(ConfigError) as err:
        engine.execute("phase3", cli, "us-east-1", monitor=monitor)
    assert "scaleladder:redis.clusterMode" in str(err.value) and "allowed: enabled" in str(err.value)
    assert not [r for r in monitor.recorded if r.type == REDIS], "the group must not be registered"


def test_after_a_failed_up_the_program_follows_aws_not_the_outputs():
    """The last `up` moved the group to `compatible` and then failed, so the outputs still say
    disabled. Enabling (one shard) is the valid next step and is accepted; judged by the
    outputs alone it would be refused as skipping `compatible`."""
    values = stack_values("phase4", redis={"shards": 1})
    outputs = {**NAMED, "redisEngine": "valkey", "redisClusterMode": "disabled"}
    accepted = engine.run("phase4", values=values, previous_outputs=outputs,
                          deployed={"redis": {"clusterMode": "compatible", "numCacheClusters": 2}})
    assert accepted.one(REDIS).inputs["clusterMode"] == "enabled"
    with pytest.raises(ConfigError) as err:
        engine.run("phase4", values=values, previous_outputs={"redisEngine": "valkey", "redisClusterMode": "disabled"})
    assert "one step at a time" in str(err.value)
    # and the other way round: the outputs say compatible, AWS never got there
    with pytest.raises(ConfigError) as err:
        engine.run("phase4", values=values, previous_outputs={**NAMED, "redisEngine": "valkey", "redisClusterMode": "compatible"},
                   deployed={"redis": {"clusterMode": "disabled", "numCacheClusters": 2}})
    assert "scaleladder:redis.clusterMode" in str(err.value) and "one step at a time" in str(err.value)


def test_aws_reports_the_shape_so_a_mode_change_with_a_node_type_change_is_refused():
    values = stack_values("phase4", redis={"shards": 1, "nodeType": "cache.r6g.large"})
    with pytest.raises(ConfigError) as err:
        engine.run("phase4", values=values, previous_outputs={**NAMED, "redisEngine": "valkey", "redisClusterMode": "compatible"},
                   deployed={"redis": {"clusterMode": "compatible", "numCacheClusters": 2,
                                       "nodeType": "cache.m6g.large"}})
    assert "scaleladder:redis.nodeType" in str(err.value) and "allowed: cache.m6g.large" in str(err.value)


def test_the_live_engine_version_is_what_a_downgrade_is_judged_by():
    """An `up` upgraded the instance to 17 and then failed: the outputs still say 16."""
    outputs = {**NAMED, "redisEngine": "valkey", "redisClusterMode": "disabled", "dbEngineVersion": "16"}
    same = engine.run("phase3", previous_outputs=outputs,
                      deployed={"db": {"engineVersion": "16.6", "allocatedStorage": 100}})
    assert same.one("aws:rds/instance:Instance", "db").inputs["engineVersion"] == "16"
    with pytest.raises(ConfigError) as err:
        engine.run("phase3", previous_outputs=outputs, deployed={"db": {"engineVersion": "17.2"}})
    assert "scaleladder:database.engineVersion" in str(err.value) and "17.2" in str(err.value)


def test_the_next_up_can_read_the_deployed_resources():
    p = plan("phase2")
    assert p.outputs["redisGroupId"] == p.one(REDIS).id and p.outputs["dbIdentifier"]
