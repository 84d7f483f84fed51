"""`ladder recommend` says what a switch saves: each line is the difference of two priced plans
(the stack and the stack with one override), and a switch never lowers capacity."""

from __future__ import annotations

import json

import pytest

from ladder import aws_facts, engine
from ladder import recommend as rec
from ladder.cli import main
from ladder.cost import price_plan
from ladder.prices import catalog

from .plans import plan

USERS = 1000


def total(p: engine.Plan) -> float:
    return price_plan(p.to_json(), users=USERS, messages_per_day=0, with_band=False).total


@pytest.fixture(scope="module")
def phase1_savings() -> dict[str, dict]:
    return {s["key"]: s for s in rec.switch_savings("phase1", USERS, 0)}


REDIS_STACK = "phase1-redis"  # the phase-1 preset as deployed before it took Valkey (engine redis)


@pytest.fixture(scope="module")
def redis_savings() -> dict[str, dict]:
    """The presets run Valkey (stacks/*.yaml): the Redis OSS -> Valkey line needs a Redis OSS stack,
    read here as the phase-1 preset with `redis.engine: redis` under its own name (recommend's plan
    cache is per stack name)."""
    read = engine.read_stack

    def read_stack(stack: str, *args, **kwargs):
        if stack != REDIS_STACK:
            return read(stack, *args, **kwargs)
        values = read("phase1")
        return {**values, "scaleladder:redis": {**values.get("scaleladder:redis", {}), "engine": "redis"}}

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(engine, "read_stack", read_stack)
        yield {s["key"]: s for s in rec.switch_savings(REDIS_STACK, USERS, 0)}


def test_each_line_is_the_difference_of_the_two_priced_plans(phase1_savings):
    base = total(plan("phase1"))
    assert phase1_savings, "phase 1 runs a t3 VM: at least the Graviton switch saves"
    for key, s in phase1_savings.items():
        section, _, name = key.partition(".")
        extra = {"engineVersion": aws_facts.ELASTICACHE_ENGINE_VERSIONS["valkey"][-1]} if key == "redis.engine" else {}
        # A Graviton app host is priced with the image's arm64 platform listed (config.image_platform_problems).
        image = {"app": {"imagePlatforms": ["linux/amd64", "linux/arm64"]}} if rec.IMAGE_CAVEAT in s["caveats"] else {}
        variant = total(plan("phase1", **{section: {name: s["to"], **extra}}, **image))
        assert s["base_monthly_usd"] == pytest.approx(base)
        assert s["monthly_usd_saved"] == pytest.approx(round(base - variant, 2))
        assert s["percent"] == pytest.approx(round(100 * (base - variant) / base, 1))


def test_the_valkey_line_by_hand(redis_savings, phase1_savings):
    """One cache.t4g.small node, 730 h, us-east-1: Redis OSS $0.032/h, Valkey $0.0256/h ->
    730 x 0.0064 = $4.672 -> $4.67. The phase-1 preset already runs Valkey: no engine line."""
    assert "redis.engine" not in phase1_savings
    s = redis_savings["redis.engine"]
    assert (s["from"], s["to"]) == ("redis", "valkey") and s["monthly_usd_saved"] == pytest.approx(4.67)


def test_the_vm_switch_by_hand(phase1_savings):
    """t3.medium $0.0416/h -> t4g.medium $0.0336/h (same 2 vCPUs, 4 GiB, burstable both): 730 x 0.008
    = $5.84 (no CPU-credit surplus at this load on either)."""
    s = phase1_savings["appTier.instanceType"]
    assert (s["from"], s["to"]) == ("t3.medium", "t4g.medium") and s["monthly_usd_saved"] == pytest.approx(5.84)
    pct = round(100 * 5.84 / s["base_monthly_usd"], 1)  # of the stack's own total at this load
    assert rec.savings_line(s) == (f"switch appTier.instanceType t3.medium -> t4g.medium: -$5.84/month (-{pct:g} %)"
                                   " (needs an arm64 or multi-arch image; refused for a deployed VM, which keeps "
                                   "its CPU architecture)")


@pytest.mark.parametrize("phase", [1, 2, 3, 4, 5, 6])
def test_a_switch_never_proposes_less_capacity(phase):
    cfg = engine.validate_stack(engine.read_stack(f"phase{phase}"), stack=f"phase{phase}")
    for tier in rec.TIERS:
        if not tier.runs(cfg):
            continue
        current = tier.current(cfg)
        for candidate in rec.candidates(tier, cfg):
            now, new = rec._spec(tier, current), rec._spec(tier, candidate)
            assert now is not None and new is not None
            assert new[0] >= now[0] and new[1] >= now[1], (tier.key, current, candidate)
            assert rec._burstable(candidate) == rec._burstable(current)


def test_a_cheaper_type_with_less_memory_is_not_a_candidate():
    """Phase 6 nodes m6i.xlarge (4 vCPUs, 16 GiB): c7g.xlarge costs less but has 8 GiB."""
    cfg = engine.validate_stack(engine.read_stack("phase6"), stack="phase6")
    tier = next(t for t in rec.TIERS if t.key == "eks.nodeInstanceType")
    assert tier.current(cfg) == "m6i.xlarge"
    prices = catalog()
    assert prices.price(cfg.region, "ec2_instance_hour", "c7g.xlarge") < prices.price(cfg.region, "ec2_instance_hour",
                                                                                        "m6i.xlarge")
    found = rec.candidates(tier, cfg)
    assert "c7g.xlarge" not in found and "m7g.xlarge" in found


def test_a_burstable_type_never_replaces_a_fixed_performance_one():
    """Phase 4 app hosts c6i.large: t3/t4g.large have the vCPUs and memory but run at a baseline."""
    cfg = engine.validate_stack(engine.read_stack("phase4"), stack="phase4")
    tier = next(t for t in rec.TIERS if t.key == "appTier.instanceType")
    found = rec.candidates(tier, cfg)
    assert found and not [t for t in found if t.startswith("t")]


def test_every_catalog_type_has_the_facts_a_switch_needs():
    prices = catalog()
    for region in prices.regions:
        for node in prices.instance_types(region, "elasticache_node_hour"):
            assert node in aws_facts.ELASTICACHE_NODE_SPECS, node
        for type_ in prices.instance_types(region, "ec2_instance_hour"):
            assert aws_facts.ec2_memory_gib(type_) > 0


def test_the_cli_prints_the_lines_and_the_json(capsys):
    assert main(["recommend", "--concurrent-users", str(USERS), "--stack", "phase1"]) == 0
    text = " ".join(capsys.readouterr().out.split())  # the console wraps long lines
    assert "switch appTier.instanceType t3.medium -> t4g.medium: -$5.84/month" in text
    assert "(needs an arm64 or multi-arch image; refused for a deployed VM" in text
    assert main(["recommend", "--concurrent-users", str(USERS), "--stack", "phase1", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["savings_stack"] == "phase1"
    by_key = {s["key"]: s for s in data["savings"]}
    assert by_key["appTier.instanceType"]["caveats"] == [rec.IMAGE_CAVEAT, rec.VM_CAVEAT]
