"""Fleet (phases 2-5): the public load balancer, the app Auto Scaling group and the
worker Auto Scaling group.

`loadBalancer: alb` -> an Application Load Balancer in front of an app group that
tracks CPU and rolls on every launch-template change. `loadBalancer: nginx` -> the
cheaper path: one nginx instance (least_conn, retries the next upstream) in front
of a fixed set of app instances. Workers always form their own group, scaled on the
BullMQ backlog per worker that the app publishes (see README, "Queue metric").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_aws as aws

from ladder.config import NGINX_LB_INSTANCE_TYPE
from ladder.templates import render
from ladder.userdata import load_balancer_data, nginx_lb_user_data

from .app_host import NGINX_PORT, AmiByArchitecture, ami_for, host_instance, host_template
from .base import Tags, Tier, tagged
from .cdn import ORIGIN_VERIFY_HEADER

# Response headers the ALB itself adds (listener attributes routing.http.response.*: ELB User Guide,
# "HTTP header modification"; pulumi-aws Listener routing_http_response_*): those of CloudFront's
# Managed-SecurityHeadersPolicy it can set (CloudFront Developer Guide, "Use managed response
# headers policies": nosniff, HSTS for a year, SAMEORIGIN frames; Referrer-Policy and
# X-XSS-Protection have no listener attribute).
SECURITY_HEADERS = {"hsts": "max-age=31536000", "nosniff": "nosniff", "frames": "SAMEORIGIN"}

QUEUE_METRIC_NAMESPACE = "ScaleLadder/App"
QUEUE_METRIC_NAME = "QueueWaiting"


@dataclass(frozen=True)
class GroupSize:
    instance_type: str
    min: int
    desired: int
    max: int


@dataclass(frozen=True)
class FleetArgs:
    vpc_id: pulumi.Input[str]
    public_subnet_ids: Sequence[pulumi.Input[str]]
    private_subnet_ids: Sequence[pulumi.Input[str]]
    lb_security_group_id: pulumi.Input[str]
    app_security_group_id: pulumi.Input[str]
    workers_security_group_id: pulumi.Input[str]
    instance_profile_arn: pulumi.Input[str]  # launch templates take the ARN
    instance_profile_name: pulumi.Input[str]  # instances take the name
    app_user_data: pulumi.Input[str]
    worker_user_data: pulumi.Input[str]
    app: GroupSize
    workers: GroupSize
    cpu_target: int
    queue_depth_target: int
    load_balancer: Literal["alb", "nginx"]
    health_path: str
    certificate_arn: str | None
    name_prefix: str  # fixed group names: hosts and alarms refer to them
    stack: str
    tags: Tags
    lb_instance_profile_name: pulumi.Input[str] | None = None
    """The nginx LB host's own profile (nginx mode): no secret read, unlike the app hosts' role."""
    origin_verify: pulumi.Input[str] | None = None
    # climb.keepAlbOpen (4 <-> 5): clients whose DNS still points here are served (HTTP forwarded).
    serve_direct_clients: bool = False
    security_headers: bool = False
    """The HTTPS listener adds HSTS, X-Content-Type-Options and X-Frame-Options to responses
    (`cdn.apiPath: loadBalancer`: what CloudFront's SecurityHeadersPolicy adds to the API otherwise)."""
    """Phase 5: the secret value CloudFront sends as X-Origin-Verify (components/cdn.py OriginVerify);
    the HTTPS listener forwards only requests that carry it and answers others 403."""
    # hosts_ami() per CPU architecture: pinned in config or recorded, never "whatever SSM says today";
    # each host gets its type's architecture's (app_host.ami_for)
    ami: pulumi.Input[str] | AmiByArchitecture = ""
    # Groups launch in the private subnets only after these exist (the NAT route tables).
    egress: Sequence[pulumi.Resource] = ()
    # Launch templates are written only after these (the PgBouncer group, once its NLB targets are
    # healthy): a template change starts the instance refresh, so the refresh cannot start first.
    templates_after: Sequence[pulumi.Resource] = ()
    lb_rate_limit: dict[str, int] | None = None  # nginx mode: the LB host's per-client limit (ladder.edge)


BOOT_SECONDS = 600
"""Health-check grace and refresh warm-up for app and worker hosts: cloud-init's apt update +
docker.io/nginx install (1-2 min on t3), snap aws-cli (~30 s), the image pull (1-2 min for a few
hundred MB) and the container start come to about 5 minutes (an estimate, not a measurement on
AWS); twice that before the group judges a host (review aws-phases-1-4 finding 13: 300 s was tight)."""

CAPACITY_TIMEOUT = "20m"
"""How long `pulumi up` waits for a new app group's healthy targets (provider default 10m): NAT
route, boot (BOOT_SECONDS) and two healthy checks 15 s apart, with room."""


def rolling_refresh(auto_rollback: bool, max_healthy: int = 200) -> aws.autoscaling.GroupInstanceRefreshArgs:
    """Launch before terminate: min_healthy 100 keeps every in-service host until its replacement is
    healthy; max_healthy (100..200, and max - min <= 100: Auto Scaling API, RefreshPreferences /
    InstanceMaintenancePolicy) bounds the extra hosts. `auto_rollback` needs an explicit template
    version ($Latest/$Default cannot roll back: RefreshPreferences.AutoRollback), which groups here use."""
    return aws.autoscaling.GroupInstanceRefreshArgs(
        strategy="Rolling",
        preferences=aws.autoscaling.GroupInstanceRefreshPreferencesArgs(
            min_healthy_percentage=100, max_healthy_percentage=max_healthy, instance_warmup=str(BOOT_SECONDS),
            auto_rollback=auto_rollback))


class Fleet(Tier):
    TOKEN = "scaleladder:app:Fleet"

    def __init__(self, name: str, args: FleetArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(name, opts)
        self.args = args
        self.app_group_name = f"{args.name_prefix}-app"
        self.worker_group_name = f"{args.name_prefix}-workers"
        self.target_group: aws.lb.TargetGroup | None = None
        self.serving: list[pulumi.Resource] = []
        self.alb: aws.lb.LoadBalancer | None = None
        self.app_template: aws.ec2.LaunchTemplate | None = None  # nginx mode's app hosts are instances

        if args.load_balancer == "alb":
            self._alb(name)
            app_lt = self._launch_template(f"{name}-app", args.app.instance_type, args.app_security_group_id,
                                           args.app_user_data, role="app")
            self.app_template = app_lt
            self.app_group = self._group(f"{name}-app", self.app_group_name, app_lt, args.app,
                                         target_group_arns=[self.target_group.arn])  # type: ignore[attr-defined]  # set in the alb branch above
            aws.autoscaling.Policy(
                f"{name}-app-cpu", autoscaling_group_name=self.app_group.name, policy_type="TargetTrackingScaling",
                target_tracking_configuration=aws.autoscaling.PolicyTargetTrackingConfigurationArgs(
                    predefined_metric_specification=aws.autoscaling.PolicyTargetTrackingConfigurationPredefinedMetricSpecificationArgs(
                        predefined_metric_type="ASGAverageCPUUtilization"),
                    target_value=args.cpu_target),
                opts=self.child())
            self.endpoint = self.alb.dns_name  # type: ignore[attr-defined]  # set in the alb branch above
        else:
            self.endpoint = self._nginx_lb(name)

        worker_lt = self._launch_template(f"{name}-workers", args.workers.instance_type,
                                          args.workers_security_group_id, args.worker_user_data, role="worker")
        self.worker_template = worker_lt
        self.worker_group = self._group(f"{name}-workers", self.worker_group_name, worker_lt, args.workers)
        self._queue_scaling(name)
        # Resolves once the path serves: the ALB group's create waited for healthy targets
        # (min_elb_capacity); nginx mode has no such wait, the LB host's address is all there is.
        self.served: pulumi.Output[str] = (self.app_group.name if self.app_group is not None
                                           else self.nginx_lb.id)
        # `serving`: what a CDN origin waits for: the listeners and the app group, which returns once
        # its hosts are healthy targets (the hosts' STATIC_URL does not wait for the CDN:
        # components/phase.py stable_static_url, else this would be a cycle).
        if self.app_group is not None:
            self.serving.append(self.app_group)
        self.register_outputs({"endpoint": self.endpoint, "appGroup": self.app_group_name,
                               "workerGroup": self.worker_group_name})

    # -- load balancers ------------------------------------------------------
    def _alb(self, name: str) -> None:
        a = self.args
        self.alb = aws.lb.LoadBalancer(
            f"{name}-alb", load_balancer_type="application", internal=False, security_groups=[a.lb_security_group_id],
            subnets=list(a.public_subnet_ids), drop_invalid_header_fields=True, idle_timeout=60,
            tags=a.tags, opts=self.child())
        self.target_group = aws.lb.TargetGroup(
            f"{name}-app", port=NGINX_PORT, protocol="HTTP", vpc_id=a.vpc_id, target_type="instance",
            deregistration_delay=30,
            health_check=aws.lb.TargetGroupHealthCheckArgs(path=a.health_path, matcher="200", interval=15, timeout=5,
                                                           healthy_threshold=2, unhealthy_threshold=3),
            tags=a.tags, opts=self.child())
        forward = [aws.lb.ListenerDefaultActionArgs(type="forward", target_group_arn=self.target_group.arn)]

        def header(name: str) -> str | None:
            return SECURITY_HEADERS[name] if a.security_headers else None
        if a.certificate_arn:
            # Behind CloudFront: requests without the origin header (anyone who found the origin, or a
            # distribution of someone else's) get a fixed 403; ours match the rule and are forwarded.
            refuse = [aws.lb.ListenerDefaultActionArgs(type="fixed-response", fixed_response=(
                aws.lb.ListenerDefaultActionFixedResponseArgs(content_type="text/plain", message_body="Forbidden",
                                                              status_code="403")))]
            https = self._listener(aws.lb.Listener(f"{name}-https", load_balancer_arn=self.alb.arn, port=443, protocol="HTTPS",
                                    ssl_policy="ELBSecurityPolicy-TLS13-1-2-2021-06", certificate_arn=a.certificate_arn,
                                    default_actions=refuse if a.origin_verify is not None else forward, tags=a.tags,
                                    routing_http_response_strict_transport_security_header_value=header("hsts"),
                                    routing_http_response_x_content_type_options_header_value=header("nosniff"),
                                    routing_http_response_x_frame_options_header_value=header("frames"),
                                    opts=self.child()))
            if a.origin_verify is not None:
                aws.lb.ListenerRule(
                    f"{name}-from-cdn", listener_arn=https.arn, priority=1,
                    conditions=[aws.lb.ListenerRuleConditionArgs(http_header=aws.lb.ListenerRuleConditionHttpHeaderArgs(
                        http_header_name=ORIGIN_VERIFY_HEADER, values=[a.origin_verify]))],
                    actions=[aws.lb.ListenerRuleActionArgs(type="forward", target_group_arn=self.target_group.arn)],
                    tags=a.tags, opts=self.child())
            http_actions = forward if a.serve_direct_clients else [aws.lb.ListenerDefaultActionArgs(
                type="redirect", redirect=aws.lb.ListenerDefaultActionRedirectArgs(
                    protocol="HTTPS", port="443", status_code="HTTP_301"))]
        else:
            http_actions = forward
        self._listener(aws.lb.Listener(f"{name}-http", load_balancer_arn=self.alb.arn, port=80, protocol="HTTP",
                                       default_actions=http_actions, tags=a.tags, opts=self.child()))

    def _listener(self, listener: aws.lb.Listener) -> aws.lb.Listener:
        self.serving.append(listener)
        return listener

    def _nginx_lb(self, name: str) -> pulumi.Output[str]:
        """nginx on one small instance in front of `app.desired` fixed app instances."""
        a = self.args
        apps = [host_instance(f"{name}-app-{i}", parent=self, ami=self._ami(a.app.instance_type),
                              instance_type=a.app.instance_type,
                              subnet_id=a.private_subnet_ids[i % len(a.private_subnet_ids)],
                              security_group_id=a.app_security_group_id, instance_profile=a.instance_profile_name,
                              user_data=a.app_user_data, tags=tagged(a.tags, role="app"),
                              depends_on=[*a.egress, *a.templates_after])
                for i in range(a.app.desired)]
        self.app_group = None  # type: ignore[assignment]  # nginx mode: no app group
        self.app_instances = apps
        conf = pulumi.Output.all(*[i.private_ip for i in apps]).apply(lambda ips: render(
            "nginx/load_balancer.conf.j2",
            load_balancer_data([f"{ip}:{NGINX_PORT}" for ip in ips], a.health_path, a.lb_rate_limit)))
        lb = host_instance(f"{name}-nginx-lb", parent=self, ami=self._ami(NGINX_LB_INSTANCE_TYPE),
                           instance_type=NGINX_LB_INSTANCE_TYPE,
                           subnet_id=a.public_subnet_ids[0], security_group_id=a.lb_security_group_id,
                           instance_profile=a.lb_instance_profile_name or a.instance_profile_name,
                           user_data=conf.apply(nginx_lb_user_data),
                           tags=tagged(a.tags, role="nginx-lb"), public=True)
        eip = aws.ec2.Eip(f"{name}-nginx-lb-ip", domain="vpc", instance=lb.id, tags=a.tags, opts=self.child())
        self.nginx_lb = lb
        return eip.public_dns

    def _ami(self, instance_type: str) -> pulumi.Input[str]:
        return ami_for(self.args.ami, instance_type, self)

    # -- groups --------------------------------------------------------------
    def _launch_template(self, name: str, instance_type: str, sg: pulumi.Input[str],
                         user_data: pulumi.Input[str], role: str) -> aws.ec2.LaunchTemplate:
        # `role` tags the hosts for ansible/'s inventory (keyed groups role_app, role_worker).
        return host_template(name, parent=self, ami=self._ami(instance_type), instance_type=instance_type,
                             security_group_id=sg,
                             instance_profile_arn=self.args.instance_profile_arn, user_data=user_data,
                             tags=tagged(self.args.tags, role=role),
                             depends_on=self.args.templates_after)

    def _group(self, name: str, group_name: str, lt: aws.ec2.LaunchTemplate, size: GroupSize,
               target_group_arns: Sequence[pulumi.Input[str]] = ()) -> aws.autoscaling.Group:
        a = self.args
        return aws.autoscaling.Group(
            name, name=group_name, vpc_zone_identifiers=list(a.private_subnet_ids),
            min_size=size.min, max_size=size.max, desired_capacity=size.desired,
            launch_template=aws.autoscaling.GroupLaunchTemplateArgs(id=lt.id, version=lt.latest_version.apply(str)),
            target_group_arns=list(target_group_arns),
            health_check_type="ELB" if target_group_arns else "EC2", health_check_grace_period=BOOT_SECONDS,
            # The group's create returns only once `desired` hosts are healthy in the ALB target group
            # (terraform-provider-aws internal/service/autoscaling/group_waiting.go,
            # capacitySatisfiedCreate: min_elb_capacity is an "at least" on create only). Not
            # wait_for_elb_capacity: on update it demands EXACTLY that many healthy targets
            # (capacitySatisfiedUpdate), which target tracking's own desired capacity breaks.
            min_elb_capacity=size.desired if target_group_arns else None,
            wait_for_capacity_timeout=CAPACITY_TIMEOUT,
            # A new launch-template version (AMI, user data, size) rolls the group, launching before
            # terminating. Roll back is safe: the previous template's path still works during the
            # `up` that changes it (ladder.climb keeps the old database route's rules one `up` longer).
            instance_refresh=rolling_refresh(auto_rollback=True),
            enabled_metrics=["GroupInServiceInstances", "GroupDesiredCapacity"],  # type: ignore[list-item]  # pulumi stubs: Input/Output types the SDK accepts at runtime
            tags=[aws.autoscaling.GroupTagArgs(key=k, value=v, propagate_at_launch=True) for k, v in a.tags.items()],
            # Scaling policies own desired capacity after creation.
            opts=self.child(ignore_changes=["desiredCapacity"], depends_on=list(a.egress)))

    def _queue_scaling(self, name: str) -> None:
        """Target tracking on backlog per worker: QueueWaiting / in-service workers (metric math)."""
        a = self.args
        spec = aws.autoscaling
        aws.autoscaling.Policy(
            f"{name}-workers-backlog", autoscaling_group_name=self.worker_group.name,
            policy_type="TargetTrackingScaling",
            target_tracking_configuration=spec.PolicyTargetTrackingConfigurationArgs(
                target_value=a.queue_depth_target,
                customized_metric_specification=spec.PolicyTargetTrackingConfigurationCustomizedMetricSpecificationArgs(
                    metrics=[
                        spec.PolicyTargetTrackingConfigurationCustomizedMetricSpecificationMetricArgs(
                            id="waiting", return_data=False,
                            metric_stat=spec.PolicyTargetTrackingConfigurationCustomizedMetricSpecificationMetricMetricStatArgs(
                                stat="Average",
                                metric=spec.PolicyTargetTrackingConfigurationCustomizedMetricSpecificationMetricMetricStatMetricArgs(
                                    namespace=QUEUE_METRIC_NAMESPACE, metric_name=QUEUE_METRIC_NAME,
                                    dimensions=[spec.PolicyTargetTrackingConfigurationCustomizedMetricSpecificationMetricMetricStatMetricDimensionArgs(
                                        name="Stack", value=a.stack)]))),
                        spec.PolicyTargetTrackingConfigurationCustomizedMetricSpecificationMetricArgs(
                            id="workers", return_data=False,
                            metric_stat=spec.PolicyTargetTrackingConfigurationCustomizedMetricSpecificationMetricMetricStatArgs(
                                stat="Average",
                                metric=spec.PolicyTargetTrackingConfigurationCustomizedMetricSpecificationMetricMetricStatMetricArgs(
                                    namespace="AWS/AutoScaling", metric_name="GroupInServiceInstances",
                                    dimensions=[spec.PolicyTargetTrackingConfigurationCustomizedMetricSpecificationMetricMetricStatMetricDimensionArgs(
                                        name="AutoScalingGroupName", value=self.worker_group.name)]))),
                        spec.PolicyTargetTrackingConfigurationCustomizedMetricSpecificationMetricArgs(
                            id="backlog_per_worker", expression="waiting / IF(workers > 0, workers, 1)",
                            label="Waiting jobs per worker", return_data=True),
                    ])),
            opts=self.child())
