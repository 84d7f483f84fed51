"""Climbing and stepping back never replace or delete a stateful resource.

The same stack (same URNs) planned before and after `scaleladder:phase` changes, compared
by `ladder diff`'s own rules (`diff.compare(...).losses`: a stateful resource replaced, or
removed without retainOnDelete). A change AWS cannot make in place (reverting Redis
cluster mode) is refused by the program.
"""

from __future__ import annotations

import pytest

from ladder import engine
from ladder.config import ConfigError
from ladder.diff import compare

from .plans import plan, stack_values


def losses(before: engine.Plan, after: engine.Plan) -> list[str]:
    return [f.reason for f in compare(before.to_json(), after.to_json()).losses]


PAIRS = [(n, n + 1) for n in range(1, 6)]


@pytest.mark.parametrize("low,high", PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
def test_climbing_keeps_every_stateful_resource(low, high):
    before = plan(f"phase{low}")
    if high == 4:  # the Redis move needs its intermediate step (see README)
        values = stack_values(f"phase{low}", redis={"clusterMode": "compatible"})
        values["scaleladder:phase"] = high
        values["scaleladder:redis"]["shards"] = 1
        after = engine.run(f"phase{low}", values=values, previous_outputs={"redisClusterMode": "disabled"})
    else:
        after = engine.run(f"phase{low}", values={**stack_values(f"phase{low}"), "scaleladder:phase": high},
                           previous_outputs={"redisClusterMode": before.config.redis.cluster_mode})
    assert not losses(before, after)
    assert {r.urn for r in before.resources if r.options["protect"]} <= {r.urn for r in after.resources}


@pytest.mark.parametrize("low,high", [p for p in PAIRS if p != (3, 4)], ids=lambda v: str(v))
def test_stepping_back_deletes_nothing_stateful_that_is_not_retained(low, high):
    upper = engine.run(f"phase{high}", values={**stack_values(f"phase{high}")})
    values = {**stack_values(f"phase{high}"), "scaleladder:phase": low}
    if high >= 5:  # phase 5+ already runs Redis cluster mode; stepping back keeps it
        values["scaleladder:redis"] = {**values.get("scaleladder:redis", {}), "clusterMode": "enabled", "shards": 3}
    try:
        lower = engine.run(f"phase{high}", values=values, previous_outputs={"redisClusterMode": upper.config.redis.cluster_mode})
    except ConfigError as err:  # a refusal is the safe outcome; it must say why
        assert "clusterMode" in str(err)
        return
    assert not losses(upper, lower)


def test_stepping_back_from_cluster_mode_is_refused_with_the_reason():
    with pytest.raises(ConfigError) as err:
        engine.run("phase3", previous_outputs={"redisClusterMode": "enabled"})
    assert "cannot revert cluster mode" in str(err.value) and "scaleladder:redis.clusterMode" in str(err.value)


def test_cluster_mode_cannot_skip_the_compatible_step():
    with pytest.raises(ConfigError) as err:
        engine.run("phase4", previous_outputs={"redisClusterMode": "disabled"})
    assert "compatible" in str(err.value)


def test_the_redis_climb_is_accepted_step_by_step_and_keeps_the_group():
    """disabled -> compatible (1 shard) -> enabled (still 1 shard) -> 3 shards: AWS allows no
    scaling while compatible, and the provider reshards before it changes cluster mode."""
    step1 = engine.run("phase4", values=stack_values("phase4", redis={"clusterMode": "compatible", "shards": 1}),
                       previous_outputs={"redisClusterMode": "disabled"})
    step2 = engine.run("phase4", values=stack_values("phase4", redis={"shards": 1}),
                       previous_outputs={"redisClusterMode": "compatible"})
    step3 = engine.run("phase4", previous_outputs={"redisClusterMode": "enabled"})
    g1, g2, g3 = (s.one("aws:elasticache/replicationGroup:ReplicationGroup") for s in (step1, step2, step3))
    assert g1.urn == g2.urn == g3.urn
    assert [g.inputs["clusterMode"] for g in (g1, g2, g3)] == ["compatible", "enabled", "enabled"]
    assert g2.inputs["numNodeGroups"] == 1 and g2.inputs["replicasPerNodeGroup"] == 1
    assert g3.inputs["numNodeGroups"] == 3 and g3.inputs["replicasPerNodeGroup"] == 1


def test_enabling_cluster_mode_and_resharding_in_one_update_is_refused():
    with pytest.raises(ConfigError) as err:
        engine.run("phase4", previous_outputs={"redisClusterMode": "compatible"})
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
                       previous_outputs={"redisClusterMode": "disabled"})
    assert not losses(before, after), knob


def test_shrinking_database_storage_is_refused_with_the_reason():
    """AWS never reduces allocated storage; the program says so instead of planning a failing update."""
    with pytest.raises(ConfigError) as err:
        engine.run("phase3", previous_outputs={"redisClusterMode": "disabled", "dbStorageGb": 400})
    assert "scaleladder:database.storageGb" in str(err.value) and "400" in str(err.value)
    grown = engine.run("phase3", previous_outputs={"redisClusterMode": "disabled", "dbStorageGb": 50})
    assert grown.one("aws:rds/instance:Instance", "db").inputs["allocatedStorage"] == 100
