"""A deployed EKS node group keeps its instance type (review cost-aws finding 3): `instanceTypes` and
`amiType` force a new managed node group (terraform-provider-aws internal/service/eks/node_group.go;
ladder/diff.py), which Pulumi creates at eks.nodesMin and then drains the old one under load. So a
preset change never reaches a deployed group, and a change the stack sets is refused naming
`scaleladder:eks.nodeInstanceType` unless `eks.replaceNodeGroupFrom` confirms it."""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest

from ladder import climb_eks, engine
from ladder.config import ConfigError
from ladder.phases import phase_defaults

from .plans import plan, plan_after

NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
MULTI_ARCH = {"imagePlatforms": ["linux/amd64", "linux/arm64"]}


def run(stack: str, previous: dict[str, Any], **overrides: Any) -> engine.Plan:
    return plan_after(stack, previous, **overrides)


def node_types(p: engine.Plan) -> list[str]:
    return p.one(NODE_GROUP, "eks-nodes").inputs["instanceTypes"]


@cache
def deployed_on_large() -> dict[str, Any]:
    """The outputs of a phase-6 stack whose group runs m6i.large (the preset before 1255550)."""
    return engine.public(plan("phase6", eks={"nodeInstanceType": "m6i.large"}).outputs)


def test_the_preset_type_differs_from_the_old_one():
    # What makes the rest matter: the preset moved m6i.large -> m6i.xlarge (ladder/phases.py).
    assert phase_defaults(6)["eks"]["nodeInstanceType"] == "m6i.xlarge" != climb_eks.LEGACY_NODE_INSTANCE_TYPE


def test_a_new_stack_gets_the_preset_type_and_records_it():
    p = plan("phase6")
    assert node_types(p) == ["m6i.xlarge"]
    assert engine.public(p.outputs)[climb_eks.OUT_NODE_TYPE] == "m6i.xlarge"


def test_a_deployed_group_keeps_its_type_when_the_key_is_unset():
    previous = deployed_on_large()
    assert previous[climb_eks.OUT_NODE_TYPE] == "m6i.large"
    p = run("phase6", previous)  # the preset says m6i.xlarge; the stack sets nothing
    assert node_types(p) == ["m6i.large"]
    assert p.one(NODE_GROUP, "eks-nodes").inputs["amiType"] == "AL2023_x86_64_STANDARD"
    assert engine.public(p.outputs)[climb_eks.OUT_NODE_TYPE] == "m6i.large"


def test_a_group_deployed_before_the_output_keeps_the_old_preset_type():
    previous = {k: v for k, v in deployed_on_large().items() if k != climb_eks.OUT_NODE_TYPE}
    assert node_types(run("phase6", previous)) == [climb_eks.LEGACY_NODE_INSTANCE_TYPE]


def test_an_explicit_change_of_a_deployed_group_is_refused_naming_the_key():
    with pytest.raises(ConfigError) as err:
        run("phase6", deployed_on_large(), eks={"nodeInstanceType": "m6i.xlarge"})
    found = str(err.value)
    assert "scaleladder:eks.nodeInstanceType" in found and "runs m6i.large" in found
    assert "scaleladder:eks.replaceNodeGroupFrom" in found and "scaleladder:eks.nodesMin" in found
    assert "allowed now: m6i.large" in found


def test_an_architecture_change_is_refused_too():
    # m7g is Graviton: amiType AL2023_ARM_64_STANDARD, a new group as well.
    with pytest.raises(ConfigError, match=r"scaleladder:eks\.nodeInstanceType"):
        run("phase6", deployed_on_large(), eks={"nodeInstanceType": "m7g.xlarge"}, app=MULTI_ARCH)


def test_the_same_explicit_type_is_no_change():
    assert node_types(run("phase6", deployed_on_large(), eks={"nodeInstanceType": "m6i.large"})) == ["m6i.large"]


def test_a_confirmed_replacement_goes_ahead_and_records_the_new_type():
    p = run("phase6", deployed_on_large(), eks={"nodeInstanceType": "m6i.xlarge", "nodesMin": 6,
                                                "replaceNodeGroupFrom": "m6i.large"})
    assert node_types(p) == ["m6i.xlarge"]
    assert p.one(NODE_GROUP, "eks-nodes").inputs["scalingConfig"]["minSize"] == 6
    assert engine.public(p.outputs)[climb_eks.OUT_NODE_TYPE] == "m6i.xlarge"
    # A confirmation naming another type than the deployed one confirms nothing.
    with pytest.raises(ConfigError, match=r"scaleladder:eks\.nodeInstanceType"):
        run("phase6", deployed_on_large(), eks={"nodeInstanceType": "m6i.xlarge", "replaceNodeGroupFrom": "m5.large"})


def test_the_climb_from_phase5_is_a_new_group_on_the_preset_type():
    previous = engine.public(plan("phase5").outputs)
    assert node_types(run("phase6", previous, climb={"keepEc2Tier": True})) == ["m6i.xlarge"]


def test_recommend_says_a_node_switch_replaces_the_node_group():
    from ladder import recommend as rec

    cfg = engine.validate_stack(engine.read_stack("phase6"), stack="phase6")
    for candidate in ("m7g.xlarge", "m6a.xlarge"):  # across and within the architecture: both replace the group
        found = rec.caveats(cfg, "eks.nodeInstanceType", "m6i.xlarge", candidate)
        assert rec.NODE_GROUP_CAVEAT in found, candidate
    assert "aws:eks/nodeGroup" in rec.NODE_GROUP_CAVEAT and "eks.replaceNodeGroupFrom" in rec.NODE_GROUP_CAVEAT
    assert rec.NODE_GROUP_CAVEAT not in rec.caveats(cfg, "workers.instanceType", "m6i.large", "m6a.large")
    line = rec.savings_line({"key": "eks.nodeInstanceType", "from": "m6i.xlarge", "to": "m6a.xlarge",
                             "monthly_usd_saved": 1.0, "percent": 0.1,
                             "caveats": rec.caveats(cfg, "eks.nodeInstanceType", "m6i.xlarge", "m6a.xlarge")})
    assert "replaces aws:eks/nodeGroup" in line


def test_ladder_diff_names_a_node_group_replacement_as_a_capacity_event():
    from ladder import diff

    a = plan("phase6", eks={"nodeInstanceType": "m6i.large"}).to_json()
    b = plan("phase6").to_json()  # new stacks: the preset's m6i.xlarge
    d = diff.compare(a, b)
    group = next(r for r in d.resources if r.type == NODE_GROUP)
    assert group.action == "replace"
    events = d.capacity_events
    assert [(e.type, e.name) for e in events] == [(NODE_GROUP, "eks-nodes")]
    assert "instanceTypes" in events[0].reason and "minSize" in events[0].reason
    assert "Capacity event" in diff.markdown(d) and "node group REPLACED" in diff.markdown(d)
    assert d.to_json()["capacity"][0]["name"] == "eks-nodes"
    # An in-place change (scaling only) is no capacity event.
    assert not diff.compare(b, plan("phase6", eks={"nodesMax": 12}).to_json()).capacity_events
