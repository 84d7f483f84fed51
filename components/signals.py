"""What the program owns so the stack's signals work: log groups with retention (a group AWS or
Docker would create on first write keeps logs forever) and the metrics publisher the app hosts
run (ladder/metrics.py, cloudinit/scaleladder-metrics)."""

from __future__ import annotations

import base64
from typing import Any

import pulumi
import pulumi_aws as aws

from ladder import userdata
from ladder.metrics import container_log_group

from .base import Tags
from .database import LOG_EXPORTS as RDS_LOG_EXPORTS
from .deployed import DB_IDENTIFIER_OUTPUT, DB_LOG_GROUPS_OUTPUT

# SSM PutParameter: a Standard parameter's value holds at most 4 KB (Systems Manager User Guide,
# "Managing parameter tiers": standard 4 KB, advanced 8 KB). The publisher ships gzip + base64.
STANDARD_PARAMETER_MAX = 4096


def container_logs(prefix: str, retention_days: int, tags: Tags) -> aws.cloudwatch.LogGroup:
    """The app hosts' container logs (docker's awslogs driver, /etc/docker/daemon.json); the hosts
    may only add streams and events to it (components/identity.py)."""
    return aws.cloudwatch.LogGroup("container-logs", name=container_log_group(prefix), retention_in_days=retention_days,
                                   tags=tags)


def publisher_parameter_name(prefix: str) -> str:
    return f"/{prefix}/metrics-publisher"


def publisher_value() -> str:
    """cloudinit/scaleladder-metrics, gzip (deterministic: ladder.userdata.compress) in base64."""
    value = base64.b64encode(userdata.compress(userdata.CLOUDINIT.joinpath("scaleladder-metrics").read_text())).decode()
    if len(value) > STANDARD_PARAMETER_MAX:
        raise ValueError(f"cloudinit/scaleladder-metrics is {len(value)} bytes gzip+base64: a Standard SSM parameter "
                         f"holds {STANDARD_PARAMETER_MAX}; shorten it")
    return value


def metrics_publisher(prefix: str, tags: Tags) -> aws.ssm.Parameter:
    """The publisher script the app hosts fetch at service start: not in user data, which is
    within a few hundred bytes of EC2's 16 KB limit. A new script changes this parameter in place
    (hosts pick it up at the next service start), never the hosts' user data."""
    return aws.ssm.Parameter("metrics-publisher", name=publisher_parameter_name(prefix), type="String",
                             tier="Standard", insecure_value=publisher_value(), tags=tags)  # code, not a secret: diffable


def deployed_rds_identifier(identifier: str | None, address: str | None) -> str | None:
    """The deployed primary's identifier: the output `dbIdentifier`, else the first DNS label of
    `dbAddress` (RDS endpoints are `<identifier>.<hash>.<region>.rds.amazonaws.com`; a stack
    deployed from a599ad3 has an auto-named `db-xxxxxxx` primary and only that output), else None."""
    if identifier:
        return str(identifier)
    if address:
        return str(address).split(".", 1)[0]
    return None


def rds_identifier(previous: pulumi.StackReference, prefix: str) -> pulumi.Output[str]:
    """The RDS primary's identifier: the deployed one (`deployed_rds_identifier`; a changed
    identifier replaces the instance, ladder/aws_facts.py), else `<prefix>-db` for a new stack.
    Fixed, so the program can make its log groups before RDS exports to them."""
    return pulumi.Output.all(previous.get_output(DB_IDENTIFIER_OUTPUT), previous.get_output("dbAddress")).apply(
        lambda v: deployed_rds_identifier(*v) or f"{prefix}-db")


def rds_log_groups_managed(recorded: Any, identifier: str | None, address: str | None, imported: bool) -> bool:
    """Whether the program owns the primary's /aws/rds/instance/<id>/<log> groups: a new stack
    (it makes them before the instance), the groups the last `up` recorded (output `dbLogGroups`),
    a stack whose last `up` wrote `dbIdentifier` but not `dbLogGroups` (the code that made both),
    or `logs.rdsLogGroupsImported`. A primary deployed from a599ad3 (only `dbAddress`) already
    has them, made by RDS (CloudWatch Logs would answer ResourceAlreadyExistsException): left alone."""
    if imported:
        return True
    if recorded is not None:
        return bool(recorded)
    return bool(identifier) or not address


def rds_log_groups(previous: pulumi.StackReference, imported: bool, stack: str, project: str) -> pulumi.Output[bool]:
    """`rds_log_groups_managed` of the last outputs; when the groups are left alone, one warning
    with the `pulumi import` commands that adopt them (then `scaleladder:logs.rdsLogGroupsImported`)."""
    def decide(recorded: Any, identifier: str | None, address: str | None) -> bool:
        managed = rds_log_groups_managed(recorded, identifier, address, imported)
        ident = deployed_rds_identifier(identifier, address)
        if not managed and ident:
            parent = f"urn:pulumi:{stack}::{project}::scaleladder:data:Database::db"
            commands = "; ".join(
                f"pulumi import aws:cloudwatch/logGroup:LogGroup db-{log}-log /aws/rds/instance/{ident}/{log} "
                f"--parent 'db={parent}' --protect=false --yes" for log in RDS_LOG_EXPORTS)
            pulumi.log.warn(
                f"RDS made the primary's log groups /aws/rds/instance/{ident}/{{{','.join(RDS_LOG_EXPORTS)}}} "
                f"(retention: never expire); the program leaves them alone. To keep them logs.retentionDays: "
                f"{commands}; then `pulumi config set scaleladder:logs.rdsLogGroupsImported true` and `pulumi up`.")
        return managed

    return pulumi.Output.all(previous.get_output(DB_LOG_GROUPS_OUTPUT), previous.get_output(DB_IDENTIFIER_OUTPUT),
                             previous.get_output("dbAddress")).apply(lambda v: decide(*v))


def pod_metrics_identity(cluster_name: pulumi.Input[str], namespace: str, tags: Tags,
                         opts: pulumi.ResourceOptions | None = None) -> aws.eks.PodIdentityAssociation:
    """Phase 6: the app and worker pods' service account (ladder.metrics.METRICS_SERVICE_ACCOUNT)
    gets a role that may PutMetricData into ScaleLadder/App and nothing else, through Pod
    Identity like the cluster's controllers (components/eks.py): the pods publish the contract's
    metrics themselves (their ConfigMap says METRICS_PUBLISH=cloudwatch)."""
    from ladder.metrics import METRICS_SERVICE_ACCOUNT, put_metric_policy

    from .eks import POD_IDENTITY_TRUST

    role = aws.iam.Role("app-metrics", assume_role_policy=POD_IDENTITY_TRUST, tags=tags, opts=opts)
    grant = aws.iam.RolePolicy("app-metrics", role=role.id, policy=put_metric_policy(), opts=opts)
    return aws.eks.PodIdentityAssociation(
        "app-metrics", cluster_name=cluster_name, namespace=namespace, service_account=METRICS_SERVICE_ACCOUNT,
        role_arn=role.arn, tags=tags, opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[grant])))


# Phase 6 container logs: the Amazon CloudWatch Observability EKS add-on (CloudWatch User Guide,
# "Quick start with the Amazon CloudWatch Observability EKS add-on": Fluent Bit ships container
# logs; from add-on 3.1.0 it takes Pod Identity for service account `cloudwatch-agent` with the
# managed CloudWatchAgentServerPolicy). Its groups are made first, with retention: Fluent Bit
# would create them with none ("Set up Fluent Bit as a DaemonSet": /aws/containerinsights/
# <cluster>/application, host, dataplane; performance holds Container Insights' metric events).
OBSERVABILITY_ADDON = "amazon-cloudwatch-observability"
OBSERVABILITY_SERVICE_ACCOUNT = "cloudwatch-agent"
CLOUDWATCH_AGENT_POLICY = "arn:aws:iam::aws:policy/CloudWatchAgentServerPolicy"
CONTAINER_INSIGHTS_GROUPS = ("application", "host", "dataplane", "performance")


def eks_container_logs(cluster_name: pulumi.Input[str], retention_days: int, tags: Tags,
                       after: list[pulumi.Resource]) -> aws.eks.Addon:
    from .eks import POD_IDENTITY_TRUST

    groups = [aws.cloudwatch.LogGroup(f"eks-logs-{kind}", name=pulumi.Output.concat(
        "/aws/containerinsights/", cluster_name, f"/{kind}"), retention_in_days=retention_days, tags=tags)
        for kind in CONTAINER_INSIGHTS_GROUPS]
    role = aws.iam.Role("eks-cloudwatch-agent", assume_role_policy=POD_IDENTITY_TRUST, tags=tags)
    grant = aws.iam.RolePolicyAttachment("eks-cloudwatch-agent", role=role.name, policy_arn=CLOUDWATCH_AGENT_POLICY)
    return aws.eks.Addon(
        "eks-cloudwatch-observability", cluster_name=cluster_name, addon_name=OBSERVABILITY_ADDON,
        pod_identity_associations=[aws.eks.AddonPodIdentityAssociationArgs(
            role_arn=role.arn, service_account=OBSERVABILITY_SERVICE_ACCOUNT)],
        resolve_conflicts_on_create="OVERWRITE", resolve_conflicts_on_update="OVERWRITE", tags=tags,
        opts=pulumi.ResourceOptions(depends_on=[*groups, grant, *after]))
