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
