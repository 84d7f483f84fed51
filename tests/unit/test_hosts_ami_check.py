"""`hosts.ami` against the host tiers' architecture, through ec2:DescribeImages (moto; review
cost-aws finding 11): an amd64 AMI pinned on all-Graviton tiers is refused before `pulumi up`."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from moto import mock_aws

from ladder import engine
from ladder.preflight.ami import cmd_check_ami, hosts_ami_problems

from .plans import stack_values

ARM_TIERS = {"appTier": {"instanceType": "t4g.large"}, "workers": {"instanceType": "t4g.small"},
             "pgbouncer": {"instanceType": "t4g.small"}, "app": {"imagePlatforms": ["linux/amd64", "linux/arm64"]}}
X86_TIERS = {"pgbouncer": {"instanceType": "t3.small"}}  # the preset's PgBouncer runs Graviton


@pytest.fixture()
def ec2():
    with mock_aws():
        yield boto3.client("ec2", region_name="us-east-1")


def image_of(ec2: Any, arch: str) -> str:
    """One of moto's public images of `arch` whose id the config accepts (ami- and 8 or 17 hex)."""
    return next(i["ImageId"] for i in ec2.describe_images()["Images"]
                if i.get("Architecture") == arch and len(i["ImageId"]) in (12, 21))


def cfg_with(ami: str, **overrides: Any):
    return engine.validate_stack({**stack_values("phase3", hosts={"ami": ami}, **overrides), "aws:region": "us-east-1"})


def test_an_x86_ami_on_graviton_tiers_is_refused_naming_each_tier(ec2):
    found = hosts_ami_problems(cfg_with(image_of(ec2, "x86_64"), **ARM_TIERS), ec2.describe_images)
    (text,) = found
    assert "scaleladder:hosts.ami" in text and "x86_64 image" in text
    for tier in ("appTier.instanceType t4g.large", "workers.instanceType t4g.small", "pgbouncer.instanceType t4g.small"):
        assert f"scaleladder:{tier} (arm64)" in text


def test_an_ami_of_the_tiers_architecture_passes(ec2):
    assert hosts_ami_problems(cfg_with(image_of(ec2, "arm64"), **ARM_TIERS), ec2.describe_images) == []
    assert hosts_ami_problems(cfg_with(image_of(ec2, "x86_64"), **X86_TIERS), ec2.describe_images) == []  # phase 3's x86 preset tiers


def test_an_unknown_ami_is_refused(ec2):
    found = hosts_ami_problems(cfg_with("ami-0123456789abcdef0", **X86_TIERS), lambda **kw: {"Images": []})
    assert "not an image this account can launch" in found[0]


def test_the_command_says_when_aws_cannot_be_asked(monkeypatch, capsys):
    import argparse

    import botocore.exceptions

    def no_credentials(*args: Any, **kwargs: Any) -> Any:
        raise botocore.exceptions.NoCredentialsError()

    values = stack_values("phase3", hosts={"ami": "ami-0123456789abcdef0"}, **X86_TIERS)
    monkeypatch.setattr(engine, "read_stack", lambda stack: values)
    monkeypatch.setattr(boto3, "client", lambda *a, **k: type("C", (), {"describe_images": staticmethod(no_credentials)})())
    assert cmd_check_ami(argparse.Namespace(stack="phase3")) == 2
    assert "not checked" in capsys.readouterr().out
