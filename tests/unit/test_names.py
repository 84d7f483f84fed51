"""Names derived from the stack name are valid for AWS whatever Pulumi accepts as a stack name,
and no resource is auto-named into a prefix the provider refuses."""

from __future__ import annotations

import re

import pytest

from ladder import engine
from ladder.config import ConfigError
from ladder.names import MAX_PREFIX, name_prefix

from .plans import stack_values

# validFinalSnapshotIdentifier (terraform-provider-aws internal/service/rds/validate.go).
RDS_IDENTIFIER = re.compile(r"^[a-zA-Z](?!.*--)[0-9a-zA-Z-]*(?<!-)$")


@pytest.mark.parametrize("stack", ["prod_eu", "production-eu-west-1-blue", "Prod.EU", "2026_blue", "a" * 90,
                                   "team--x_"])
def test_derived_prefix_is_a_valid_rds_identifier_and_short_enough(stack):
    prefix = name_prefix("scaleladder", stack)
    assert RDS_IDENTIFIER.match(prefix + "-db-final"), prefix
    assert len(prefix) <= MAX_PREFIX and len(prefix + "-static-assets") <= 64


def test_long_stack_names_sharing_a_beginning_get_different_prefixes():
    a, b = (name_prefix("scaleladder", "production-eu-west-1-blue-" + c * 20) for c in "xy")
    assert a != b


@pytest.mark.parametrize("stack", ["prod_eu", "production-eu-west-1-blue"])
def test_unusual_stack_names_plan_with_valid_derived_names(stack):
    values = stack_values("phase5")
    plan = engine.run(stack, values=values)
    db = plan.one("aws:rds/instance:Instance", "db")
    assert RDS_IDENTIFIER.match(db.inputs["finalSnapshotIdentifier"]), db.inputs["finalSnapshotIdentifier"]
    for group in plan.of_type("aws:autoscaling/group:Group"):
        assert "_" not in group.inputs["name"] and len(group.inputs["name"]) <= 255


def test_no_security_group_is_named_into_the_sg_prefix():
    """The provider refuses a security group name beginning `sg-`; Pulumi auto-names from the logical name."""
    for stack in engine.stack_names():
        for group in engine.run(stack).of_type("aws:ec2/securityGroup:SecurityGroup"):
            assert not group.inputs.get("name", group.name).startswith("sg-"), (stack, group.name)
            assert not group.inputs.get("namePrefix", group.name).startswith("sg-"), (stack, group.name)


def test_redis_engine_downgrade_is_refused_naming_the_key():
    values = stack_values("phase3", redis={"engine": "redis", "engineVersion": "7.0"})  # presets run Valkey
    with pytest.raises(ConfigError) as err:
        engine.run("phase3", values=values, previous_outputs={"redisClusterMode": "disabled",
                                                              "redisEngineVersion": "7.1"})
    assert "scaleladder:redis.engineVersion" in str(err.value) and "7.1 or newer" in str(err.value)
    same = engine.run("phase3", values=stack_values("phase3", redis={"engine": "redis", "engineVersion": "7.1"}),
                      previous_outputs={"redisClusterMode": "disabled", "redisEngineVersion": "7.0"})
    assert same.one("aws:elasticache/replicationGroup:ReplicationGroup").inputs["engineVersion"] == "7.1"
