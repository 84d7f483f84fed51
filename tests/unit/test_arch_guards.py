"""Architecture guards (review cost-aws findings 4, 9, 11, 12, 13): an arm64 tier needs an arm64 app
image, `hosts.ami` matches the tiers' architecture, the single-node Valkey switch is acknowledged."""

from __future__ import annotations

from typing import Any

import pytest

from ladder import engine, inplace
from ladder.config import ConfigError

from .plans import plan, stack_values

ARM = ["linux/amd64", "linux/arm64"]


def refusal(stack: str, **overrides: Any) -> str:
    with pytest.raises(ConfigError) as err:
        engine.validate_stack({**stack_values(stack, **overrides), "aws:region": "us-east-1"})
    return str(err.value)


def accepted(stack: str, **overrides: Any) -> None:
    engine.validate_stack({**stack_values(stack, **overrides), "aws:region": "us-east-1"})


# --- finding 4: app.imagePlatforms ---------------------------------------------------------------

@pytest.mark.parametrize(("stack", "overrides", "tier"), [
    ("phase1", {"appTier": {"instanceType": "t4g.medium"}}, "appTier.instanceType: t4g.medium"),
    ("phase3", {"workers": {"instanceType": "t4g.small"}}, "workers.instanceType: t4g.small"),
    ("phase3", {"appTier": {"instanceType": "m7g.large"}}, "appTier.instanceType: m7g.large"),
    ("phase6", {"eks": {"nodeInstanceType": "m7g.xlarge"}}, "eks.nodeInstanceType: m7g.xlarge"),
])
def test_an_arm64_app_image_tier_is_refused_unless_the_image_lists_linux_arm64(stack, overrides, tier):
    found = refusal(stack, **overrides)
    assert f"scaleladder:{tier} pulls app.image for linux/arm64" in found
    assert "scaleladder:app.imagePlatforms" in found and "linux/arm64" in found
    accepted(stack, app={"imagePlatforms": ARM}, **overrides)


def test_the_climbs_kept_hosts_count_too():
    # Phase 6 with climb.keepEc2Tier keeps phase 5's app and worker groups: an arm64 worker type there.
    found = refusal("phase6", workers={"instanceType": "t4g.medium"}, climb={"keepEc2Tier": True})
    assert "scaleladder:workers.instanceType: t4g.medium" in found
    # Phase 2 with climb.keepSingleHost: the VM runs phase 1's type (here an arm64 one).
    found = refusal("phase2", appTier={"instanceType": "t4g.medium"}, climb={"keepSingleHost": True})
    assert "scaleladder:climb.keepSingleHost: t4g.medium" in found


def test_pgbouncer_and_an_arm64_only_image_list():
    # PgBouncer hosts run Ubuntu packages, not the app image: an arm64 PgBouncer needs no arm64 app image.
    accepted("phase3", pgbouncer={"instanceType": "t4g.small"})
    # An image listed as arm64 only refuses the x86 presets' app tiers the other way round.
    found = refusal("phase3", app={"imagePlatforms": ["linux/arm64"]})
    assert "scaleladder:appTier.instanceType: t3.large pulls app.image for linux/amd64" in found
    found = refusal("phase3", app={"imagePlatforms": ["linux/amd64", "linux/amd64"]})
    assert "scaleladder:app.imagePlatforms" in found and "once" in found
    found = refusal("phase3", app={"imagePlatforms": ["linux/s390x"]})
    assert "scaleladder:app.imagePlatforms" in found


def test_the_preset_plans_still_pass():
    assert plan("phase3", app={"imagePlatforms": ARM}, workers={"instanceType": "t4g.small"}).of_type(
        "aws:ec2/launchTemplate:LaunchTemplate")


# --- finding 9: the single-node Valkey switch is acknowledged ----------------------------------

NAMED = {"redisGroupId": "redis-0a1b2c3", "dbIdentifier": "db-4d5e6f7"}
DEPLOYED_REDIS = {**NAMED, "redisClusterMode": "disabled", "redisEngineVersion": "7.1", "redisEngine": "redis"}
REDIS = "aws:elasticache/replicationGroup:ReplicationGroup"


def switch(stack: str, previous: dict[str, Any], deployed: dict[str, Any] | None = None, **overrides: Any) -> engine.Plan:
    return engine.run(stack, values=stack_values(stack, redis={"engine": "valkey"}, **overrides),
                      previous_outputs=previous, deployed=deployed)


def test_the_valkey_switch_of_a_group_without_replica_is_refused_unless_acknowledged():
    # Phase 2: one node (replicasPerShard 0), AWS's group reports no automatic failover.
    with pytest.raises(ConfigError) as err:
        switch("phase2", DEPLOYED_REDIS)
    text = str(err.value)
    assert "scaleladder:redis.engine" in text and "scaleladder:climb.acceptCacheInterruption" in text
    assert "no replica" in text
    accepted_plan = switch("phase2", DEPLOYED_REDIS, climb={"acceptCacheInterruption": True})
    assert accepted_plan.one(REDIS).inputs["engine"] == "valkey"


def test_the_rule_itself_and_its_source():
    before = {"engine": "redis", "engineVersion": "7.1", "automaticFailoverEnabled": False}
    after = {"engine": "valkey", "engineVersion": "8.2", "automaticFailoverEnabled": False}
    (found,) = inplace.refusals(inplace.REPLICATION_GROUP, "redis", before, after, False)
    assert found.source == inplace.SRC_VALKEY_NO_REPLICA and "Knowledge Center" in found.source
    assert not inplace.refusals(inplace.REPLICATION_GROUP, "redis", before, after, True)
    # ladder diff compares plans, which do not carry the acknowledgement: not checked there (None).
    assert not inplace.refusals(inplace.REPLICATION_GROUP, "redis", before, after)
    # Outputs only (no live group): the failover the program sets stands in.
    assert inplace.refusals(inplace.REPLICATION_GROUP, "redis", {"engine": "redis", "engineVersion": "7.1"}, after, False)


def test_the_valkey_switch_with_a_replica_needs_no_acknowledgement():
    # Phase 3 runs a replica; AWS reports two member clusters, so automatic failover is on.
    p = switch("phase3", DEPLOYED_REDIS, deployed={"redis": {"numCacheClusters": 2}})
    assert p.one(REDIS).inputs["engine"] == "valkey"


def test_a_single_node_group_that_stays_on_redis_is_not_refused():
    values = stack_values("phase2", redis={"engine": "redis", "engineVersion": "7.1"})
    assert engine.run("phase2", values=values, previous_outputs=DEPLOYED_REDIS).one(REDIS).inputs["engine"] == "redis"


# --- finding 13: groups from before redisEngine ran Redis OSS ---------------------------------

def test_outputs_without_engine_and_group_id_count_as_redis_oss():
    """Outputs from before redisGroupId and redisEngine (only mode and version): the deployed engine
    is Redis OSS, so a switch from 5.0.5 is refused as the below-5.0.6 Redis OSS -> Valkey switch.
    Without the fallback the engine would be unknown and no engine rule would fire."""
    old = {"redisClusterMode": "disabled", "redisEngineVersion": "5.0.5"}
    with pytest.raises(ConfigError) as err:
        switch("phase3", old)
    assert "Redis OSS 5.0.5" in str(err.value) and "scaleladder:redis.engine" in str(err.value)


# --- finding 12: the VM kept by climb.keepSingleHost boots its own architecture's AMI -----------

def test_the_kept_vm_takes_the_ami_of_its_recorded_type_not_the_fleets():
    from components.app_host import UBUNTU_AMI_PARAMETERS
    from ladder import mocks

    vm = plan("phase1", appTier={"instanceType": "t4g.medium"}, app={"imagePlatforms": ARM})
    previous = engine.public(vm.outputs)
    assert previous["singleHostType"] == "t4g.medium"
    # Phase 2's fleet stays x86 (t3); the VM keeps running t4g.medium (arm64).
    p = engine.run("phase2", values=stack_values("phase2", climb={"keepSingleHost": True}, app={"imagePlatforms": ARM}),
                   previous_outputs=previous)
    kept = p.one("aws:ec2/instance:Instance", "app")
    assert kept.inputs["instanceType"] == "t4g.medium"
    assert kept.inputs["ami"] == "ami-0" + mocks._short(UBUNTU_AMI_PARAMETERS["arm64"], 16)


# --- finding 5: recommend's caveats -------------------------------------------------------------

def test_recommend_caveats_per_switch():
    from ladder import recommend as rec

    def cfg(stack: str, **overrides: Any):
        return engine.validate_stack({**stack_values(stack, **overrides), "aws:region": "us-east-1"})

    p2 = cfg("phase2", redis={"engine": "redis", "engineVersion": "7.1"})
    assert rec.caveats(p2, "workers.instanceType", "t3.small", "t4g.small") == [rec.IMAGE_CAVEAT]
    assert rec.IMAGE_CAVEAT in rec.caveats(p2, "eks.nodeInstanceType", "m6i.xlarge", "m7g.xlarge")  # + FA2's node group
    # PgBouncer hosts do not run the app image; same-architecture switches need nothing.
    assert rec.caveats(p2, "pgbouncer.instanceType", "t3.small", "t4g.small") == []
    assert rec.caveats(p2, "appTier.instanceType", "t3.large", "t3a.large") == []
    # Phases 1-2: one Redis node, the switch interrupts it; phase 3 has a replica.
    assert rec.caveats(p2, "redis.engine", "redis", "valkey") == [rec.VALKEY_NO_REPLICA_CAVEAT]
    p3 = cfg("phase3", redis={"engine": "redis", "engineVersion": "7.1"})
    assert rec.caveats(p3, "redis.engine", "redis", "valkey") == []
    # Phase 1's VM: the image, and the refusal on a deployed VM.
    p1 = cfg("phase1")
    assert rec.caveats(p1, "appTier.instanceType", "t3.medium", "t4g.medium") == [rec.IMAGE_CAVEAT, rec.VM_CAVEAT]
    # A Graviton variant of an app-image tier is priced with linux/arm64 listed (else the config refuses it).
    assert rec._platform_override(p2, "workers.instanceType", "t4g.small") == [
        ("app.imagePlatforms", ["linux/amd64", "linux/arm64"])]
    assert rec._platform_override(p2, "pgbouncer.instanceType", "t4g.small") == []
