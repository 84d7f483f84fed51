"""`ladder cost` compute rules (issue 17 item 1): CPU credits, detailed monitoring and the hosts'
custom metrics, ElastiCache snapshots, CloudWatch Logs storage, EKS extended support, node disks
from the launch template, Kubernetes volumes, free alarms.

Worked examples on small synthetic plans (the JSON shape ladder.diff.load gives), with every
assumption pinned in a usage file, each figure computed by hand from the catalog's cited prices
(ladder/catalog/prices.yaml, us-east-1): EC2 surplus credits $0.05/vCPU-hour (t3), RDS $0.075,
custom metrics $0.30, API requests $0.01/1,000, ElastiCache backup $0.085/GB-month, Logs $0.50/GB
ingested and $0.03/GB-month stored, EKS $0.10 / $0.60 (extended) per cluster-hour, gp3 $0.08 and
gp2 $0.10 per GB-month, alarms $0.10 per metric.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from ladder.cost import price_plan

INSTANCE, ASG, LT = "aws:ec2/instance:Instance", "aws:autoscaling/group:Group", "aws:ec2/launchTemplate:LaunchTemplate"
POLICY, RDS = "aws:autoscaling/policy:Policy", "aws:rds/instance:Instance"
REDIS, LOGS = "aws:elasticache/replicationGroup:ReplicationGroup", "aws:cloudwatch/logGroup:LogGroup"
EKS, NODES, ALARM = "aws:eks/cluster:Cluster", "aws:eks/nodeGroup:NodeGroup", "aws:cloudwatch/metricAlarm:MetricAlarm"
PVC, STS = "kubernetes:core/v1:PersistentVolumeClaim", "kubernetes:apps/v1:StatefulSet"
SC = "kubernetes:storage.k8s.io/v1:StorageClass"
SECONDS = 730 * 3600  # a month of 730 hours
# Usage that puts nothing on load balancers or the internet (the lines below stand alone).
QUIET = {"api_requests": 0, "static_requests": 0, "messages": 0, "api_gb": 0, "static_gb": 0, "egress_gb": 0,
         "nat_gb": 0, "db_gb": 0}


def res(type_: str, name: str, inputs: dict[str, Any] | None = None, depends: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"urn": urn(type_, name), "id": f"{name}-id", "type": type_, "name": name, "parent": None, "custom": True,
            "inputs": inputs or {}, "options": {"dependsOn": list(depends)}}


def urn(type_: str, name: str) -> str:
    return f"urn:pulumi:compute::test::{type_}::{name}"


def price(tmp_path: Path, resources: list[dict[str, Any]], assumptions: Mapping[str, float] | None = None,
          monthly: Mapping[str, float] | None = None, phase: int = 2):
    usage = tmp_path / "usage.yml"
    usage.write_text(yaml.safe_dump({"assumptions": {"free_allowance_share": 0, **(assumptions or {})},
                                     "monthly": {**QUIET, **(monthly or {})}}))
    return price_plan({"phase": phase, "region": "us-east-1", "resources": resources}, usage, with_band=False)


def lines(report, sku: str, name: str | None = None):
    return [i for i in report.items if i.sku.startswith(sku) and (name is None or i.name == name)]


def usd(report, sku: str, name: str | None = None) -> float:
    return round(sum(i.monthly_usd for i in lines(report, sku, name)), 2)


# ---------------------------------------------------------------------------
# CPU credits


def app_group(itype: str = "t3.medium", credits: str | None = None, monitoring: bool = False) -> list[dict[str, Any]]:
    """An app Auto Scaling group (1..4) held at 40 % CPU by target tracking; its hosts run the API."""
    template: dict[str, Any] = {"instanceType": itype, "userData": 'ROLES="api"',
                                "blockDeviceMappings": [{"deviceName": "/dev/sda1", "ebs": {"volumeSize": 30}}]}
    if credits:
        template["creditSpecification"] = {"cpuCredits": credits}
    if monitoring:
        template["monitoring"] = {"enabled": True}
    return [res(LT, "app-lt", template),
            res(ASG, "fleet-app", {"name": "s-app", "minSize": 1, "maxSize": 4}, (urn(LT, "app-lt"),)),
            res(POLICY, "app-cpu", {"autoscalingGroupName": "s-app", "policyType": "TargetTrackingScaling",
                                    "targetTrackingConfiguration": {"targetValue": 40, "predefinedMetricSpecification": {
                                        "predefinedMetricType": "ASGAverageCPUUtilization"}}})]


# 800 req/s: the capacity model's 500 req/s per core gives 0.8 cores per host at 40 % of 2 vCPUs,
# i.e. 400 req/s per host: 2 hosts, each at 400 req/s = 0.8 of its 2 vCPUs = 40 % average CPU.
AT_TARGET = {"api_requests": 800 * SECONDS}


def test_t3_medium_at_40_percent_pays_surplus_credits_above_its_20_percent_baseline(tmp_path):
    report = price(tmp_path, app_group(), monthly=AT_TARGET)
    assert lines(report, "ec2_instance_hour", "fleet-app")[0].quantity == 2 * 730
    (credit,) = lines(report, "ec2_cpu_credit_vcpu_hour", "fleet-app")
    # (40 % - 20 %) x 2 vCPUs x 730 h x 2 hosts = 584 vCPU-hours x $0.05 = $29.20
    assert credit.sku == "ec2_cpu_credit_vcpu_hour:t3" and credit.quantity == pytest.approx(584)
    assert credit.monthly_usd == 29.20 and credit.usage_driven


def test_standard_credits_and_fixed_performance_types_pay_no_surplus(tmp_path):
    assert not lines(price(tmp_path, app_group(credits="standard"), monthly=AT_TARGET), "ec2_cpu_credit")
    assert lines(price(tmp_path, app_group(credits="unlimited"), monthly=AT_TARGET), "ec2_cpu_credit")
    assert not lines(price(tmp_path, app_group("m6i.large"), monthly=AT_TARGET), "ec2_cpu_credit")


def test_a_group_below_its_baseline_pays_nothing(tmp_path):
    # 100 req/s on one host (the minimum): 0.2 cores of 2 vCPUs = 10 %, under t3.medium's 20 %
    assert not lines(price(tmp_path, app_group(), monthly={"api_requests": 100 * SECONDS}), "ec2_cpu_credit")


def test_burstable_rds_pays_surplus_at_the_db_cpu_assumption_once_even_multi_az(tmp_path):
    def db(cls: str, multi: bool = False) -> list[dict[str, Any]]:
        return [res(RDS, "db", {"instanceClass": cls, "allocatedStorage": 20, "multiAz": multi})]

    (credit,) = lines(price(tmp_path, db("db.t4g.medium"), {"db_cpu_percent": 30}), "rds_cpu_credit_vcpu_hour")
    # (30 % - 20 %) x 2 vCPUs x 730 h = 146 vCPU-hours x $0.075 = $10.95
    assert credit.quantity == pytest.approx(146) and credit.monthly_usd == 10.95
    # the standby runs no queries: still one instance's surplus
    assert usd(price(tmp_path, db("db.t4g.medium", True), {"db_cpu_percent": 30}), "rds_cpu_credit") == 10.95
    assert not lines(price(tmp_path, db("db.t4g.medium"), {"db_cpu_percent": 15}), "rds_cpu_credit")
    assert not lines(price(tmp_path, db("db.m6g.large"), {"db_cpu_percent": 90}), "rds_cpu_credit")


# ---------------------------------------------------------------------------
# Detailed monitoring and the hosts' metrics


def test_detailed_monitoring_is_seven_custom_metrics_per_instance(tmp_path):
    on = price(tmp_path, [res(INSTANCE, "vm", {"instanceType": "t3.micro", "monitoring": True})])
    assert lines(on, "cloudwatch_metric_month", "vm")[0].quantity == 7 and usd(on, "cloudwatch_metric_month") == 2.10
    off = price(tmp_path, [res(INSTANCE, "vm", {"instanceType": "t3.micro", "monitoring": False})])
    assert not lines(off, "cloudwatch_metric_month")
    # a group of 2 hosts (800 req/s at 40 %): 14 metrics = $4.20
    group = price(tmp_path, app_group(monitoring=True), monthly=AT_TARGET)
    assert usd(group, "cloudwatch_metric_month", "fleet-app") == 4.20


def test_the_free_ten_metrics_are_the_accounts_not_each_instances(tmp_path):
    vms = [res(INSTANCE, f"vm{n}", {"instanceType": "t3.micro", "monitoring": True}) for n in range(3)]
    report = price(tmp_path, vms, {"free_allowance_share": 1})
    # 21 metrics, 10 free for the account: 11 x $0.30 = $3.30, split over the three
    assert sum(i.quantity for i in lines(report, "cloudwatch_metric_month")) == pytest.approx(11, abs=1e-3)
    assert usd(report, "cloudwatch_metric_month") == pytest.approx(3.30, abs=0.01)


HOST_USER_DATA = 'ROLES="api worker"\n/usr/local/bin/scaleladder-metrics\n/usr/local/bin/scaleladder-host-metrics\n'


def test_a_publishing_host_pays_for_the_contracts_metrics_and_its_calls(tmp_path):
    vm = res(INSTANCE, "app", {"instanceType": "t3.medium", "monitoring": True, "userDataBase64": HOST_USER_DATA})
    report = price(tmp_path, [vm], monthly={"api_requests": 10 * SECONDS})
    # 7 detailed + ScaleLadder/App (QueueWaiting, RequestLatency, ServerErrors, ApiAnswers) + memory = 12 x $0.30
    assert usd(report, "cloudwatch_metric_month") == 3.60
    # per minute: app publisher 1 call (ServerErrors, QueueWaiting, ApiAnswers + 600 latencies / 150 = 4
    # datums: 7 <= 20) + host-metrics 1 call = 2 x 43,800 minutes = 87,600 calls x $0.01/1,000 = $0.88
    (calls,) = lines(report, "cloudwatch_api_requests_1k", "app")
    assert calls.quantity == pytest.approx(87.6) and calls.monthly_usd == 0.88
    # at 100 req/s: 6,000 latencies / 150 = 40 datums + 3 = 43 -> 3 calls a minute (20 data each) + 1
    # host-metrics call = 4 x 43,800 = 175,200 calls = $1.75
    busy = price(tmp_path, [vm], monthly={"api_requests": 100 * SECONDS})
    (calls,) = lines(busy, "cloudwatch_api_requests_1k", "app")
    assert calls.quantity == pytest.approx(175.2) and calls.monthly_usd == 1.75


# ---------------------------------------------------------------------------
# ElastiCache snapshots


@pytest.mark.parametrize(("kept", "expected"), [(0, 0.0), (1, 0.0), (7, 1.02)])
def test_snapshots_beyond_the_free_one_cost_the_dataset_each(tmp_path, kept, expected):
    redis = res(REDIS, "redis", {"nodeType": "cache.t4g.small", "numCacheClusters": 2, "snapshotRetentionLimit": kept})
    report = price(tmp_path, [redis], {"redis_dataset_gb": 2})
    # 7 kept, one free: 6 x 2 GB = 12 GB-months x $0.085 = $1.02
    assert usd(report, "elasticache_backup_gb_month") == expected


# ---------------------------------------------------------------------------
# CloudWatch Logs


def test_log_group_pays_ingestion_and_compressed_storage_for_its_retention(tmp_path):
    group = res(LOGS, "logs", {"name": "/app/logs", "retentionInDays": 30})
    report = price(tmp_path, [group], {"log_storage_compression": 0.15}, {"log_gb_per_source": 100})
    assert usd(report, "cloudwatch_logs_ingest_gb") == 50.00  # 100 GB x $0.50
    # 100 GB x 0.15 x 30 / (365 / 12) days = 14.795 GB-months x $0.03 = $0.44
    (stored,) = lines(report, "cloudwatch_logs_storage_gb_month")
    assert stored.quantity == pytest.approx(14.7945, abs=1e-3) and stored.monthly_usd == 0.44
    # the free 5 GB (ingestion and storage together) comes off the account's ingestion once
    free = price(tmp_path, [group, res(LOGS, "more", {"name": "/app/more", "retentionInDays": 30})],
                 {"log_storage_compression": 0.15, "free_allowance_share": 1}, {"log_gb_per_source": 100})
    assert usd(free, "cloudwatch_logs_ingest_gb") == 97.50  # (200 - 5) GB x $0.50


def test_eks_audit_and_api_logs_use_their_own_volumes(tmp_path):
    group = res(LOGS, "cp", {"name": "/aws/eks/c/cluster", "retentionInDays": 7})
    cluster = res(EKS, "eks", {"version": "1.35", "upgradePolicy": {"supportType": "STANDARD"},
                               "enabledClusterLogTypes": ["api", "audit", "scheduler"]}, (urn(LOGS, "cp"),))
    report = price(tmp_path, [group, cluster], {"eks_audit_log_gb": 40, "eks_api_log_gb": 5},
                   {"log_gb_per_source": 1}, phase=6)
    # 40 (audit) + 5 (api) + 1 (scheduler) = 46 GB x $0.50 = $23.00, on the group only
    assert usd(report, "cloudwatch_logs_ingest_gb", "cp") == 23.00
    assert not lines(report, "cloudwatch_logs", "eks")


def test_rds_exports_into_groups_the_program_creates_are_counted_once(tmp_path):
    db = res(RDS, "db", {"identifier": "s-db", "instanceClass": "db.m6g.large", "allocatedStorage": 20,
                         "enabledCloudwatchLogsExports": ["postgresql", "upgrade"]})
    group = res(LOGS, "pg-log", {"name": "/aws/rds/instance/s-db/postgresql", "retentionInDays": 30})
    report = price(tmp_path, [db, group], monthly={"log_gb_per_source": 2})
    # postgresql: on its group (2 GB); upgrade has no group: on the instance (2 GB); $1.00 each
    assert usd(report, "cloudwatch_logs_ingest_gb", "pg-log") == 1.00
    assert usd(report, "cloudwatch_logs_ingest_gb", "db") == 1.00


# ---------------------------------------------------------------------------
# EKS


def test_extended_support_for_a_version_past_standard_support(tmp_path):
    # catalog date 2026-11-23: 1.31's standard support ended 2025-11-26 (aws_facts.EKS_CALENDAR)
    old = price(tmp_path, [res(EKS, "eks", {"version": "1.31"})], phase=6)
    (hours,) = lines(old, "eks_")
    assert hours.sku == "eks_extended_support_cluster_hour" and hours.monthly_usd == 438.00  # 730 x $0.60
    upgraded = price(tmp_path, [res(EKS, "eks", {"version": "1.31", "upgradePolicy": {"supportType": "STANDARD"}})],
                     phase=6)
    assert [(i.sku, i.monthly_usd) for i in lines(upgraded, "eks_")] == [("eks_cluster_hour", 73.00)]
    current = price(tmp_path, [res(EKS, "eks", {"version": "1.35"})], phase=6)
    assert [(i.sku, i.monthly_usd) for i in lines(current, "eks_")] == [("eks_cluster_hour", 73.00)]


def node_group(disk_size: int | None, template_gb: int | None) -> list[dict[str, Any]]:
    out = [res(EKS, "eks", {"version": "1.35"})]
    inputs: dict[str, Any] = {"instanceTypes": ["m6i.large"], "scalingConfig": {"minSize": 3, "maxSize": 3}}
    deps: tuple[str, ...] = ()
    if disk_size is not None:
        inputs["diskSize"] = disk_size
    if template_gb is not None:
        out.append(res(LT, "nodes-lt", {"blockDeviceMappings": [{"deviceName": "/dev/xvda",
                                                                  "ebs": {"volumeSize": template_gb}}]}))
        inputs["launchTemplate"] = {"id": "lt-1", "version": "1"}
        deps = (urn(LT, "nodes-lt"),)
    return out + [res(NODES, "nodes", inputs, deps)]


def test_node_disks_come_from_the_launch_template_when_the_group_uses_one(tmp_path):
    # 3 nodes x 50 GB = 150 GB-months x $0.08 = $12.00 (the template's size, never diskSize)
    assert usd(price(tmp_path, node_group(None, 50), phase=6), "ebs_gp3_gb_month", "nodes") == 12.00
    assert usd(price(tmp_path, node_group(80, 50), phase=6), "ebs_gp3_gb_month", "nodes") == 12.00
    # no launch template: diskSize (default 20 GB): 3 x 20 = 60 GB-months = $4.80
    assert usd(price(tmp_path, node_group(None, None), phase=6), "ebs_gp3_gb_month", "nodes") == 4.80


# ---------------------------------------------------------------------------
# Kubernetes volumes


def test_claims_and_statefulset_templates_are_ebs_volumes_by_storage_class(tmp_path):
    gp3 = res(SC, "fast", {"metadata": {"name": "fast"}, "provisioner": "ebs.csi.aws.com", "parameters": {"type": "gp3"}})
    claim = res(PVC, "data", {"spec": {"storageClassName": "fast", "resources": {"requests": {"storage": "10Gi"}}}})
    sts = res(STS, "queue", {"spec": {"replicas": 3, "volumeClaimTemplates": [
        {"spec": {"resources": {"requests": {"storage": "20Gi"}}}}]}})
    report = price(tmp_path, [gp3, claim, sts], phase=6)
    assert usd(report, "ebs_gp3_gb_month", "data") == 0.80  # 10 GiB x $0.08
    # no class named, none default: EKS's gp2 class: 3 x 20 GiB = 60 x $0.10 = $6.00
    assert usd(report, "ebs_gp2_gb_month", "queue") == 6.00


# ---------------------------------------------------------------------------
# Free alarms


def test_ten_standard_alarm_metrics_a_month_are_free_for_the_account(tmp_path):
    alarms = [res(ALARM, f"a{n}", {"period": 60, "metricName": "CPUUtilization"}) for n in range(12)]
    assert usd(price(tmp_path, alarms, {"free_allowance_share": 1}), "cloudwatch_alarm") == pytest.approx(0.20, abs=0.01)
    assert usd(price(tmp_path, alarms), "cloudwatch_alarm") == 1.20  # --no-free-tier: 12 x $0.10


# ---------------------------------------------------------------------------
# The presets


def test_phase6_node_disks_are_the_launch_templates_50_gb():
    from ladder.diff import load

    plan = load("phase6")
    template = next(r for r in plan["resources"] if r["type"] == LT and r["name"] == "eks-nodes")
    (size,) = [m["ebs"]["volumeSize"] for m in template["inputs"]["blockDeviceMappings"]]
    report = price_plan(plan, with_band=False)
    (hours,) = lines(report, "ec2_instance_hour", "eks-nodes")
    (disk,) = lines(report, "ebs_gp3_gb_month", "eks-nodes")
    assert size == 50 and disk.quantity == pytest.approx(50 * hours.quantity / 730)


def test_a_measured_host_cpu_replaces_the_models(tmp_path):
    # 100 req/s keeps the model's host at 10 %; measured 60 % on the one host: (60 - 20) % x 2 x 730
    # = 584 vCPU-hours = $29.20
    report = price(tmp_path, app_group(), {"host_cpu_percent": 60}, {"api_requests": 100 * SECONDS})
    assert usd(report, "ec2_cpu_credit_vcpu_hour", "fleet-app") == 29.20
    assert not lines(price(tmp_path, app_group(credits="standard"), {"host_cpu_percent": 60}), "ec2_cpu_credit")


def test_a_standalone_cache_cluster_keeps_snapshots_too_a_member_none(tmp_path):
    alone = res("aws:elasticache/cluster:Cluster", "cache", {"engine": "redis", "nodeType": "cache.t4g.small",
                                                               "numCacheNodes": 1, "snapshotRetentionLimit": 3})
    # 3 kept, one free: 2 x 1 GB = 2 GB-months x $0.085 = $0.17
    assert usd(price(tmp_path, [alone], {"redis_dataset_gb": 1}), "elasticache_backup_gb_month") == 0.17
    alone["inputs"]["replicationGroupId"] = "rg"  # priced on its replication group
    assert not lines(price(tmp_path, [alone], {"redis_dataset_gb": 1}), "elasticache_backup")


def test_phase1_prices_the_vms_monitoring_and_publisher_and_the_burstable_db(tmp_path):
    from ladder.diff import load

    usage = tmp_path / "usage.yml"
    usage.write_text(yaml.safe_dump({"assumptions": {"free_allowance_share": 0, "db_cpu_percent": 30}}))
    report = price_plan(load("phase1"), usage, with_band=False)
    # the VM: monitoring=True (7) + ScaleLadder/App's 4 (its publisher probes the API) + MemoryUtilization
    # = 12 metrics x $0.30 = $3.60
    assert usd(report, "cloudwatch_metric_month", "app") == 3.60
    # db.t4g.medium at 30 %: (30 - 20) % x 2 vCPUs x 730 h x $0.075 = $10.95
    assert usd(report, "rds_cpu_credit_vcpu_hour", "db") == 10.95
    # at phase 1's average load (20 req/s) the t3.medium VM stays under its 20 % baseline: no credits
    assert not lines(report, "ec2_cpu_credit")


def test_burstable_eks_nodes_pay_surplus_on_the_pods_cpu(tmp_path):
    plan = [res(EKS, "eks", {"version": "1.35"}),
            res(NODES, "nodes", {"instanceTypes": ["t3.large"], "scalingConfig": {"minSize": 2, "maxSize": 2}})]
    # 1,000 req/s: 2 cores of app (500 req/s per core) + 2,000 tx/s / 20,000 per PgBouncer core = 0.1
    # -> 2.1 cores over 2 nodes x 2 vCPUs = 52.5 %; t3.large's baseline 30 %: 22.5 % x 2 vCPUs x 730 h
    # x 2 nodes = 657 vCPU-hours x $0.05 = $32.85
    report = price(tmp_path, plan, monthly={"api_requests": 1000 * SECONDS}, phase=6)
    (credit,) = lines(report, "ec2_cpu_credit_vcpu_hour", "nodes")
    assert credit.quantity == pytest.approx(657) and credit.monthly_usd == 32.85
    plan[1]["inputs"]["instanceTypes"] = ["m6i.large"]
    assert not lines(price(tmp_path, plan, monthly={"api_requests": 1000 * SECONDS}, phase=6), "ec2_cpu_credit")


def test_a_claim_naming_a_class_the_plan_does_not_create(tmp_path):
    claim = res(PVC, "data", {"spec": {"storageClassName": "gp3", "resources": {"requests": {"storage": "500Mi"}}}})
    # 500 MiB = 0.48828 GiB; in a class named gp3: x $0.08 = $0.04
    assert usd(price(tmp_path, [claim], phase=6), "ebs_gp3_gb_month", "data") == 0.04
    claim["inputs"]["spec"]["storageClassName"] = "standard"  # unknown: EKS's gp2 ($0.10): $0.05
    assert usd(price(tmp_path, [claim], phase=6), "ebs_gp2_gb_month", "data") == 0.05


def test_the_apps_stack_metrics_are_counted_once_however_many_api_hosts(tmp_path):
    vms = [res(INSTANCE, f"app{n}", {"instanceType": "t3.medium", "userDataBase64": HOST_USER_DATA}) for n in range(3)]
    # ScaleLadder/App's 4 metrics carry only the Stack dimension: 4 + one MemoryUtilization per host
    # (InstanceId) = 7 metrics x $0.30 = $2.10
    report = price(tmp_path, vms, monthly={"api_requests": 10 * SECONDS})
    assert sum(i.quantity for i in lines(report, "cloudwatch_metric_month")) == 7
    assert usd(report, "cloudwatch_metric_month") == 2.10


def test_graviton_surplus_credits_are_priced_at_the_t4g_rate(tmp_path):
    # the same 584 vCPU-hours on t4g.medium (20 % baseline) at $0.04 = $23.36
    (credit,) = lines(price(tmp_path, app_group("t4g.medium"), monthly=AT_TARGET), "ec2_cpu_credit_vcpu_hour")
    assert credit.sku == "ec2_cpu_credit_vcpu_hour:t4g" and credit.monthly_usd == 23.36
