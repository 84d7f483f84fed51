"""HostRole: the least-privilege instance role a tier's EC2 hosts run with.

SSM Session Manager instead of SSH; read access to exactly the secrets the tier
needs; PutMetricData only into scaleladder's own namespaces; pull of the one ECR
repository the app image lives in, when it lives in ECR.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Sequence

import pulumi
import pulumi_aws as aws

from ladder.registry import ecr_statements

from .base import Tags, Tier

EC2_TRUST = json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
})
SSM_CORE = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"


@dataclass(frozen=True)
class HostRoleArgs:
    secret_arns: Sequence[pulumi.Input[str]]
    tags: Tags
    image: str | None = None  # the image the hosts pull: ECR images get pull rights on their repository


def host_policy(secret_arns: Sequence[str], image: str | None = None) -> str:
    statements = [{
        "Sid": "PublishScaleLadderMetrics",
        "Effect": "Allow",
        "Action": "cloudwatch:PutMetricData",
        "Resource": "*",
        "Condition": {"StringLike": {"cloudwatch:namespace": "ScaleLadder/*"}},
    }]
    if secret_arns:
        statements.append({"Sid": "ReadOwnSecrets", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                           "Resource": sorted(secret_arns)})
    statements.extend(ecr_statements(image) if image else [])
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


class HostRole(Tier):
    TOKEN = "scaleladder:identity:HostRole"

    def __init__(self, name: str, args: HostRoleArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(name, opts)
        role = aws.iam.Role(f"{name}-role", assume_role_policy=EC2_TRUST, tags=args.tags, opts=self.child())
        aws.iam.RolePolicyAttachment(f"{name}-ssm", role=role.name, policy_arn=SSM_CORE, opts=self.child())
        aws.iam.RolePolicy(f"{name}-access", role=role.id,
                           policy=pulumi.Output.all(*args.secret_arns).apply(lambda arns: host_policy(arns, args.image)),
                           opts=self.child())
        self.profile = aws.iam.InstanceProfile(f"{name}-profile", role=role.name, tags=args.tags, opts=self.child())
        self.role_arn = role.arn
        self.profile_arn = self.profile.arn
        self.register_outputs({"roleArn": role.arn, "instanceProfileArn": self.profile.arn})
