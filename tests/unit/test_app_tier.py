"""Phase 1-2 app tier: load balancing, health checks, scaling, alarms."""

from __future__ import annotations

import re

import pytest

from ladder.phases import TRIGGER_BY_KEY

from .plans import plan, user_data_texts

CERT = "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-0a1b-0a1b-0a1b-0a1b2c3d4e5f"


def test_alb_health_check_and_nginx_use_the_configured_health_path():
    p = plan("phase2", app={"healthPath": "/internal/healthz"})
    tg = p.one("aws:lb/targetGroup:TargetGroup")
    assert tg.inputs["healthCheck"]["path"] == "/internal/healthz"
    app_data = user_data_texts(p)["fleet-app"]
    assert re.search(r'location\s*=\s*"?/internal/healthz"?\s*\{', app_data)


def test_https_listener_and_redirect_only_with_a_certificate():
    plain = plan("phase2")
    listeners = plain.of_type("aws:lb/listener:Listener")
    assert [l.inputs["port"] for l in listeners] == [80]
    assert listeners[0].inputs["defaultActions"][0]["type"] == "forward"
    tls = plan("phase2", app={"certificateArn": CERT})
    by_port = {l.inputs["port"]: l for l in tls.of_type("aws:lb/listener:Listener")}
    assert by_port[443].inputs["certificateArn"] == CERT and by_port[443].inputs["protocol"] == "HTTPS"
    redirect = by_port[80].inputs["defaultActions"][0]
    assert redirect["type"] == "redirect" and redirect["redirect"]["protocol"] == "HTTPS"
    assert tls.outputs["url"].startswith("https://")


def test_app_group_tracks_cpu_and_rolls_on_template_change():
    p = plan("phase2", appTier={"cpuTarget": 55})
    group = p.one("aws:autoscaling/group:Group", "fleet-app")
    template = p.one("aws:ec2/launchTemplate:LaunchTemplate", "fleet-app")
    assert group.inputs["launchTemplate"]["id"] == template.id
    assert group.inputs["instanceRefresh"]["strategy"] == "Rolling"
    assert group.inputs["healthCheckType"] == "ELB"
    assert len(set(group.inputs["vpcZoneIdentifiers"])) == p.config.network.az_count
    policy = p.one("aws:autoscaling/policy:Policy", "fleet-app-cpu")
    tt = policy.inputs["targetTrackingConfiguration"]
    assert tt["targetValue"] == 55
    assert tt["predefinedMetricSpecification"]["predefinedMetricType"] == "ASGAverageCPUUtilization"


def test_workers_scale_on_backlog_per_worker():
    p = plan("phase2", workers={"queueDepthTarget": 250})
    policy = p.one("aws:autoscaling/policy:Policy", "fleet-workers-backlog")
    tt = policy.inputs["targetTrackingConfiguration"]
    assert tt["targetValue"] == 250
    metrics = {m["id"]: m for m in tt["customizedMetricSpecification"]["metrics"]}
    waiting = metrics["waiting"]["metricStat"]["metric"]
    assert (waiting["namespace"], waiting["metricName"]) == ("ScaleLadder/App", "QueueWaiting")
    assert waiting["dimensions"] == [{"name": "Stack", "value": "phase2"}]
    assert metrics["backlog_per_worker"]["returnData"] is True
    assert "waiting" in metrics["backlog_per_worker"]["expression"]


def test_nginx_load_balancer_spreads_over_the_fixed_app_instances():
    p = plan("phase2", loadBalancer="nginx", appTier={"desired": 3, "max": 3})
    apps = [r for r in p.of_type("aws:ec2/instance:Instance") if r.name.startswith("fleet-app-")]
    assert len(apps) == 3
    lb_data = user_data_texts(p)["fleet-nginx-lb"]
    for app in apps:
        assert re.search(rf'server\s+"?{re.escape(app.state["privateIp"])}:80"?\s', lb_data)
    assert "least_conn" in lb_data and "max_fails=3" in lb_data and "fail_timeout=30s" in lb_data
    assert "proxy_next_upstream" in lb_data
    assert not p.of_type("aws:lb/loadBalancer:LoadBalancer"), "nginx mode must not also pay for an ALB"


@pytest.mark.parametrize("stack", ["phase1", "phase2", "phase3", "phase4"])
def test_every_alarm_is_a_climb_trigger_with_its_threshold(stack):
    p = plan(stack)
    alarms = p.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    topic = p.one("aws:sns/topic:Topic")
    seen = set()
    for a in alarms:
        assert a.inputs["alarmActions"] == [topic.state["arn"]]
        if a.inputs["alarmDescription"].startswith("Health: ") or not a.name.startswith("alarms-"):
            continue  # tier health (unhealthy targets, status checks); the edge firewall's own alarm
        trigger = next(t for t in TRIGGER_BY_KEY.values() if a.inputs["alarmDescription"].startswith(f"Climb trigger: {t.description}"))
        seen.add(trigger.key)
        assert a.inputs["alarmActions"] == [topic.state["arn"]]
    expected = {"cpuPercent", "memoryPercent", "p95LatencyMs", "errorRatePercent", "queueDepth", "dbConnectionsPercent"}
    if p.config.phase >= 3:
        expected.add("replicaLagSeconds")
    assert expected <= seen
    latency = next(a for a in alarms if "p95" in a.inputs.get("extendedStatistic", ""))
    expected_threshold = 1.0 if latency.inputs["namespace"] == "AWS/ApplicationELB" else 1000
    assert latency.inputs["threshold"] == expected_threshold


def _published_memory_dimension(user_data: str) -> str:
    """The dimension name a host's metrics timer publishes MemoryUtilization under
    (cloudinit/host-metrics.sh: AutoScalingGroupName when ASG_NAME is set, else InstanceId)."""
    asg = re.search(r"^\s*ASG_NAME=(\S*)\s*$", user_data, re.M)
    assert asg is not None, "boot.env must carry ASG_NAME"
    return "AutoScalingGroupName" if asg.group(1) else "InstanceId"


@pytest.mark.parametrize("load_balancer", ["alb", "nginx"])
def test_memory_alarms_watch_the_dimension_the_app_hosts_publish(load_balancer):
    """An alarm on a dimension nobody publishes never fires (treat_missing_data=notBreaching)."""
    p = plan("phase2", loadBalancer=load_balancer, appTier={"desired": 2, "max": 2})
    data = user_data_texts(p)
    app_hosts = {n: t for n, t in data.items() if n.startswith("fleet-app")}
    assert app_hosts
    memory = [a for a in p.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
              if a.inputs.get("metricName") == "MemoryUtilization" and a.name.startswith("alarms-app")]
    assert memory
    alarm_dims = {next(iter(a.inputs["dimensions"])) for a in memory}
    assert {_published_memory_dimension(t) for t in app_hosts.values()} == alarm_dims
    if load_balancer == "alb":
        group = p.one("aws:autoscaling/group:Group", "fleet-app")
        asg = re.search(r"^\s*ASG_NAME=(\S*)\s*$", app_hosts["fleet-app"], re.M).group(1)
        assert [a.inputs["dimensions"]["AutoScalingGroupName"] for a in memory] == [asg] == [group.inputs["name"]]
    else:
        ids = {r.id for r in p.of_type("aws:ec2/instance:Instance") if r.name.startswith("fleet-app-")}
        assert {a.inputs["dimensions"]["InstanceId"] for a in memory} == ids


@pytest.mark.parametrize("stack,overrides,name", [("phase1", {}, "app"), ("phase2", {"loadBalancer": "nginx"}, "fleet-nginx-lb")])
def test_public_hosts_reach_the_internet_from_boot(stack, overrides, name):
    """Public subnets map no public IP on launch and phases 1-2 route them through the internet
    gateway only: without an address at launch, cloud-init's snap/apt steps race the EIP."""
    p = plan(stack, **overrides)
    host = p.one("aws:ec2/instance:Instance", name)
    subnet = next(s for s in p.of_type("aws:ec2/subnet:Subnet") if s.id == host.inputs["subnetId"])
    assert subnet.name.startswith("network-public-") and not subnet.inputs["mapPublicIpOnLaunch"]
    assert host.inputs["associatePublicIpAddress"] is True
    eip = next(e for e in p.of_type("aws:ec2/eip:Eip") if e.inputs.get("instance") == host.id)
    assert eip.inputs["domain"] == "vpc"
    private = [r for r in p.of_type("aws:ec2/instance:Instance") if r.name != name]
    assert all(not r.inputs.get("associatePublicIpAddress") for r in private)
