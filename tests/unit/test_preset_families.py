"""The us-east-1 presets pick the cheaper family where it fits (issue 17 item 4): PgBouncer hosts
(our own Ubuntu packages only) on Graviton of the same capacity, the tiers that run the user's
image on x86, Valkey for the cache; ladder/phases.py's defaults stay valid in every catalog region;
a group a preset deployed as Redis OSS reaches Valkey in place, never together with a cluster-mode
step."""

from __future__ import annotations

import pytest

from ladder import aws_facts, capacity, engine
from ladder.config import StackConfig
from ladder.phases import phase_defaults
from ladder.prices import catalog

from .plans import plan, stack_values
from .test_climbs import REDIS, refused, up
from .test_families import canonical, image_ids

PGBOUNCER_PHASES = (3, 4, 5)  # the phases whose PgBouncer runs on EC2 hosts (phase 6: pods)


def preset(phase: int) -> StackConfig:
    return engine.validate_stack(engine.read_stack(f"phase{phase}"), stack=f"phase{phase}")


def spec(type_: str) -> tuple[int, float, bool]:
    """vCPUs, GiB (ladder/aws_facts.py) and whether burstable (t family)."""
    return capacity.vcpus(type_), aws_facts.ec2_memory_gib(type_), type_.startswith("t")


@pytest.mark.parametrize("phase", PGBOUNCER_PHASES)
def test_pgbouncer_hosts_run_graviton_of_the_defaults_capacity_on_the_arm64_ami(phase):
    default = phase_defaults(phase)["pgbouncer"]["instanceType"]
    chosen = preset(phase).pgbouncer.instance_type
    assert aws_facts.ec2_architecture(default) == aws_facts.X86_64
    assert aws_facts.ec2_architecture(chosen) == aws_facts.ARM64, chosen
    assert spec(chosen) == spec(default), (chosen, default)
    assert image_ids(plan(f"phase{phase}"))["pgbouncer"] == (chosen, canonical("arm64"))


def test_the_phase3_pgbouncer_saving_by_hand():
    """Two PgBouncer hosts, 730 h, us-east-1 (prices.yaml ec2_instance_hour): t3.small $0.0208/h ->
    t4g.small $0.0168/h: 2 x 730 x 0.0040 = $5.84/month."""
    def pgbouncer_usd(p: engine.Plan) -> float:
        from ladder.cost import price_plan
        report = price_plan(p.to_json(), with_band=False)
        return sum(i.monthly_usd for i in report.items if i.name.startswith("pgbouncer")
                   and i.sku.startswith("ec2_instance_hour:"))
    x86 = pgbouncer_usd(plan("phase3", pgbouncer={"instanceType": "t3.small"}))
    assert x86 - pgbouncer_usd(plan("phase3")) == pytest.approx(5.84, abs=0.01)


@pytest.mark.parametrize("phase", range(1, 7))
def test_tiers_running_the_users_image_stay_x86_in_the_presets(phase):
    cfg = preset(phase)
    for type_ in (cfg.app_tier.instance_type, cfg.workers.instance_type, cfg.eks.node_instance_type):
        assert aws_facts.ec2_architecture(type_) == aws_facts.X86_64, (phase, type_)


@pytest.mark.parametrize("phase", range(1, 7))
def test_phase_defaults_stay_priced_in_every_catalog_region_and_default_to_redis(phase):
    d = phase_defaults(phase)
    types = {d["appTier"]["instanceType"], d["workers"]["instanceType"], d["pgbouncer"]["instanceType"],
             d["eks"]["nodeInstanceType"]}
    prices = catalog()
    for region in prices.regions:
        assert types <= set(prices.instance_types(region, "ec2_instance_hour")), (region, types)
    assert "engine" not in d["redis"]  # StackConfig's default (redis) applies: no deployed group switches


@pytest.mark.parametrize("phase", range(1, 7))
def test_every_preset_runs_valkey(phase):
    assert preset(phase).redis.engine == "valkey"
    assert plan(f"phase{phase}").one(REDIS).inputs["engine"] == "valkey"


def redis_preset(stack: str, **overrides) -> dict:
    """The preset's values as they were before the presets took Valkey."""
    return stack_values(stack, **{"redis": {"engine": "redis"}, **overrides})


def test_a_group_the_old_preset_deployed_as_redis_switches_in_place_with_the_new_preset():
    old = engine.run("phase3", values=redis_preset("phase3"))
    assert old.one(REDIS).inputs["engine"] == "redis"
    new = up("phase3", old)  # the same phase, the new preset file
    group = new.one(REDIS)
    assert (group.inputs["engine"], group.inputs["engineVersion"]) == ("valkey", "8.2")
    assert group.inputs["clusterMode"] == old.one(REDIS).inputs["clusterMode"]


def test_the_valkey_switch_never_rides_a_cluster_mode_step():
    """The 3 -> 4 climb's compatible step from a Redis OSS group with the new preset: refused
    (AWS changes nothing else with cluster mode), naming the engine key."""
    old = engine.run("phase3", values=redis_preset("phase3"))
    text = refused("phase3", old, phase=4, redis={"clusterMode": "compatible", "shards": 1})
    assert "scaleladder:redis.engine: the same update changes cluster mode" in text
    assert "(deployed redis, got valkey); allowed: redis" in text
    ok = up("phase3", old, phase=4, redis={"engine": "redis", "clusterMode": "compatible", "shards": 1})
    assert ok.one(REDIS).inputs["engine"] == "redis"
