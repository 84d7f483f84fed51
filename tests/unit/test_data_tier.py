"""Phase 3 and 4 wiring: replicas, PgBouncer pools, the app's URLs, Redis settings."""

from __future__ import annotations

import configparser
import re

import pytest

from ladder import pgbouncer, redis_settings

from .plans import plan, user_data_texts


def pgbouncer_ini(user_data: str) -> configparser.ConfigParser:
    body = user_data.split("path: /etc/pgbouncer/pgbouncer.ini", 1)[1].split("content: |", 1)[1]
    lines = []
    for line in body.splitlines()[1:]:
        if line and not line.startswith("      "):
            break
        lines.append(line[6:])
    ini = configparser.ConfigParser(comment_prefixes=(";",), inline_comment_prefixes=None, strict=False)
    ini.read_string("\n".join(lines))
    return ini


def boot_env(user_data: str) -> dict[str, str]:
    block = user_data.split("path: /etc/scaleladder/boot.env", 1)[1].split("- path:", 1)[0]
    return dict(re.findall(r"^\s+([A-Z_]+)=\"?([^\"\n]*)\"?$", block, flags=re.M))


def test_replicas_follow_the_primary_without_a_password():
    p = plan("phase3")
    primary = p.one("aws:rds/instance:Instance", "db")
    replicas = [r for r in p.of_type("aws:rds/instance:Instance") if r.name != "db"]
    assert len(replicas) == p.config.database.replicas == 2
    ident = p.outputs["dbAddress"].split(".")[0]
    for r in replicas:
        assert r.inputs["replicateSourceDb"] == ident
        assert r.inputs["instanceClass"] == primary.inputs["instanceClass"]
        assert r.inputs["allocatedStorage"] == primary.inputs["allocatedStorage"], "a replica grows with its source"
        assert not {"username", "password", "manageMasterUserPassword", "dbName"} & set(r.inputs)
        assert r.inputs["vpcSecurityGroupIds"] == primary.inputs["vpcSecurityGroupIds"]
        assert primary.urn in r.options["dependsOn"]
    lag_alarms = [a for a in p.of_type("aws:cloudwatch/metricAlarm:MetricAlarm") if a.inputs.get("metricName") == "ReplicaLag"]
    assert sorted(a.inputs["dimensions"]["DBInstanceIdentifier"] for a in lag_alarms) == sorted(
        r.state["identifier"] for r in replicas)
    assert all(a.inputs["threshold"] == 1 for a in lag_alarms), "the sources promise lag under one second"


def test_pgbouncer_pools_point_at_primary_and_replicas():
    p = plan("phase3")
    texts = user_data_texts(p)
    ini = pgbouncer_ini(texts["pgbouncer"])
    replica_hosts = sorted(r.state["address"] for r in p.of_type("aws:rds/instance:Instance") if r.name != "db")
    rw = dict(kv.split("=", 1) for kv in ini["databases"][pgbouncer.RW_DATABASE].split())
    ro = dict(kv.split("=", 1) for kv in ini["databases"][pgbouncer.RO_DATABASE].split())
    assert rw["host"] == p.outputs["dbAddress"]
    assert sorted(ro["host"].split(",")) == replica_hosts
    cfg = p.config.pgbouncer
    assert ini["pgbouncer"]["pool_mode"] == cfg.pool_mode == "transaction"
    assert int(ini["pgbouncer"]["max_client_conn"]) == cfg.max_client_conn == 300
    assert int(ini["pgbouncer"]["default_pool_size"]) == 25 and int(ini["pgbouncer"]["reserve_pool_size"]) == 5
    assert ini["pgbouncer"]["server_tls_sslmode"] in ("verify-full", "verify-ca")
    assert ini["pgbouncer"]["auth_type"] == "scram-sha-256"
    assert "secretsmanager get-secret-value" in texts["pgbouncer"]


@pytest.mark.parametrize("stack", ["phase3", "phase4"])
def test_the_app_reaches_the_database_only_through_the_nlb(stack):
    p = plan(stack)
    nlb = p.outputs["pgbouncerEndpoint"]
    app_hosts = {n: t for n, t in user_data_texts(p).items() if "scaleladder-boot" in t}
    assert app_hosts
    for name, text in app_hosts.items():
        env = boot_env(text)
        assert env["DB_HOST"] == env["DB_READ_HOST"] == nlb, name
        assert env["DB_PORT"] == "6432"
        assert (env["DB_NAME"], env["DB_READ_NAME"]) == (pgbouncer.RW_DATABASE, pgbouncer.RO_DATABASE)
        assert p.outputs["dbAddress"] not in text, f"{name} knows the RDS address; only PgBouncer should"


@pytest.mark.parametrize("stack", ["phase1", "phase3", "phase4"])
def test_redis_parameter_groups_never_evict(stack):
    p = plan(stack)
    groups = p.of_type("aws:elasticache/parameterGroup:ParameterGroup")
    assert groups
    for g in groups:
        params = {x["name"]: x["value"] for x in g.inputs["parameters"]}
        assert params["maxmemory-policy"] == "noeviction" == redis_settings.BASE_PARAMETERS["maxmemory-policy"]
    rg = p.one("aws:elasticache/replicationGroup:ReplicationGroup")
    chosen = next(g for g in groups if g.state["name"] == rg.inputs["parameterGroupName"])
    params = {x["name"]: x["value"] for x in chosen.inputs["parameters"]}
    assert params["cluster-enabled"] == ("no" if rg.inputs["clusterMode"] == "disabled" else "yes")


def test_phase4_redis_is_a_multi_az_cluster_with_failover():
    rg = plan("phase4").one("aws:elasticache/replicationGroup:ReplicationGroup")
    i = rg.inputs
    assert i["clusterMode"] == "enabled" and i["numNodeGroups"] == 3 and i["replicasPerNodeGroup"] == 1
    assert i["automaticFailoverEnabled"] is True and i["multiAzEnabled"] is True
    assert i["logDeliveryConfigurations"][0]["logType"] == "slow-log"
    assert "numCacheClusters" not in i


def test_phase3_redis_already_has_a_replica_with_failover():
    rg = plan("phase3").one("aws:elasticache/replicationGroup:ReplicationGroup")
    assert rg.inputs["clusterMode"] == "disabled" and rg.inputs["numCacheClusters"] == 2
    assert rg.inputs["automaticFailoverEnabled"] is True


@pytest.mark.parametrize("stack", ["phase1", "phase3", "phase4"])
def test_one_redis_memory_alarm_per_node_as_aws_names_them(stack):
    p = plan(stack)
    rg = p.one("aws:elasticache/replicationGroup:ReplicationGroup")
    watched = sorted(a.inputs["dimensions"]["CacheClusterId"] for a in p.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
                     if a.inputs.get("metricName") == "DatabaseMemoryUsagePercentage")
    assert watched == sorted(rg.state["memberClusters"]), "every node watched once, by the id AWS reports"
