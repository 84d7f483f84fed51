"""Security and data-safety properties of every preset stack, read from the offline plan."""

from __future__ import annotations

import pytest

from ladder import engine
from ladder.topology import INTERNET

from .plans import existing_stacks, ingress, plan, scan_strings, user_data_texts

EC2_STACKS = [s for s in existing_stacks() if engine.read_stack(s)["scaleladder:phase"] <= 5]


@pytest.mark.parametrize("stack", existing_stacks())
def test_only_the_edge_admits_the_internet_and_only_on_web_ports(stack):
    p = plan(stack)
    rules = ingress(p)
    assert rules, "a stack with no ingress rules serves nobody"
    public = {(tier, port) for tier, port, source in rules if source == INTERNET}
    edge = "app" if p.config.phase == 1 else "lb"
    assert all(tier == edge and port in (80, 443) for tier, port in public), public
    assert not any(port == 22 for _, port, _ in rules), "no SSH: hosts are reached with SSM Session Manager"


@pytest.mark.parametrize("stack", existing_stacks())
def test_data_tier_admits_only_the_tier_in_front(stack):
    p = plan(stack)
    rules = ingress(p)
    db_sources = {source for tier, port, source in rules if tier == "db"}
    redis_sources = {source for tier, port, source in rules if tier == "redis"}
    assert {port for tier, port, _ in rules if tier == "db"} == {5432}
    assert {port for tier, port, _ in rules if tier == "redis"} == {6379}
    phase = p.config.phase
    if phase == 6:
        assert db_sources == redis_sources == {"eks"} or "eks" in db_sources
    elif phase >= 3:
        assert db_sources == {"pgbouncer"}, "from phase 3 only PgBouncer reaches PostgreSQL"
        assert {s for t, port, s in rules if t == "pgbouncer"} == {"pgbouncer-nlb"}
        assert {s for t, port, s in rules if t == "pgbouncer-nlb"} == {"app", "workers"}
    else:
        assert db_sources == ({"app"} if phase == 1 else {"app", "workers"})
    assert INTERNET not in db_sources | redis_sources


@pytest.mark.parametrize("stack", existing_stacks())
def test_nothing_stateful_is_public_and_everything_is_encrypted(stack):
    p = plan(stack)
    private = {s.id for s in p.of_type("aws:ec2/subnet:Subnet") if "private" in s.name}
    for group in p.of_type("aws:rds/subnetGroup:SubnetGroup") + p.of_type("aws:elasticache/subnetGroup:SubnetGroup"):
        assert set(group.inputs["subnetIds"]) <= private, f"{group.name} reaches a public subnet"
    for db in p.of_type("aws:rds/instance:Instance"):
        assert db.inputs["publiclyAccessible"] is False
        assert db.inputs["storageEncrypted"] is True
    primary = p.one("aws:rds/instance:Instance", "db")
    assert primary.inputs["backupRetentionPeriod"] >= 7
    assert primary.inputs["deletionProtection"] is True
    assert primary.inputs["skipFinalSnapshot"] is False and primary.inputs["finalSnapshotIdentifier"]
    # Our own master password (RDS refuses replicas of a managed one): a secret, never plain text.
    assert "manageMasterUserPassword" not in primary.inputs and isinstance(primary.inputs["password"], engine.Secret)
    assert primary.options["protect"] and primary.options["retainOnDelete"]
    redis = p.one("aws:elasticache/replicationGroup:ReplicationGroup")
    assert redis.inputs["atRestEncryptionEnabled"] is True and redis.inputs["transitEncryptionEnabled"] is True
    assert isinstance(redis.inputs["authToken"], engine.Secret), "the Redis auth token must stay a secret"
    assert redis.options["protect"] and redis.options["retainOnDelete"]


@pytest.mark.parametrize("stack,overrides", [(s, {}) for s in EC2_STACKS] + [("phase2", {"loadBalancer": "nginx"})])
def test_every_host_requires_imdsv2_encrypts_its_root_volume_and_has_its_role(stack, overrides):
    p = plan(stack, **overrides)
    hosts = p.of_type("aws:ec2/instance:Instance") + p.of_type("aws:ec2/launchTemplate:LaunchTemplate")
    assert hosts
    for h in hosts:
        assert h.inputs["metadataOptions"]["httpTokens"] == "required", h.name
        if h.type == "aws:ec2/instance:Instance":
            assert not h.inputs["iamInstanceProfile"].startswith("arn:"), "instances take the profile name"
            assert h.inputs["rootBlockDevice"]["encrypted"] is True
            assert h.inputs["rootBlockDevice"]["volumeType"] == "gp3"
        else:
            assert h.inputs["iamInstanceProfile"]["arn"].startswith("arn:aws:iam::"), "templates take the ARN"
            ebs = [m["ebs"] for m in h.inputs["blockDeviceMappings"]]
            assert ebs and all(e["encrypted"] == "true" and e["volumeType"] == "gp3" for e in ebs), h.name
        assert "keyName" not in h.inputs, "no SSH key pairs"


@pytest.mark.parametrize("stack", existing_stacks())
def test_secret_values_never_appear_in_plain_text(stack):
    p = plan(stack)
    secrets = set()
    for r in p.resources:
        if r.type == "random:index/randomPassword:RandomPassword":
            from ladder.mocks import AwsMocks

            secrets.add(AwsMocks("x")._computed(r.type, r.name, {})["result"])
    assert secrets, "expected the Redis auth token to be generated"
    plain = [s for r in p.resources for s in scan_strings(engine.public(r.inputs))]
    plain += list(scan_strings(engine.public(p.outputs))) + list(user_data_texts(p).values())
    for secret in secrets:
        assert not any(secret in text for text in plain), "a secret leaked into plain inputs, outputs or user data"


def test_components_register_what_the_next_tier_needs():
    p = plan("phase2")
    for component in [r for r in p.resources if not r.custom and r.type.startswith("scaleladder:")]:
        assert component.outputs, f"{component.type} registers no outputs"
        assert p.children(component), f"{component.type} parents no resources"
