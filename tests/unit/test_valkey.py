"""Valkey for ElastiCache (`redis.engine`): the plan, the in-place switch from a deployed Redis OSS
group, the refused way back, the source versions, and the Valkey node price.

Facts: terraform-provider-aws internal/service/elasticache/engine_version.go
(`customizeDiffEngineForceNewOnDowngrade`: any engine change but redis -> valkey is ForceNew);
AWS ElastiCache User Guide "How to upgrade from Redis OSS to Valkey" (minimal downtime from
Redis OSS 5.0.6); "Engine specific parameters" (families valkey7, valkey8).
"""

from __future__ import annotations

import dataclasses

import pytest

from ladder import config as config_module
from ladder import engine, inplace
from ladder.config import ConfigError
from ladder.cost import price_plan
from ladder.inplace import REPLICATION_GROUP, refusals
from ladder.prices import catalog

from .plans import plan, stack_values

REDIS = "aws:elasticache/replicationGroup:ReplicationGroup"
PARAMS = "aws:elasticache/parameterGroup:ParameterGroup"
NAMED = {"redisGroupId": "redis-0a1b2c3", "dbIdentifier": "db-4d5e6f7"}
DEPLOYED_REDIS = {**NAMED, "redisClusterMode": "disabled", "redisEngineVersion": "7.1", "redisEngine": "redis"}


def families(p: engine.Plan) -> set[str]:
    return {r.inputs["family"] for r in p.of_type(PARAMS)}


def without_engine(stack: str) -> dict:
    """The preset's values without `redis.engine` (the presets set valkey: stacks/*.yaml), i.e. a
    stack from before the key, or one that leaves it to ladder/phases.py's default."""
    values = engine.read_stack(stack)
    redis = {k: v for k, v in values.get("scaleladder:redis", {}).items() if k != "engine"}
    return {**values, "scaleladder:redis": redis}


# --- the plan ----------------------------------------------------------------------------------


def test_a_stack_without_the_key_keeps_redis_oss_7_1_and_the_redis7_family():
    p = engine.run("phase1", values=without_engine("phase1"))
    group = p.one(REDIS)
    assert (group.inputs["engine"], group.inputs["engineVersion"]) == ("redis", "7.1")
    assert families(p) == {"redis7"} and p.outputs["redisEngine"] == "redis"


def test_valkey_stack_plans_valkey_with_the_valkey8_family_by_default():
    p = plan("phase1", redis={"engine": "valkey"})
    group = p.one(REDIS)
    assert (group.inputs["engine"], group.inputs["engineVersion"]) == ("valkey", "8.2")
    assert families(p) == {"valkey8"}
    assert p.outputs["redisEngine"] == "valkey" and p.outputs["redisEngineVersion"] == "8.2"


def test_valkey_7_2_takes_the_valkey7_family():
    p = plan("phase1", redis={"engine": "valkey", "engineVersion": "7.2"})
    assert families(p) == {"valkey7"} and p.one(REDIS).inputs["engineVersion"] == "7.2"


def test_valkey_cluster_mode_enabled_phase4_plans():
    p = plan("phase4", redis={"engine": "valkey"})
    group = p.one(REDIS)
    assert group.inputs["engine"] == "valkey" and group.inputs["clusterMode"] == "enabled"
    assert families(p) == {"valkey8"}


# --- config ------------------------------------------------------------------------------------


@pytest.mark.parametrize("engine_name,version,allowed", [
    ("valkey", "7.1", "allowed: 7.2, 8.0, 8.1, 8.2"),
    ("redis", "8.0", "allowed: 7.0, 7.1"),
])
def test_a_version_of_the_other_engine_is_refused_naming_both_keys(engine_name, version, allowed):
    with pytest.raises(ConfigError) as err:
        engine.validate_stack(stack_values("phase1", redis={"engine": engine_name, "engineVersion": version}))
    text = str(err.value)
    assert "scaleladder:redis.engineVersion" in text and "scaleladder:redis.engine" in text and allowed in text


def test_an_unknown_engine_is_refused_naming_the_key():
    with pytest.raises(ConfigError) as err:
        engine.validate_stack(stack_values("phase1", redis={"engine": "memcached"}))
    assert "scaleladder:redis.engine" in str(err.value) and "'redis'" in str(err.value)


def test_a_node_type_not_priced_for_valkey_is_refused_with_the_valkey_list(monkeypatch):
    """The type check reads the engine's own table: a type priced for Redis OSS only is refused
    under valkey (and still accepted under redis)."""
    real = catalog()
    regions = {name: {**r, "elasticache_valkey_node_hour": {k: v for k, v in r["elasticache_valkey_node_hour"].items()
                                                            if k != "cache.t4g.small"}}
               for name, r in real.regions.items()}
    monkeypatch.setattr(config_module, "catalog", lambda: dataclasses.replace(real, regions=regions))
    with pytest.raises(ConfigError) as err:
        engine.validate_stack(stack_values("phase1", redis={"engine": "valkey"}))
    text = str(err.value)
    assert "scaleladder:redis.nodeType" in text and "'cache.t4g.small'" in text and "cache.t4g.medium" in text
    engine.validate_stack(without_engine("phase1"))  # redis: the Redis OSS table has it


# --- the switch on a deployed group ---------------------------------------------------------------


def test_redis_to_valkey_on_a_deployed_redis_group_is_accepted_in_place():
    p = engine.run("phase2", values=stack_values("phase2", redis={"engine": "valkey"},
                                                 climb={"acceptCacheInterruption": True}),  # no replica in phase 2
                   previous_outputs=DEPLOYED_REDIS)
    group = p.one(REDIS)
    assert (group.inputs["engine"], group.inputs["engineVersion"]) == ("valkey", "8.2")
    assert families(p) == {"valkey8"}


def test_a_stack_deployed_before_the_engine_output_existed_keeps_redis_and_may_switch():
    old_outputs = {k: v for k, v in DEPLOYED_REDIS.items() if k != "redisEngine"}
    kept = engine.run("phase2", values=without_engine("phase2"), previous_outputs=old_outputs)
    assert kept.one(REDIS).inputs["engine"] == "redis"
    switched = engine.run("phase2", values=stack_values("phase2", redis={"engine": "valkey"},
                                                        climb={"acceptCacheInterruption": True}),
                          previous_outputs=old_outputs)
    assert switched.one(REDIS).inputs["engine"] == "valkey"


def test_valkey_to_redis_is_refused_naming_the_key_before_the_group_exists():
    cli = engine.cli_config("phase2", without_engine("phase2"))  # no redis.engine: redis
    outputs = {**DEPLOYED_REDIS, "redisEngine": "valkey", "redisEngineVersion": "8.2"}
    monitor = engine.RecordingMonitor(engine.AwsMocks("us-east-1", outputs))
    with pytest.raises(ConfigError) as err:
        engine.execute("phase2", cli, "us-east-1", monitor=monitor)
    text = str(err.value)
    assert "scaleladder:redis.engine:" in text and "allowed: valkey" in text and "runs Valkey" in text
    assert not [r for r in monitor.recorded if r.type == REDIS], "the group must not be registered"


def test_aws_wins_over_outputs_that_still_say_redis():
    """An `up` switched the group to Valkey and then failed: the outputs still say redis."""
    with pytest.raises(ConfigError) as err:
        engine.run("phase2", values=without_engine("phase2"), previous_outputs=DEPLOYED_REDIS,
                   deployed={"redis": {"engine": "valkey", "engineVersion": "8.2"}})
    assert "scaleladder:redis.engine:" in str(err.value)


def test_a_redis_oss_source_before_5_0_6_is_refused_at_the_switch():
    with pytest.raises(ConfigError) as err:
        engine.run("phase2", values=stack_values("phase2", redis={"engine": "valkey"}),
                   previous_outputs=DEPLOYED_REDIS, deployed={"redis": {"engine": "redis", "engineVersion": "5.0.5"}})
    text = str(err.value)
    assert "scaleladder:redis.engine:" in text and "5.0.5" in text and "30-60 s failover" in text


# --- the rules themselves --------------------------------------------------------------------------

CMD = {"clusterMode": "disabled", "numCacheClusters": 2, "nodeType": "cache.m6g.large",
       "automaticFailoverEnabled": True}


@pytest.mark.parametrize("source", ["5.0.6", "6.2", "7.0", "7.1"])
def test_redis_oss_from_5_0_6_switches_to_valkey_in_place(source):
    before = {**CMD, "engine": "redis", "engineVersion": source}
    assert refusals(REPLICATION_GROUP, "redis", before, {**CMD, "engine": "valkey", "engineVersion": "8.2"}) == []


@pytest.mark.parametrize("source", ["4.0.10", "5.0.0", "5.0.5"])
def test_redis_oss_before_5_0_6_is_refused(source):
    before = {**CMD, "engine": "redis", "engineVersion": source}
    found = refusals(REPLICATION_GROUP, "redis", before, {**CMD, "engine": "valkey", "engineVersion": "7.2"})
    assert [(r.input, r.source, r.key) for r in found] == [("engine", inplace.SRC_VALKEY_UPGRADE,
                                                            "scaleladder:redis.engine")]


def test_valkey_to_redis_is_one_refusal_with_the_provider_source():
    before = {**CMD, "engine": "valkey", "engineVersion": "7.2"}
    found = refusals(REPLICATION_GROUP, "redis", before, {**CMD, "engine": "redis", "engineVersion": "7.2"})
    assert [(r.input, r.source, r.allowed) for r in found] == [("engine", inplace.SRC_VALKEY_ROLLBACK, "valkey")]


def test_the_switch_is_refused_while_cluster_mode_is_compatible():
    before = {**CMD, "clusterMode": "compatible", "engine": "redis", "engineVersion": "7.1"}
    after = {**before, "engine": "valkey", "engineVersion": "8.2"}
    found = {r.input for r in refusals(REPLICATION_GROUP, "redis", before, after)}
    assert {"engine", "engineVersion"} <= found


def test_a_valkey_version_downgrade_is_refused():
    before = {**CMD, "engine": "valkey", "engineVersion": "8.1"}
    found = refusals(REPLICATION_GROUP, "redis", before, {**before, "engineVersion": "7.2"})
    assert [r.input for r in found] == ["engineVersion"]


# --- price -------------------------------------------------------------------------------------------


def node_line(p: engine.Plan):
    report = price_plan(p.to_json(), with_band=False)
    return next(i for i in report.items if i.type == REDIS)


def test_valkey_nodes_are_priced_from_the_valkey_table():
    """Phase 1: one cache.t4g.small node, 730 h. us-east-1 Redis OSS $0.032/h -> $23.36; Valkey
    $0.0256/h (80 %, AWS ElastiCache FAQ) -> $18.688 -> $18.69."""
    redis, valkey = node_line(plan("phase1", redis={"engine": "redis"})), node_line(plan("phase1"))  # preset: valkey
    assert redis.sku == "elasticache_node_hour:cache.t4g.small" and redis.monthly_usd == pytest.approx(23.36)
    assert valkey.sku == "elasticache_valkey_node_hour:cache.t4g.small"
    assert valkey.monthly_usd == pytest.approx(18.69)


def test_every_redis_priced_node_type_has_a_valkey_price_in_every_region():
    c = catalog()
    for region in c.regions:
        redis = set(c.instance_types(region, "elasticache_node_hour"))
        valkey = set(c.instance_types(region, "elasticache_valkey_node_hour"))
        assert redis == valkey, f"{region}: Valkey prices missing for {sorted(redis - valkey)}"
        for node in redis:
            ratio = c.price(region, "elasticache_valkey_node_hour", node) / c.price(region, "elasticache_node_hour", node)
            assert ratio == pytest.approx(0.8, abs=0.002), (region, node)


# --- preflight: the parameter group's family -------------------------------------------------------


def test_preflight_refuses_a_parameter_group_of_the_other_engine_and_accepts_the_right_one():
    from ladder.preflight import aws

    from .test_preflight_aws import fired, plan_copy

    p = plan_copy("phase1")
    group = p.one(REDIS)
    for params in p.of_type(PARAMS):  # the preset runs Valkey: start from its Redis OSS 7.1 plan
        params.inputs["family"] = "redis7"
    group.inputs.update(engine="redis", engineVersion="7.1")
    assert fired(aws.elasticache_parameter_family, p) == []
    group.inputs.update(engine="valkey", engineVersion="8.2")  # the families stay redis7
    found = fired(aws.elasticache_parameter_family, p)
    assert [(v.input, v.source) for v in found] == [("parameterGroupName", aws.SRC_ELASTICACHE_FAMILY)]
    assert "family redis7" in found[0].rule and "valkey8" in found[0].rule
    for params in p.of_type(PARAMS):
        params.inputs["family"] = "valkey8"
    assert fired(aws.elasticache_parameter_family, p) == []
    group.inputs["engineVersion"] = "7.2"  # valkey7, not valkey8
    assert len(fired(aws.elasticache_parameter_family, p)) == 1
