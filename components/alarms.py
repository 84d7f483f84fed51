"""Alarms: one CloudWatch alarm per climb trigger that applies to the phase, plus the health
alarms that say a tier stopped serving; all to one SNS topic, and one dashboard of the same
specs. Climb thresholds come from `ladder.phases.TRIGGERS` (shared with `ladder recommend`),
so the alarms, the dashboard and the advice never disagree; custom metric names, units and
dimensions come from the contract in `ladder/metrics.py`.

Missing data is treated as what it means, per alarm (`AlarmSpec.missing`): a queue depth, an
API-answers heartbeat or an EC2 status check that stops arriving is a breach (the workers, the
API hosts or their publisher are gone), a 5xx count that is
absent is zero (metric math `FILL(m, 0)`), a latency absent is "no requests" (not a breach).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import pulumi
import pulumi_aws as aws

from ladder import dashboard
from ladder.metrics import APP_NAMESPACE, HOST_NAMESPACE, PGBOUNCER_NAMESPACE, metric
from ladder.phases import TRIGGER_BY_KEY

from .base import Tags, Tier

Missing = Literal["breaching", "notBreaching", "ignore", "missing"]  # CloudWatch TreatMissingData


@dataclass(frozen=True)
class MetricInput:
    """One metric a metric-math alarm reads (`id` is its name in the expression)."""

    id: str
    namespace: str
    metric: str
    dimensions: Mapping[str, pulumi.Input[str]]
    stat: str = "Sum"


@dataclass(frozen=True)
class AlarmSpec:
    name: str
    trigger: str  # key in ladder.phases.TRIGGERS; "" for a health alarm (`threshold`, `description`)
    namespace: str = ""
    metric: str = ""
    dimensions: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    statistic: str = "Average"  # or a percentile like "p95"
    scale: float = 1.0  # threshold = trigger threshold x scale (units: ms -> s, % of a limit)
    period: int = 300
    periods: int = 3
    expression: str = ""  # metric math over `inputs` instead of one metric
    inputs: Sequence[MetricInput] = ()
    missing: Missing = "notBreaching"
    threshold: float | None = None  # health alarms only
    description: str = ""  # health alarms only
    comparison: str = "GreaterThanThreshold"

    @property
    def limit(self) -> float:
        return TRIGGER_BY_KEY[self.trigger].threshold * self.scale if self.trigger else float(self.threshold or 0)

    @property
    def summary(self) -> str:
        if self.trigger:
            t = TRIGGER_BY_KEY[self.trigger]
            return f"Climb trigger: {t.description} over {t.threshold:g} {t.unit}"
        return f"Health: {self.description}"


@dataclass(frozen=True)
class AlarmsArgs:
    specs: Sequence[AlarmSpec]
    email: str | None
    tags: Tags
    dashboard_name: str = ""  # "" = no dashboard
    region: str = ""


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
        if args.dashboard_name:
            if not dashboard.NAME_PATTERN.match(args.dashboard_name):
                raise ValueError(f"dashboard name {args.dashboard_name!r}: PutDashboard takes 1-255 letters, digits, - and _")
            self.dashboard = aws.cloudwatch.Dashboard(
                f"{name}-dashboard", dashboard_name=args.dashboard_name,
                dashboard_body=resolved_panels(args.specs).apply(
                    lambda panels: dashboard.body(args.region, panels)),
                opts=self.child())
        self.register_outputs({"topicArn": self.topic.arn, "alarmCount": len(self.alarms)})

    def _alarm(self, name: str, spec: AlarmSpec, tags: Tags) -> aws.cloudwatch.MetricAlarm:
        common = dict(
            alarm_description=spec.summary, comparison_operator=spec.comparison, threshold=spec.limit,
            evaluation_periods=spec.periods, datapoints_to_alarm=spec.periods, treat_missing_data=spec.missing,
            alarm_actions=[self.topic.arn], ok_actions=[self.topic.arn], tags=tags, opts=self.child())
        if spec.expression:
            queries = [aws.cloudwatch.MetricAlarmMetricQueryArgs(id=i.id, metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
                namespace=i.namespace, metric_name=i.metric, dimensions=dict(i.dimensions), period=spec.period,
                stat=i.stat)) for i in spec.inputs]
            queries.append(aws.cloudwatch.MetricAlarmMetricQueryArgs(id="e1", expression=spec.expression,
                                                                      label=spec.summary, return_data=True))
            return aws.cloudwatch.MetricAlarm(f"{name}-{spec.name}", metric_queries=queries, **common)  # type: ignore[call-overload]  # pulumi stubs: Input/Output types the SDK accepts at runtime
        stat = {"extended_statistic": spec.statistic} if spec.statistic.startswith("p") else {"statistic": spec.statistic}
        return aws.cloudwatch.MetricAlarm(f"{name}-{spec.name}", namespace=spec.namespace, metric_name=spec.metric,  # type: ignore[call-overload]  # pulumi stubs: Input/Output types the SDK accepts at runtime
                                          dimensions=dict(spec.dimensions), period=spec.period, **stat, **common)


def resolved_panels(specs: Sequence[AlarmSpec]) -> pulumi.Output[list[dashboard.Panel]]:
    """The dashboard's panels, one per alarm, once every dimension value is known."""
    def dims(d: Mapping[str, pulumi.Input[str]]) -> pulumi.Output[dict[str, str]]:
        return pulumi.Output.all(**dict(d))

    def panel(spec: AlarmSpec) -> pulumi.Output[dashboard.Panel]:
        lines = [(spec.namespace, spec.metric, spec.dimensions, spec.statistic, "")] if not spec.expression else [
            (i.namespace, i.metric, i.dimensions, i.stat, i.id) for i in spec.inputs]
        return pulumi.Output.all(*[dims(d) for _, _, d, _, _ in lines]).apply(lambda resolved: dashboard.Panel(
            title=spec.summary, alarm=spec.name, threshold=spec.limit, period=spec.period,
            comparison=spec.comparison, missing=spec.missing, expression=spec.expression,
            metrics=[dashboard.Line(ns, m, dict(d), stat, i) for (ns, m, _, stat, i), d in zip(lines, resolved)]))

    return pulumi.Output.all(*[panel(s) for s in specs])


# -- the specs each tier contributes -------------------------------------------

def host_alarms(dimension: str, value: pulumi.Input[str], label: str) -> list[AlarmSpec]:
    """CPU (EC2's own metric) and memory (published by the hosts) for one host or group."""
    memory = metric(HOST_NAMESPACE, "MemoryUtilization")
    return [
        AlarmSpec(f"{label}-cpu", "cpuPercent", "AWS/EC2", "CPUUtilization", {dimension: value}),
        AlarmSpec(f"{label}-memory", "memoryPercent", memory.namespace, memory.name, {dimension: value}),
    ]


def app_metric_alarms(stack: str) -> list[AlarmSpec]:
    """Latency and errors from the app's own metrics, where no ALB measures them (phase 1, nginx
    LB, EKS). Error rate = ServerErrors / requests, the requests being RequestLatency's
    SampleCount (one value per request); a quiet minute is 0 %, not missing."""
    dims = {"Stack": stack}
    latency, errors = metric(APP_NAMESPACE, "RequestLatency"), metric(APP_NAMESPACE, "ServerErrors")
    return [
        AlarmSpec("p95-latency", "p95LatencyMs", latency.namespace, latency.name, dims, statistic="p95", periods=3),
        AlarmSpec("error-rate", "errorRatePercent", periods=3,
                  expression="IF(FILL(requests, 0) > 0, 100 * FILL(errors, 0) / FILL(requests, 0), 0)",
                  inputs=(MetricInput("errors", errors.namespace, errors.name, dims, "Sum"),
                          MetricInput("requests", latency.namespace, latency.name, dims, "SampleCount"))),
    ]


def alb_alarms(lb_suffix: pulumi.Input[str], target_group_suffix: pulumi.Input[str]) -> list[AlarmSpec]:
    """Latency, errors and target health as the ALB measures them.

    5xx from the targets AND from the load balancer itself (no healthy target, target timeouts,
    refused connections): an outage where no target answers shows only in HTTPCode_ELB_5XX_Count.
    Those requests are not in RequestCount (ELB User Guide, "CloudWatch metrics for your
    Application Load Balancer": RequestCount counts requests for which the node chose a target),
    so they join the denominator as well: a total outage reads 100 %."""
    lb = {"LoadBalancer": lb_suffix}
    tg = {"LoadBalancer": lb_suffix, "TargetGroup": target_group_suffix}
    ns = "AWS/ApplicationELB"
    return [
        # TargetResponseTime is in seconds; the trigger is in ms.
        AlarmSpec("p95-latency", "p95LatencyMs", ns, "TargetResponseTime", lb, statistic="p95", scale=0.001),
        AlarmSpec("error-rate", "errorRatePercent",
                  expression="100 * (FILL(target5xx, 0) + FILL(lb5xx, 0)) / "
                             "IF(FILL(requests, 0) + FILL(lb5xx, 0) > 0, FILL(requests, 0) + FILL(lb5xx, 0), 1)",
                  inputs=(MetricInput("target5xx", ns, "HTTPCode_Target_5XX_Count", lb),
                          MetricInput("lb5xx", ns, "HTTPCode_ELB_5XX_Count", lb),
                          MetricInput("requests", ns, "RequestCount", lb))),
        AlarmSpec("app-unhealthy-targets", "", ns, "UnHealthyHostCount", tg, statistic="Maximum", period=60,
                  threshold=0, description="app targets failing the ALB health check"),
        # No healthy target = no serving path. The ALB reports the count every minute while it
        # exists; absent data here is a broken load balancer, so it counts as a breach.
        AlarmSpec("app-no-healthy-targets", "", ns, "HealthyHostCount", tg, statistic="Minimum", period=60,
                  periods=2, threshold=1, comparison="LessThanThreshold", missing="breaching",
                  description="no app target passes the ALB health check"),
    ]


def queue_alarm(stack: str) -> AlarmSpec:
    """Jobs waiting. The workers report the gauge every minute; when it stops (workers down,
    publisher down) nothing drains the queue either: missing data is a breach."""
    queue = metric(APP_NAMESPACE, "QueueWaiting")
    return AlarmSpec("queue-depth", "queueDepth", queue.namespace, queue.name, {"Stack": stack}, periods=3,
                     missing="breaching")


def pgbouncer_alarms(group_name: pulumi.Input[str], nlb_suffix: pulumi.Input[str],
                     target_group_suffix: pulumi.Input[str], pool_size: int) -> list[AlarmSpec]:
    """The PgBouncer tier (phases 3-5): pool saturation and client waits from the hosts' stats
    publisher (ladder/metrics.py), PgBouncer hosts failing the NLB's check, host CPU/memory.
    The stats come from every host every minute; when they stop, the tier (or its view of
    itself) is gone, which the app feels as refused connections: a breach."""
    dims = {"AutoScalingGroupName": group_name}
    util, waiting = metric(PGBOUNCER_NAMESPACE, "PoolUtilization"), metric(PGBOUNCER_NAMESPACE, "MaxClientWaitSeconds")
    return [
        AlarmSpec("pgbouncer-pool", "pgbouncerPoolPercent", util.namespace, util.name, dims, statistic="Maximum",
                  period=60, periods=5, missing="breaching"),
        AlarmSpec("pgbouncer-client-wait", "pgbouncerWaitSeconds", waiting.namespace, waiting.name, dims,
                  statistic="Maximum", period=60, periods=3, missing="breaching"),
        AlarmSpec("pgbouncer-unhealthy-targets", "", "AWS/NetworkELB", "UnHealthyHostCount",
                  {"LoadBalancer": nlb_suffix, "TargetGroup": target_group_suffix}, statistic="Maximum", period=60,
                  threshold=0, description=f"PgBouncer hosts failing the NLB's TCP check (pool size {pool_size})"),
        AlarmSpec("pgbouncer-cpu", "cpuPercent", "AWS/EC2", "CPUUtilization", dims),
    ]


def status_alarm(instance_id: pulumi.Input[str], label: str, what: str) -> AlarmSpec:
    """A host outside any Auto Scaling group (phase 1's VM, nginx mode's hosts): EC2 reports
    status checks every minute while the instance runs; none = not running, a breach."""
    return AlarmSpec(f"{label}-status", "", "AWS/EC2", "StatusCheckFailed", {"InstanceId": instance_id},
                     statistic="Maximum", period=60, periods=2, threshold=0, missing="breaching",
                     description=f"{what} fails its EC2 status checks")


def api_answers_alarm(stack: str) -> AlarmSpec:
    """The API answers (phases 1-5): every API host's publisher probes the health path each
    minute (ApiAnswers, ladder/metrics.py). The app's own metrics cannot say the API is dead (no
    request = no latency, no 5xx, a 0 % error rate); this can: the best host's value under 1 for
    3 minutes, or no value at all (every API host or its publisher gone), is a breach."""
    answers = metric(APP_NAMESPACE, "ApiAnswers")
    return AlarmSpec("api-answers", "", answers.namespace, answers.name, {"Stack": stack}, statistic="Maximum",
                     period=60, periods=3, threshold=1, comparison="LessThanThreshold", missing="breaching",
                     description="no API host answers its health path")


def nginx_lb_alarms(instance_id: pulumi.Input[str]) -> list[AlarmSpec]:
    """Phase 2 with `loadBalancer: nginx`: the one nginx host is the serving path."""
    return [
        AlarmSpec("nginx-lb-cpu", "cpuPercent", "AWS/EC2", "CPUUtilization", {"InstanceId": instance_id}),
        status_alarm(instance_id, "nginx-lb", "the nginx load balancer host"),
    ]


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

