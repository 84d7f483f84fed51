"""A pinned `hosts.ami` against the hosts' CPU architecture, asked of AWS (review cost-aws finding 11).

The config refuses `hosts.ami` over tiers of two architectures, but cannot see the image's own
architecture: an amd64 AMI pinned on all-Graviton tiers passes it, and RunInstances fails mid-`up`
after the launch templates changed. `ec2:DescribeImages` reports the image's `Architecture`
(EC2 API Reference, DescribeImages / Image: i386 | x86_64 | arm64 | x86_64_mac | arm64_mac); each
host tier's comes from ladder/aws_facts.py `ec2_architecture`.

Not part of the offline preflight (it needs AWS credentials): `python -m ladder check-ami STACK`
runs it against the stack's region before `pulumi up`. AWS unreachable or no credentials: it says
so and exits 2, neither passing nor refusing the AMI.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from .. import aws_facts
from ..cli import COMMANDS
from ..config import StackConfig, key

DescribeImages = Callable[..., dict[str, Any]]


def hosts_ami_problems(cfg: StackConfig, describe_images: DescribeImages) -> list[str]:
    """Each host tier whose architecture is not the pinned AMI's (empty when hosts.ami is unset).
    `describe_images` is an EC2 client's `describe_images` in the stack's region."""
    if not cfg.hosts.ami:
        return []
    images = describe_images(ImageIds=[cfg.hosts.ami]).get("Images", [])
    if not images:
        return [f"{key('hosts.ami')}: {cfg.hosts.ami} is not an image this account can launch in {cfg.region}"]
    arch = images[0].get("Architecture")
    wrong = [f"{key(path)} {itype} ({aws_facts.ec2_architecture(itype)})" for path, itype in cfg.ec2_hosts.items()
             if aws_facts.ec2_architecture(itype) != arch]
    if not wrong:
        return []
    return [f"{key('hosts.ami')}: {cfg.hosts.ami} is an {arch} image and EC2 launches an image only on a type of its "
            f"architecture; these tiers run another: {', '.join(wrong)}; allowed: unset (Canonical's Ubuntu 24.04 "
            f"per architecture), or an AMI of their architecture"]


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("stack", help="stack name (stacks/Pulumi.<stack>.yaml)")


def cmd_check_ami(args: argparse.Namespace) -> int:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from .. import engine

    cfg = engine.validate_stack(engine.read_stack(args.stack), stack=args.stack)
    try:
        problems = hosts_ami_problems(cfg, boto3.client("ec2", region_name=cfg.region).describe_images)
    except ClientError as err:
        code = err.response.get("Error", {}).get("Code", "")
        if code.startswith("InvalidAMIID"):
            problems = [f"{key('hosts.ami')}: {cfg.hosts.ami}: {code}"]
        else:
            print(f"check-ami: AWS refused DescribeImages ({code}); the AMI is not checked")
            return 2
    except BotoCoreError as err:  # no credentials, endpoint unreachable
        print(f"check-ami: AWS unreachable ({type(err).__name__}); the AMI is not checked")
        return 2
    for p in problems:
        print(p)
    if not problems:
        print(f"hosts.ami: {cfg.hosts.ami or 'unset (Canonical per architecture)'}: every host tier matches")
    return 1 if problems else 0


COMMANDS["check-ami"] = ("ask EC2 (DescribeImages) whether a pinned hosts.ami matches every host tier's CPU "
                         "architecture; exit 1 if not, 2 when AWS cannot be asked", _args, cmd_check_ami)
