"""HostRole: the least-privilege instance role a tier's EC2 hosts run with.

SSM Session Manager instead of SSH; read access to exactly the secrets the tier
needs; PutMetricData only into scaleladder's own namespaces; pull of the one ECR
repository the app image lives in, when it lives in ECR.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_aws as aws

from ladder import credentials, metrics
from ladder.registry import ecr_statements

from .base import Tags, Tier

EC2_TRUST = json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
})
SSM_CORE = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"


# Which database secrets a host of each kind may read (ladder/credentials.py layouts). The
# master secret is read only where the bootstrap runs: the app host in phases 1-2 (a oneshot
# unit before the containers; the containers never see it), the PgBouncer hosts from phase 3.
# The bootstrap also needs the app and PgBouncer secrets (it sets their roles' passwords).
BOOTSTRAP_SECRETS = (credentials.SECRET_MASTER, credentials.SECRET_APP, credentials.SECRET_APP_RO,
                     credentials.SECRET_PGBOUNCER)
APP_SECRETS = (credentials.SECRET_APP, credentials.SECRET_APP_RO)
PGBOUNCER_SECRETS = BOOTSTRAP_SECRETS  # bootstrap + its auth file (db-pgbouncer)


def db_secrets_for(host: Literal["app", "pgbouncer"], db_secret_arns: Mapping[str, pulumi.Input[str]], *,
                   bootstraps: bool) -> list[pulumi.Input[str]]:
    """The database secret ARNs a `host`'s role may read; `bootstraps`: this host runs the bootstrap."""
    names = PGBOUNCER_SECRETS if host == "pgbouncer" else (BOOTSTRAP_SECRETS if bootstraps else APP_SECRETS)
    return [db_secret_arns[n] for n in names]


@dataclass(frozen=True)
class HostRoleArgs:
    secret_arns: Sequence[pulumi.Input[str]]
    tags: Tags
    image: str | None = None  # the image the hosts pull: ECR images get pull rights on their repository
    # SSM parameters the hosts read at boot (components/ops.py: the app image of hosts without an
    # Auto Scaling group); read only, written by pulumi up and ansible/deploy.yml.
    parameter_arns: Sequence[pulumi.Input[str]] = ()
    # CloudWatch Logs groups the hosts write (docker's awslogs driver: container logs); the
    # hosts may add streams and events there, nothing else (no group creation or deletion).
    log_group_arns: Sequence[pulumi.Input[str]] = ()


def host_policy(secret_arns: Sequence[str], image: str | None = None, parameter_arns: Sequence[str] = (),
                log_group_arns: Sequence[str] = ()) -> str:
    statements = [{
        "Sid": "PublishScaleLadderMetrics",
        "Effect": "Allow",
        "Action": "cloudwatch:PutMetricData",
        "Resource": "*",
        # The contract's namespaces exactly (ladder/metrics.py; a list under StringEquals matches any one).
        "Condition": {"StringEquals": {"cloudwatch:namespace": list(metrics.NAMESPACES)}},
    }]
    if secret_arns:
        statements.append({"Sid": "ReadOwnSecrets", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                           "Resource": sorted(secret_arns)})
    if log_group_arns:
        # CreateLogStream acts on the group, PutLogEvents on its streams (`<group arn>:log-stream:<name>`):
        # Service Authorization Reference, "Actions defined by Amazon CloudWatch Logs".
        statements.append({"Sid": "WriteOwnLogGroups", "Effect": "Allow",
                           "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                           "Resource": sorted([*log_group_arns, *(f"{a}:log-stream:*" for a in log_group_arns)])})
    if parameter_arns:
        statements.append({"Sid": "ReadBootParameters", "Effect": "Allow", "Action": "ssm:GetParameter",
                           "Resource": sorted(parameter_arns)})
    statements.extend(ecr_statements(image) if image else [])  # type: ignore[arg-type]  # statement dicts of mixed value types
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


class HostRole(Tier):
    TOKEN = "scaleladder:identity:HostRole"

    def __init__(self, name: str, args: HostRoleArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(name, opts)
        role = aws.iam.Role(f"{name}-role", assume_role_policy=EC2_TRUST, tags=args.tags, opts=self.child())
        aws.iam.RolePolicyAttachment(f"{name}-ssm", role=role.name, policy_arn=SSM_CORE, opts=self.child())
        aws.iam.RolePolicy(f"{name}-access", role=role.id,
                           policy=pulumi.Output.all(pulumi.Output.all(*args.secret_arns),
                                                    pulumi.Output.all(*args.parameter_arns),
                                                    pulumi.Output.all(*args.log_group_arns)).apply(
                               lambda v: host_policy(v[0], args.image, v[1], v[2])),
                           opts=self.child())
        self.profile = aws.iam.InstanceProfile(f"{name}-profile", role=role.name, tags=args.tags, opts=self.child())
        self.role_arn = role.arn
        self.profile_arn = self.profile.arn
        self.register_outputs({"roleArn": role.arn, "instanceProfileArn": self.profile.arn})
