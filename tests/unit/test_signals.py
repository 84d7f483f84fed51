"""Plan properties of the stack's signals (issue 13), over every preset and the nginx variant.

Every alarm watches, and the worker group scales on, a series (namespace, metric, dimensions)
that something in the same plan publishes: an AWS service metric of a resource in the plan
(the table below, from each service's CloudWatch metrics page), or our own publishers as the
plan configures them: the app hosts' scaleladder-metrics (user data config + its SSM script +
the host role's grant), the hosts' memory timer, the PgBouncer hosts' stats timer, the pods'
Pod Identity role (phase 6). Missing data is treated per alarm as designed; logs have retention
and the hosts may write only their own group; the dashboard draws every alarm with its line.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
from collections.abc import Iterator
from functools import cache
from typing import Any

import pytest
import yaml

from components import signals
from ladder import engine, metrics
from ladder.dashboard import plan_body
from tests.unit.plans import existing_stacks, plan, user_data_texts

Series = tuple[str, str, frozenset[tuple[str, str]]]
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
VARIANTS = {"phase2-nginx": ("phase2", {"loadBalancer": "nginx", "appTier": {"desired": 2, "max": 2}})}
CASES = [*existing_stacks(), *VARIANTS]

# What AWS publishes for a resource, by namespace (CloudWatch metrics pages of EC2 "List the
# available CloudWatch metrics for your instances", EC2 Auto Scaling "CloudWatch metrics for
# Amazon EC2 Auto Scaling" (group metrics only when enabled), ELB "CloudWatch metrics for your
# Application Load Balancer" / "... Network Load Balancer", RDS "Amazon CloudWatch metrics for
# Amazon RDS" (ReplicaLag on read replicas), ElastiCache "Metrics for Redis OSS", WAF "AWS WAF
# metrics and dimensions").
EC2 = ("CPUUtilization", "StatusCheckFailed")
ALB = ("TargetResponseTime", "HTTPCode_Target_5XX_Count", "HTTPCode_ELB_5XX_Count", "RequestCount")
TARGETS = ("UnHealthyHostCount", "HealthyHostCount")


def series(namespace: str, metric: str, dims: dict[str, Any]) -> Series:
    return namespace, metric, frozenset((k, str(v)) for k, v in dims.items())


@cache
def the_plan(case: str) -> engine.Plan:
    stack, overrides = VARIANTS.get(case, (case, {}))
    return plan(stack, **overrides)


def cloud_init(text: str) -> dict[str, Any]:
    doc = yaml.safe_load(text)
    return {"files": {f["path"]: f.get("content", "") for f in doc.get("write_files", [])},
            "runcmd": [" ".join(map(str, c)) if isinstance(c, list) else str(c) for c in doc.get("runcmd", [])]}


def boot_env(files: dict[str, str]) -> dict[str, str]:
    text = files.get("/etc/scaleladder/boot.env", "")
    return {k: v.strip('"') for k, v in re.findall(r"^(\w+)=(.*)$", text, re.M)}


def policies(p: engine.Plan) -> list[dict[str, Any]]:
    return [json.loads(r.inputs["policy"]) for r in p.of_type("aws:iam/rolePolicy:RolePolicy")]


def role_policies(p: engine.Plan, role_arn: str) -> list[dict[str, Any]]:
    ids = {r.id for r in p.of_type("aws:iam/role:Role") if r.state.get("arn") == role_arn}
    return [json.loads(r.inputs["policy"]) for r in p.of_type("aws:iam/rolePolicy:RolePolicy") if r.inputs["role"] in ids]


def allows_put_metric(docs: list[dict[str, Any]], namespace: str) -> bool:
    for doc in docs:
        for st in doc["Statement"]:
            if st["Effect"] == "Allow" and st["Action"] == "cloudwatch:PutMetricData":
                allowed = st.get("Condition", {}).get("StringEquals", {}).get("cloudwatch:namespace", [])
                if namespace in ([allowed] if isinstance(allowed, str) else allowed):
                    return True
    return False


def aws_series(p: engine.Plan) -> set[Series]:
    out: set[Series] = set()
    region = p.config.region
    for r in p.of_type("aws:ec2/instance:Instance"):
        out |= {series("AWS/EC2", m, {"InstanceId": r.id}) for m in EC2}
    for r in p.of_type("aws:autoscaling/group:Group"):
        out.add(series("AWS/EC2", "CPUUtilization", {"AutoScalingGroupName": r.state["name"]}))
        out |= {series("AWS/AutoScaling", m, {"AutoScalingGroupName": r.state["name"]})
                for m in r.inputs.get("enabledMetrics") or []}
    for r in p.of_type("aws:eks/nodeGroup:NodeGroup"):
        for group in r.state["resources"][0]["autoscalingGroups"]:
            out.add(series("AWS/EC2", "CPUUtilization", {"AutoScalingGroupName": group["name"]}))
    lbs = {r.state["arn"]: r for r in p.of_type("aws:lb/loadBalancer:LoadBalancer")}
    tgs = {r.state["arn"]: r for r in p.of_type("aws:lb/targetGroup:TargetGroup")}
    listeners = {r.state.get("arn") or r.id: r for r in p.of_type("aws:lb/listener:Listener")}
    rules = {arn: [] for arn in listeners}  # listener -> its rules' actions (phase 5: forward only from CloudFront)
    for rule in p.of_type("aws:lb/listenerRule:ListenerRule"):
        rules.setdefault(rule.inputs["listenerArn"], []).extend(rule.inputs["actions"])
    for arn, listener in listeners.items():
        lb = lbs[listener.inputs["loadBalancerArn"]]
        ns = "AWS/ApplicationELB" if lb.inputs["loadBalancerType"] == "application" else "AWS/NetworkELB"
        if ns == "AWS/ApplicationELB":
            out |= {series(ns, m, {"LoadBalancer": lb.state["arnSuffix"]}) for m in ALB}
        for action in [*listener.inputs["defaultActions"], *rules.get(arn, [])]:
            if action.get("targetGroupArn") in tgs:
                tg = tgs[action["targetGroupArn"]]
                out |= {series(ns, m, {"LoadBalancer": lb.state["arnSuffix"], "TargetGroup": tg.state["arnSuffix"]})
                        for m in TARGETS}
    for r in p.of_type("aws:rds/instance:Instance"):
        ident = r.state.get("identifier") or r.inputs.get("identifier")
        names = ["DatabaseConnections", "CPUUtilization"] + (["ReplicaLag"] if r.inputs.get("replicateSourceDb") else [])
        out |= {series("AWS/RDS", m, {"DBInstanceIdentifier": ident}) for m in names}
    for r in p.of_type("aws:elasticache/replicationGroup:ReplicationGroup"):
        out |= {series("AWS/ElastiCache", "DatabaseMemoryUsagePercentage", {"CacheClusterId": c})
                for c in r.state["memberClusters"]}
    for r in p.of_type("aws:wafv2/webAcl:WebAcl"):  # CloudFront-scoped ACLs report without a Region dimension
        dims = {"WebACL": r.inputs["name"], "Rule": "ALL", **({"Region": region} if r.inputs["scope"] == "REGIONAL" else {})}
        out |= {series("AWS/WAFV2", m, dims) for m in ("BlockedRequests", "AllowedRequests")}
    return out


def app_host_series(p: engine.Plan) -> set[Series]:
    """What the app hosts publish: scaleladder-metrics (StatsD from the containers) and the memory timer."""
    out: set[Series] = set()
    groups = {r.inputs["launchTemplate"]["id"]: r.state["name"] for r in p.of_type("aws:autoscaling/group:Group")}
    templates = {r.name: r.id for r in p.of_type("aws:ec2/launchTemplate:LaunchTemplate")}
    instances = {r.name: r.id for r in p.of_type("aws:ec2/instance:Instance")}
    parameters = {r.inputs["name"]: r for r in p.of_type("aws:ssm/parameter:Parameter")}
    docs = policies(p)
    for name, text in user_data_texts(p).items():
        ci = cloud_init(text)
        files, env = ci["files"], boot_env(ci["files"])
        if "/etc/scaleladder/metrics.json" in files:
            cfg = json.loads(files["/etc/scaleladder/metrics.json"])
            unit = files["/etc/systemd/system/scaleladder-metrics.service"]
            fetched = re.search(r"ssm get-parameter --name (\S+)", unit)
            assert fetched and "systemctl enable --now scaleladder-metrics.service" in ci["runcmd"], name
            param = parameters[fetched.group(1)]  # the script the service fetches is in the plan, unchanged
            assert gzip.decompress(base64.b64decode(param.inputs["insecureValue"])).decode() == (
                signals.userdata.CLOUDINIT / "scaleladder-metrics").read_text()
            assert any(st["Action"] == "ssm:GetParameter" and param.state["arn"] in st["Resource"]
                       for doc in docs for st in doc["Statement"]), f"{name}: the host role cannot read the script"
            assert allows_put_metric(docs, cfg["namespace"]), f"{name}: the host role cannot publish"
            roles = env["ROLES"].split()
            probes = {n for n, m in cfg["metrics"].items() if m["kind"] == "probe"}
            assert bool(probes) == ("api" in roles), f"{name}: the API-answers probe runs exactly where the API does"
            if probes:  # through this host's nginx, on the configured health path
                assert cfg["probe"]["url"] == f"http://127.0.0.1:80{p.config.app.health_path}", name
            for metric_name in cfg["metrics"]:
                if metrics.metric(cfg["namespace"], metric_name).app_role in roles:
                    out.add(series(cfg["namespace"], metric_name, cfg["dimensions"]))
            assert cfg["listen"]["host"] == metrics.STATSD_HOST and json.loads(
                files["/etc/docker/daemon.json"])["bip"].startswith(metrics.STATSD_HOST + "/")
        if "/usr/local/sbin/scaleladder-host-metrics" in files and any("scaleladder-host-metrics.timer" in c
                                                                       for c in ci["runcmd"]):
            asg = env.get("ASG_NAME", "")
            if asg:
                assert groups.get(templates.get(name)) == asg, f"{name} publishes memory for {asg}, not its group"
                out.add(series(metrics.HOST_NAMESPACE, "MemoryUtilization", {"AutoScalingGroupName": asg}))
            elif name in instances:
                out.add(series(metrics.HOST_NAMESPACE, "MemoryUtilization", {"InstanceId": instances[name]}))
        if "/etc/scaleladder/pgbouncer-metrics.json" in files:
            cfg = json.loads(files["/etc/scaleladder/pgbouncer-metrics.json"])
            assert "systemctl enable --now scaleladder-pgbouncer-metrics.timer" in ci["runcmd"], name
            assert groups.get(templates.get(name)) == cfg["dimensions"]["AutoScalingGroupName"], name
            assert allows_put_metric(docs, cfg["namespace"]), f"{name}: the PgBouncer role cannot publish"
            out |= {series(cfg["namespace"], m, cfg["dimensions"]) for m in cfg["metrics"]}
    return out


def pod_series(p: engine.Plan) -> set[Series]:
    """Phase 6: pods that are told to publish (ConfigMap) and whose service account may."""
    out: set[Series] = set()
    maps = {r.state.get("metadata", {}).get("name") or r.inputs["metadata"].get("name"): r.inputs.get("data") or {}
            for r in p.resources if r.type == "kubernetes:core/v1:ConfigMap"}
    identities = {(r.inputs["namespace"], r.inputs["serviceAccount"]): r.inputs["roleArn"]
                  for r in p.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")}
    for d in (r for r in p.resources if r.type == "kubernetes:apps/v1:Deployment"):
        pod = d.inputs["spec"]["template"]["spec"]
        role = d.inputs["metadata"]["labels"]["app.kubernetes.io/name"]
        account = identities.get((d.inputs["metadata"]["namespace"], pod.get("serviceAccountName")))
        for container in pod["containers"]:
            for ref in container.get("envFrom") or []:
                env = maps.get((ref.get("configMapRef") or {}).get("name"), {})
                if env.get("METRICS_PUBLISH") != "cloudwatch" or account is None:
                    continue
                ns = env["METRICS_NAMESPACE"]
                assert allows_put_metric(role_policies(p, account), ns), f"{d.name}: its Pod Identity role cannot publish"
                dims = dict(kv.split("=", 1) for kv in env["METRICS_DIMENSIONS"].split(","))
                out |= {series(ns, m.name, dims) for m in metrics.app_metrics() if m.app_role == {"app": "api",
                                                                                                 "workers": "worker"}.get(role)}
    return out


@cache
def published(case: str) -> frozenset[Series]:
    p = the_plan(case)
    return frozenset(aws_series(p) | app_host_series(p) | pod_series(p))


def alarm_series(alarm: Any) -> Iterator[Series]:
    i = alarm.inputs
    if i.get("metricQueries"):
        for q in i["metricQueries"]:
            if "metric" in q:
                yield series(q["metric"]["namespace"], q["metric"]["metricName"], q["metric"].get("dimensions") or {})
    else:
        yield series(i["namespace"], i["metricName"], i.get("dimensions") or {})


@pytest.mark.parametrize("case", CASES)
def test_every_alarm_watches_a_series_the_stack_publishes(case: str) -> None:
    have = published(case)
    for alarm in the_plan(case).of_type(ALARM):
        for s in alarm_series(alarm):
            assert s in have, f"{case}: alarm {alarm.name} watches {s}, which nothing in the stack publishes"


@pytest.mark.parametrize("case", CASES)
def test_the_worker_scaling_metric_is_published(case: str) -> None:
    p = the_plan(case)
    queue = series(metrics.APP_NAMESPACE, "QueueWaiting", {"Stack": p.stack})
    assert queue in published(case), f"{case}: nobody publishes the queue depth the workers scale on"
    for policy in p.of_type("aws:autoscaling/policy:Policy"):
        custom = (policy.inputs.get("targetTrackingConfiguration") or {}).get("customizedMetricSpecification")
        for m in (custom or {}).get("metrics", []):
            if "metricStat" in m:
                mm = m["metricStat"]["metric"]
                s = series(mm["namespace"], mm["metricName"], {d["name"]: d["value"] for d in mm.get("dimensions", [])})
                assert s in published(case), f"{case}: {policy.name} scales on {s}, which nothing publishes"


@pytest.mark.parametrize("case", CASES)
def test_missing_data_is_treated_as_what_it_means(case: str) -> None:
    alarms = {a.name.removeprefix("alarms-"): a for a in the_plan(case).of_type(ALARM)}
    assert alarms["queue-depth"].inputs["treatMissingData"] == "breaching"  # workers or publisher gone
    error = alarms["error-rate"].inputs
    five_xx = [q["id"] for q in error["metricQueries"] if "metric" in q and q["metric"]["metricName"] in (
        "HTTPCode_Target_5XX_Count", "HTTPCode_ELB_5XX_Count", "ServerErrors")]
    expression = next(q["expression"] for q in error["metricQueries"] if q.get("returnData"))
    assert five_xx and all(f"FILL({i}, 0)" in expression for i in five_xx)  # an absent 5xx count is zero
    if any(q.get("metric", {}).get("namespace") == "AWS/ApplicationELB" for q in error["metricQueries"]):
        names = {q["metric"]["metricName"] for q in error["metricQueries"] if "metric" in q}
        assert {"HTTPCode_Target_5XX_Count", "HTTPCode_ELB_5XX_Count"} <= names  # an outage shows as ELB 5xx
    assert alarms["p95-latency"].inputs["treatMissingData"] == "notBreaching"  # no requests, no latency
    for name in ("pgbouncer-pool", "pgbouncer-client-wait", "app-no-healthy-targets", "api-answers"):
        if name in alarms:
            assert alarms[name].inputs["treatMissingData"] == "breaching", name
    for name, alarm in alarms.items():  # a host that stops reporting status checks is not running
        if alarm.inputs.get("metricName") == "StatusCheckFailed":
            assert alarm.inputs["treatMissingData"] == "breaching", name


# Signals that stop (or turn bad) when no API answers: the hosts' own probe of the health path,
# the ALB's healthy-target count. The app's RequestLatency / ServerErrors say nothing then (no
# request, no sample): an error rate of FILL(0) and a p95 "notBreaching" stay green.
API_LIVENESS = {(metrics.APP_NAMESPACE, "ApiAnswers"), ("AWS/ApplicationELB", "HealthyHostCount")}


@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.xfail(
    strict=True, reason="phase 6: no API-answers alarm yet (README, Signals: the app's own metrics only)"))
    if c == "phase6" else c for c in CASES])
def test_an_api_that_stops_answering_alarms(case: str) -> None:
    """Review aws finding 8: in every phase some alarm breaches when the API is dead, on a series
    the stack publishes, missing data counted as a breach (a dead host publishes nothing)."""
    have = published(case)
    live = [a for a in the_plan(case).of_type(ALARM) if a.inputs.get("treatMissingData") == "breaching"
            and any(s[:2] in API_LIVENESS and s in have for s in alarm_series(a))]
    assert live, f"{case}: no alarm fires when the API stops answering"


@pytest.mark.parametrize("case", CASES)
def test_hosts_outside_groups_have_a_status_alarm(case: str) -> None:
    """Phase 1's VM, nginx mode's app hosts and LB host: nothing replaces a dead one, so its EC2
    status checks alarm, missing data a breach."""
    p = the_plan(case)
    watched = {s for a in p.of_type(ALARM) if a.inputs.get("treatMissingData") == "breaching"
               for s in alarm_series(a) if s[1] == "StatusCheckFailed"}
    for inst in p.of_type("aws:ec2/instance:Instance"):
        assert series("AWS/EC2", "StatusCheckFailed", {"InstanceId": inst.id}) in watched, inst.name


@pytest.mark.parametrize("case", CASES)
def test_each_tier_has_its_health_alarms(case: str) -> None:
    p = the_plan(case)
    names = {a.name.removeprefix("alarms-") for a in p.of_type(ALARM)}
    if p.of_type("aws:lb/targetGroup:TargetGroup") and p.config.phase <= 5 and p.config.load_balancer == "alb":
        assert {"app-unhealthy-targets", "app-no-healthy-targets"} <= names
    if p.config.phase in (3, 4, 5):
        assert {"pgbouncer-pool", "pgbouncer-client-wait", "pgbouncer-unhealthy-targets"} <= names
    if any(r.name.endswith("nginx-lb") for r in p.of_type("aws:ec2/instance:Instance")):
        assert {"nginx-lb-status", "nginx-lb-cpu"} <= names


@pytest.mark.parametrize("case", CASES)
def test_logs_are_kept_and_bounded(case: str) -> None:
    p = the_plan(case)
    days = p.config.logs.retention_days
    groups = {r.inputs.get("name") or r.state.get("name"): r for r in p.of_type("aws:cloudwatch/logGroup:LogGroup")}
    assert all(r.inputs.get("retentionInDays") for r in groups.values()), "a log group without retention"
    primary = next(r for r in p.of_type("aws:rds/instance:Instance") if not r.inputs.get("replicateSourceDb"))
    for log in primary.inputs["enabledCloudwatchLogsExports"]:  # made (with retention) before RDS exports
        group = groups[f"/aws/rds/instance/{primary.inputs['identifier']}/{log}"]
        assert group.inputs["retentionInDays"] == days and group.urn in primary.options["dependsOn"]
    for name, text in user_data_texts(p).items():
        files = cloud_init(text)["files"]
        if "/etc/docker/daemon.json" not in files:
            continue
        daemon = json.loads(files["/etc/docker/daemon.json"])
        assert daemon["log-driver"] == "awslogs" and set(daemon["log-opts"]) <= set(metrics.DOCKER_LOG_OPTS)
        group = groups[daemon["log-opts"]["awslogs-group"]]
        assert group.inputs["retentionInDays"] == days
        assert "SystemMaxUse=" in files["/etc/systemd/journald.conf.d/scaleladder.conf"]
        writes = [st for doc in policies(p) for st in doc["Statement"] if any(
            str(a).startswith("logs:") for a in ([st["Action"]] if isinstance(st["Action"], str) else st["Action"]))]
        assert writes and all(set(st["Action"]) == {"logs:CreateLogStream", "logs:PutLogEvents"} for st in writes)
        assert all(res in (group.state["arn"], f"{group.state['arn']}:log-stream:*")
                   for st in writes for res in st["Resource"]), f"{name}: the hosts may write other log groups"


@pytest.mark.parametrize("case", CASES)
def test_the_dashboard_draws_every_alarm_with_its_line(case: str) -> None:
    p = the_plan(case)
    widgets = json.loads(plan_body(p))["widgets"]
    ours = [a for a in p.of_type(ALARM) if a.name.startswith("alarms-")]
    assert len(widgets) == len(ours)
    drawn = {(w["properties"]["title"], w["properties"]["annotations"]["horizontal"][0]["value"]) for w in widgets}
    for alarm in ours:
        assert (alarm.inputs["alarmDescription"], alarm.inputs["threshold"]) in drawn, alarm.name


def test_retention_outside_cloudwatch_logs_values_is_refused() -> None:
    from ladder.config import ConfigError

    with pytest.raises(ConfigError, match=r"scaleladder:logs\.retentionDays.*30"):
        plan("phase1", logs={"retentionDays": 31})


# Docker's documented keys: daemon.json (dockerd reference, "Daemon configuration file": `bip`,
# `log-driver`, `log-opts`), the awslogs driver's options (moby daemon/logger/awslogs
# ValidateLogOpt: an unknown option makes dockerd refuse to start a container) and the
# daemon's own delivery options (Docker docs "Configure logging drivers": mode, max-buffer-size).
DAEMON_KEYS = {"bip", "log-driver", "log-opts"}
AWSLOGS_OPTS = {"awslogs-region", "awslogs-endpoint", "awslogs-group", "awslogs-stream", "awslogs-create-group",
                "awslogs-create-stream", "awslogs-datetime-format", "awslogs-multiline-pattern",
                "awslogs-credentials-endpoint", "awslogs-force-flush-interval-seconds", "awslogs-max-buffered-events",
                "awslogs-format", "tag", "mode", "max-buffer-size"}


def test_docker_daemon_json_uses_documented_keys_only() -> None:
    daemon = json.loads(metrics.docker_daemon_json("us-east-1", "/scaleladder/x/containers"))
    assert set(daemon) <= DAEMON_KEYS and set(daemon["log-opts"]) <= AWSLOGS_OPTS
    assert daemon["log-opts"]["mode"] in ("blocking", "non-blocking") and daemon["log-opts"]["awslogs-group"]
    assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+/\d+", daemon["bip"])


def test_the_load_balancer_controller_tags_what_it_makes_and_keeps_a_pod_through_drains() -> None:
    """Review aws-phases-5-6 findings 20, 21: the phase-6 ALB is made by the controller, outside
    the plan; its tags come from the chart's defaultTags. Two replicas with a PDB of one."""
    p = the_plan("phase6")
    release = next(r for r in p.of_type("kubernetes:helm.sh/v3:Release") if r.inputs["name"] == "aws-load-balancer-controller")
    values = release.inputs["values"]
    assert values["defaultTags"] == {"project": p.project, "stack": p.stack, "phase": "6"}
    assert values["replicaCount"] == 2 and values["podDisruptionBudget"] == {"maxUnavailable": 1}


def test_phase_6_container_logs_ship_into_groups_with_retention() -> None:
    """Fluent Bit (the CloudWatch Observability add-on) with its Pod Identity role; the groups it
    writes exist first, with the stack's retention (else Fluent Bit makes them, kept forever)."""
    p = the_plan("phase6")
    addon = p.one("aws:eks/addon:Addon", "eks-cloudwatch-observability")
    assert addon.inputs["addonName"] == signals.OBSERVABILITY_ADDON
    (assoc,) = addon.inputs["podIdentityAssociations"]
    assert assoc["serviceAccount"] == signals.OBSERVABILITY_SERVICE_ACCOUNT
    role = next(r for r in p.of_type("aws:iam/role:Role") if r.state.get("arn") == assoc["roleArn"])
    assert any(a.inputs["policyArn"] == signals.CLOUDWATCH_AGENT_POLICY and a.inputs["role"] == role.state["name"]
               for a in p.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment"))
    cluster = p.one("aws:eks/cluster:Cluster").inputs["name"]
    groups = {r.state["name"]: r for r in p.of_type("aws:cloudwatch/logGroup:LogGroup")}
    for kind in signals.CONTAINER_INSIGHTS_GROUPS:
        group = groups[f"/aws/containerinsights/{cluster}/{kind}"]
        assert group.inputs["retentionInDays"] == p.config.logs.retention_days and group.urn in addon.options["dependsOn"]
