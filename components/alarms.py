"""Alarms: one CloudWatch alarm per climb trigger that applies to the phase, all
to one SNS topic. Thresholds come from `ladder.phases.TRIGGERS` (shared with
`ladder recommend`), so the alarms and the advice never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from ladder.phases import TRIGGER_BY_KEY

from .base import Tags, Tier

APP_NAMESPACE = "ScaleLadder/App"
HOST_NAMESPACE = "ScaleLadder/Host"


@dataclass(frozen=True)
class AlarmSpec:
    name: str
    trigger: str  # key in ladder.phases.TRIGGERS
    namespace: str = ""
    metric: str = ""
    dimensions: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    statistic: str = "Average"  # or a percentile like "p95"
    scale: float = 1.0  # threshold = trigger threshold x scale (units: ms -> s, % of a limit)
    period: int = 300
    periods: int = 3
    expression: str = ""  # metric math over `inputs` instead of one metric
    inputs: Sequence[tuple[str, str, str, Mapping[str, pulumi.Input[str]]]] = ()  # (id, namespace, metric, dims)


@dataclass(frozen=True)
class AlarmsArgs:
    specs: Sequence[AlarmSpec]
    email: str | None
    tags: Tags


class Alarms(Tier):
    TOKEN = "scaleladder:ops:Alarms"

    def __init__(self, name: str, args: AlarmsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(name, opts)
        # Not encrypted with the AWS-managed aws/sns key: CloudWatch cannot publish to a topic
        # under that key (its policy cannot grant cloudwatch.amazonaws.com), so alarms would
        # fire into nothing. Alarm notifications carry no secrets.
        self.topic = aws.sns.Topic(f"{name}-topic", tags=args.tags, opts=self.child())
        if args.email:
            aws.sns.TopicSubscription(f"{name}-email", topic=self.topic.arn, protocol="email", endpoint=args.email,
                                      opts=self.child())
        self.alarms = [self._alarm(name, spec, args.tags) for spec in args.specs]
        self.register_outputs({"topicArn": self.topic.arn, "alarmCount": len(self.alarms)})

    def _alarm(self, name: str, spec: AlarmSpec, tags: Tags) -> aws.cloudwatch.MetricAlarm:
        trigger = TRIGGER_BY_KEY[spec.trigger]
        common = dict(
            alarm_description=f"Climb trigger: {trigger.description} over {trigger.threshold:g} {trigger.unit}",
            comparison_operator="GreaterThanThreshold", threshold=trigger.threshold * spec.scale,
            evaluation_periods=spec.periods, datapoints_to_alarm=spec.periods, treat_missing_data="notBreaching",
            alarm_actions=[self.topic.arn], ok_actions=[self.topic.arn], tags=tags, opts=self.child())
        if spec.expression:
            queries = [aws.cloudwatch.MetricAlarmMetricQueryArgs(id=i, metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
                namespace=ns, metric_name=metric, dimensions=dict(dims), period=spec.period, stat="Sum"))
                for i, ns, metric, dims in spec.inputs]
            queries.append(aws.cloudwatch.MetricAlarmMetricQueryArgs(id="e1", expression=spec.expression,
                                                                      label=trigger.description, return_data=True))
            return aws.cloudwatch.MetricAlarm(f"{name}-{spec.name}", metric_queries=queries, **common)  # type: ignore[call-overload]  # pulumi stubs: Input/Output types the SDK accepts at runtime
        stat = {"extended_statistic": spec.statistic} if spec.statistic.startswith("p") else {"statistic": spec.statistic}
        return aws.cloudwatch.MetricAlarm(f"{name}-{spec.name}", namespace=spec.namespace, metric_name=spec.metric,  # type: ignore[call-overload]  # pulumi stubs: Input/Output types the SDK accepts at runtime
                                          dimensions=dict(spec.dimensions), period=spec.period, **stat, **common)


# -- the specs each tier contributes -------------------------------------------

def host_alarms(dimension: str, value: pulumi.Input[str], label: str) -> list[AlarmSpec]:
    """CPU (EC2's own metric) and memory (published by the hosts) for one host or group."""
    return [
        AlarmSpec(f"{label}-cpu", "cpuPercent", "AWS/EC2", "CPUUtilization", {dimension: value}),
        AlarmSpec(f"{label}-memory", "memoryPercent", HOST_NAMESPACE, "MemoryUtilization", {dimension: value}),
    ]


def app_metric_alarms(stack: str) -> list[AlarmSpec]:
    """Latency and errors from the app's own metrics, where no ALB measures them (phase 1, nginx LB, EKS)."""
    dims = {"Stack": stack}
    return [
        AlarmSpec("p95-latency", "p95LatencyMs", APP_NAMESPACE, "RequestLatency", dims, statistic="p95", periods=3),
        AlarmSpec("error-rate", "errorRatePercent", APP_NAMESPACE, "ErrorRate", dims, periods=3),
    ]


def alb_alarms(lb_suffix: pulumi.Input[str]) -> list[AlarmSpec]:
    dims = {"LoadBalancer": lb_suffix}
    return [
        # TargetResponseTime is in seconds; the trigger is in ms.
        AlarmSpec("p95-latency", "p95LatencyMs", "AWS/ApplicationELB", "TargetResponseTime", dims, statistic="p95",
                  scale=0.001),
        AlarmSpec("error-rate", "errorRatePercent", expression="100 * errors / IF(requests > 0, requests, 1)",
                  inputs=(("errors", "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", dims),
                          ("requests", "AWS/ApplicationELB", "RequestCount", dims))),
    ]


def queue_alarm(stack: str) -> AlarmSpec:
    return AlarmSpec("queue-depth", "queueDepth", APP_NAMESPACE, "QueueWaiting", {"Stack": stack}, periods=3)


def database_alarms(primary_id: pulumi.Input[str], max_connections: int,
                    replica_ids: Sequence[pulumi.Input[str]]) -> list[AlarmSpec]:
    specs = [
        AlarmSpec("db-connections", "dbConnectionsPercent", "AWS/RDS", "DatabaseConnections",
                  {"DBInstanceIdentifier": primary_id}, statistic="Maximum", scale=max_connections / 100, periods=2),
        AlarmSpec("db-cpu", "cpuPercent", "AWS/RDS", "CPUUtilization", {"DBInstanceIdentifier": primary_id}),
    ]
    specs += [AlarmSpec(f"db-replica-{i}-lag", "replicaLagSeconds", "AWS/RDS", "ReplicaLag",
                        {"DBInstanceIdentifier": rid}, statistic="Maximum", period=60, periods=3)
              for i, rid in enumerate(replica_ids)]
    return specs


def redis_node_ids(member_clusters: pulumi.Input[list[str]], nodes: int) -> list[pulumi.Output[str]]:
    """The group's node ids as AWS reports them (`member_clusters`), one alarm each: read from
    the group, not derived from a naming scheme, so they stay right after the in-place move
    to cluster mode. `nodes` (from the config) fixes how many alarms there are."""
    def nth(ids: list[str] | None, i: int) -> str:
        ids = sorted(ids or [])
        return ids[min(i, len(ids) - 1)] if ids else ""  # fewer live nodes than configured: mid-update

    members = pulumi.Output.from_input(member_clusters)
    return [members.apply(lambda ids, i=i: nth(ids, i)) for i in range(nodes)]  # type: ignore[misc]  # pulumi stubs: Input/Output types the SDK accepts at runtime


def redis_alarms(node_ids: Sequence[pulumi.Input[str]]) -> list[AlarmSpec]:
    # With noeviction a full Redis refuses writes: BullMQ stops taking jobs. Climb before that.
    return [AlarmSpec(f"redis-node-{i}-memory", "memoryPercent", "AWS/ElastiCache", "DatabaseMemoryUsagePercentage",
                      {"CacheClusterId": node}, statistic="Maximum") for i, node in enumerate(node_ids)]
