"""Instance families teams pick (issue 17 item 4): the catalog's types are accepted where they are
priced, hosts boot the Ubuntu AMI of their CPU architecture, a kept AMI reaches only hosts of its
architecture, `hosts.ami` is refused over two architectures, and phase 1's VM never flips its
architecture in place."""

from __future__ import annotations

from typing import Any

import pytest

from components.app_host import UBUNTU_AMI_PARAMETERS, vm_architecture_problems
from ladder import aws_facts, climb, engine, mocks
from ladder.config import ConfigError
from ladder.prices import catalog

from .plans import plan, plan_after, stack_values

TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
INSTANCE = "aws:ec2/instance:Instance"
KEPT_X86_AMI = "ami-0aaaabbbbccccdddd"
# The app image has an arm64 build: arm64 app/worker/node types are refused without it (config.image_platform_problems).
MULTI_ARCH = {"imagePlatforms": ["linux/amd64", "linux/arm64"]}


def canonical(arch: str) -> str:
    """What the mocked SSM answers for Canonical's parameter of `arch` (ladder/mocks.py)."""
    return "ami-0" + mocks._short(UBUNTU_AMI_PARAMETERS[arch], 16)


def validate(stack: str, region: str = "us-east-1", **overrides: Any) -> None:
    engine.validate_stack({**stack_values(stack, **overrides), "aws:region": region})


def refusal(stack: str, region: str = "us-east-1", **overrides: Any) -> str:
    with pytest.raises(ConfigError) as err:
        validate(stack, region, **overrides)
    return str(err.value)


def run(stack: str, previous: dict[str, Any], **overrides: Any) -> engine.Plan:
    return plan_after(stack, previous, **overrides)


def image_ids(p: engine.Plan) -> dict[str, tuple[str, str]]:
    return {t.name: (t.inputs["instanceType"], t.inputs["imageId"]) for t in p.of_type(TEMPLATE)}


# --- facts ------------------------------------------------------------------------------------

def test_graviton_families_are_arm64_and_intel_amd_families_x86_64():
    # AWS naming ("Amazon EC2 instance type naming conventions"): g = AWS Graviton, i = Intel, a = AMD.
    for itype in ("t4g.small", "m6g.large", "c6g.xlarge", "m7g.large", "c7g.large", "r7g.2xlarge"):
        assert aws_facts.ec2_architecture(itype) == "arm64", itype
    for itype in ("t3.medium", "t3a.large", "m6i.large", "c6i.large", "m6a.large", "m7a.large", "m7i.large",
                  "c7i.large", "r7i.xlarge", "r6i.2xlarge"):
        assert aws_facts.ec2_architecture(itype) == "x86_64", itype
    with pytest.raises(ValueError, match="EC2_FAMILY_ARCHITECTURE"):
        aws_facts.ec2_architecture("x2gd.large")  # unknown family: no guess


def test_every_priced_type_has_its_architecture_size_and_memory_facts():
    cat = catalog()
    for region in cat.regions:
        for itype in cat.instance_types(region, "ec2_instance_hour"):
            assert aws_facts.ec2_architecture(itype) in ("arm64", "x86_64")
            assert itype in aws_facts.EC2_VCPUS and itype in aws_facts.EKS_MAX_PODS, itype
        for db_class in cat.instance_types(region, "rds_postgres_instance_hour"):
            assert db_class in aws_facts.RDS_CLASS_MEMORY_GIB, db_class


def test_added_families_are_priced_from_their_sources():
    cat = catalog()
    # Hand-copied from the cited sources (ladder/catalog/prices.yaml comments), us-east-1.
    expected = {("ec2_instance_hour", "t4g.medium"): 0.0336, ("ec2_instance_hour", "m7g.large"): 0.0816,
                ("ec2_instance_hour", "c7g.large"): 0.0725, ("ec2_instance_hour", "r7g.xlarge"): 0.2142,
                ("ec2_instance_hour", "m7i.large"): 0.1008, ("ec2_instance_hour", "t3a.medium"): 0.0376,
                ("rds_postgres_instance_hour", "db.m7g.large"): 0.168,
                ("rds_postgres_instance_hour", "db.r7g.large"): 0.239,
                ("rds_postgres_instance_hour", "db.t3.large"): 0.145,
                ("elasticache_node_hour", "cache.m7g.large"): 0.158,
                ("elasticache_node_hour", "cache.r7g.xlarge"): 0.437}
    for (table, key), usd in expected.items():
        assert cat.price("us-east-1", table, key) == pytest.approx(usd), key
    assert cat.price("eu-central-1", "ec2_instance_hour", "m7g.large") == pytest.approx(0.0978)


# --- the config accepts what is priced and names what is allowed ------------------------------

@pytest.mark.parametrize("region", sorted(catalog().regions))
def test_config_accepts_every_type_priced_in_the_region(region):
    cat = catalog()
    for itype in cat.instance_types(region, "ec2_instance_hour"):
        validate("phase2", region, workers={"instanceType": itype}, app=MULTI_ARCH)
    for db_class in cat.instance_types(region, "rds_postgres_instance_hour"):
        validate("phase2", region, database={"instanceClass": db_class})
    for node in cat.instance_types(region, "elasticache_node_hour"):
        validate("phase2", region, redis={"nodeType": node})


def test_config_refuses_an_unpriced_type_naming_the_key_and_the_allowed_list():
    found = refusal("phase2", workers={"instanceType": "m5.large"})
    assert "scaleladder:workers.instanceType" in found and "'m5.large'" in found
    assert "allowed:" in found and "t4g.small" in found and "m7g.large" in found
    found = refusal("phase3", database={"instanceClass": "db.m5.large"})
    assert "scaleladder:database.instanceClass" in found and "db.m7g.large" in found
    # Priced in us-east-1 only: refused in Ireland, whose block says why it lacks it.
    found = refusal("phase2", "eu-west-1", workers={"instanceType": "t4g.small"}, app=MULTI_ARCH)
    assert "scaleladder:workers.instanceType" in found and "eu-west-1" in found and "t3.small" in found
    assert "t4g.small" not in found.split("allowed:")[1]


# --- AMIs per architecture --------------------------------------------------------------------

def test_each_tier_boots_the_ubuntu_ami_of_its_architecture():
    p = plan("phase3", workers={"instanceType": "t4g.small"}, pgbouncer={"instanceType": "t4g.small"}, app=MULTI_ARCH)
    assert canonical("arm64") != canonical("x86_64")
    assert image_ids(p) == {"fleet-app": ("t3.large", canonical("x86_64")),
                            "fleet-workers": ("t4g.small", canonical("arm64")),
                            "pgbouncer": ("t4g.small", canonical("arm64"))}
    assert p.outputs[climb.OUT_AMI] == canonical("x86_64")
    assert p.outputs[climb.OUT_AMI_ARM64] == canonical("arm64")
    # Canonical's arm64 parameter path (discourse.ubuntu.com/t/15507: ARCH "amd64 or arm64").
    assert UBUNTU_AMI_PARAMETERS["arm64"] == \
        "/aws/service/canonical/ubuntu/server/24.04/stable/current/arm64/hvm/ebs-gp3/ami-id"


def test_an_all_x86_stack_keeps_its_single_recorded_ami_output():
    p = plan("phase2")
    assert {ami for _, ami in image_ids(p).values()} == {canonical("x86_64")}
    assert climb.OUT_AMI_ARM64 not in p.outputs


def test_the_kept_ami_reaches_only_hosts_of_its_architecture():
    previous = {**engine.public(plan("phase2").outputs), climb.OUT_AMI: KEPT_X86_AMI}
    p = run("phase2", previous, workers={"instanceType": "t4g.small"}, app=MULTI_ARCH)
    assert image_ids(p) == {"fleet-app": ("t3.medium", KEPT_X86_AMI),
                            "fleet-workers": ("t4g.small", canonical("arm64"))}
    # The next `up` keeps the arm64 AMI that one recorded, even when Canonical publishes another.
    again = run("phase2", {**engine.public(p.outputs), climb.OUT_AMI_ARM64: "ami-0123412341234abcd"},
                workers={"instanceType": "t4g.small"}, app=MULTI_ARCH)
    assert image_ids(again)["fleet-workers"] == ("t4g.small", "ami-0123412341234abcd")
    assert image_ids(again)["fleet-app"] == ("t3.medium", KEPT_X86_AMI)


def test_nginx_mode_lb_host_and_app_hosts_get_their_own_architectures_ami():
    p = plan("phase2", loadBalancer="nginx", appTier={"instanceType": "t4g.medium"}, app=MULTI_ARCH)
    images = {r.name: (r.inputs["instanceType"], r.inputs["ami"]) for r in p.of_type(INSTANCE)}
    assert images["fleet-nginx-lb"] == ("t3.small", canonical("x86_64"))
    assert {v for k, v in images.items() if k.startswith("fleet-app-")} == {("t4g.medium", canonical("arm64"))}


def test_hosts_ami_over_two_architectures_is_refused_naming_the_keys():
    found = refusal("phase3", hosts={"ami": "ami-0123456789abcdef0"}, workers={"instanceType": "t4g.small"},
                    app=MULTI_ARCH)
    assert "scaleladder:hosts.ami" in found and "allowed: unset" in found
    assert "scaleladder:workers.instanceType t4g.small" in found and "scaleladder:appTier.instanceType t3.large" in found
    # nginx mode's LB host is x86_64 (t3.small): arm64 app hosts and one AMI cannot go together.
    found = refusal("phase2", hosts={"ami": "ami-0123456789abcdef0"}, loadBalancer="nginx",
                    appTier={"instanceType": "t4g.medium"}, workers={"instanceType": "t4g.small"}, app=MULTI_ARCH)
    assert "scaleladder:hosts.ami" in found and "scaleladder:loadBalancer t3.small" in found
    # One architecture everywhere: the pinned AMI boots every host.
    arm = {"appTier": {"instanceType": "t4g.large"}, "workers": {"instanceType": "t4g.small"},
           "pgbouncer": {"instanceType": "t4g.small"}, "app": MULTI_ARCH}
    pinned = plan("phase3", hosts={"ami": "ami-0123456789abcdef0"}, **arm)
    assert {ami for _, ami in image_ids(pinned).values()} == {"ami-0123456789abcdef0"}
    assert pinned.outputs[climb.OUT_AMI_ARM64] == "ami-0123456789abcdef0" and climb.OUT_AMI not in pinned.outputs


# --- phase 1's VM keeps its architecture ------------------------------------------------------

def test_phase1_vm_architecture_flip_is_refused_naming_the_key_and_allowed_types():
    previous = engine.public(plan("phase1").outputs)
    assert previous[climb.OUT_SINGLE_HOST_TYPE] == "t3.medium"
    with pytest.raises(ConfigError) as err:
        run("phase1", previous, appTier={"instanceType": "t4g.medium"}, app=MULTI_ARCH)
    found = str(err.value)
    assert "scaleladder:appTier.instanceType" in found and "t3.medium (x86_64)" in found
    allowed = found.split("allowed: ")[1].split(", ")
    assert "t3a.medium" in allowed and "m7i.large" in allowed and "t4g.medium" not in allowed
    # Within the architecture EC2 changes the type in place: accepted.
    assert run("phase1", previous, appTier={"instanceType": "t3a.medium"}).one(INSTANCE, "app").inputs[
        "instanceType"] == "t3a.medium"
    # A first `up` may pick either architecture; it boots that architecture's AMI.
    fresh = plan("phase1", appTier={"instanceType": "t4g.medium"}, app=MULTI_ARCH)
    assert fresh.one(INSTANCE, "app").inputs["ami"] == canonical("arm64")


def test_vm_architecture_rule_for_old_stacks_and_the_way_back():
    allowed = catalog().instance_types("us-east-1", "ec2_instance_hour")
    # Deployed before singleHostType existed: it ran an x86_64 type.
    assert vm_architecture_problems(1, "t4g.medium", None, 1, allowed)
    assert not vm_architecture_problems(1, "t3a.medium", None, 1, allowed)
    # Never deployed, or deployed beyond phase 1 without a kept VM: a new VM, any architecture.
    assert not vm_architecture_problems(1, "t4g.medium", None, None, allowed)
    assert not vm_architecture_problems(1, "t4g.medium", None, 2, allowed)
    # 2 -> 1 with the VM kept (its type recorded): it keeps its architecture too.
    assert vm_architecture_problems(1, "t4g.medium", "t3.medium", 2, allowed)
    assert not vm_architecture_problems(2, "t4g.medium", "t3.medium", 1, allowed)


# --- EKS nodes read the same fact -------------------------------------------------------------

def test_eks_node_ami_type_follows_the_architecture_fact():
    from components.eks import ami_type

    for node in ("t4g.large", "m6g.xlarge", "m7g.xlarge", "c7g.2xlarge", "r7g.large"):
        assert ami_type(node) == "AL2023_ARM_64_STANDARD", node
    for node in ("m6i.xlarge", "c7i.large", "m7a.large", "t3a.large"):
        assert ami_type(node) == "AL2023_x86_64_STANDARD", node
    group = plan("phase6", eks={"nodeInstanceType": "m7g.xlarge"}, app=MULTI_ARCH).one("aws:eks/nodeGroup:NodeGroup", "eks-nodes")
    assert group.inputs["amiType"] == "AL2023_ARM_64_STANDARD" and group.inputs["instanceTypes"] == ["m7g.xlarge"]
