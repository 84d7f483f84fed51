"""Climbs 1 -> 5 (and their step backs) as sequences the program enforces.

Each `up` of a climb is a plan of ONE stack (a preset file with `phase` raised, as
`pulumi config set scaleladder:phase N` does) run with the previous `up`'s real outputs (the
program reads them through the StackReference to its own stack). The tests read the plan's dependency graph
(`options.dependsOn`: every resource a resource waits for, explicit or through its inputs) and
the inputs that make `pulumi up` wait for health (ladder/climb.py, components/fleet.py,
components/pgbouncer.py; README "Climbing, step by step").
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import pytest

from ladder import climb, engine, userdata
from ladder.config import ConfigError

from .plans import plan, stack_values

GROUP = "aws:autoscaling/group:Group"
TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
ROUTE_TABLE = "aws:ec2/routeTable:RouteTable"
ASSOCIATION = "aws:ec2/routeTableAssociation:RouteTableAssociation"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
INSTANCE = "aws:ec2/instance:Instance"
REDIS = "aws:elasticache/replicationGroup:ReplicationGroup"


@cache
def _up(stack: str, previous_json: str, deployed_json: str, overrides_json: str) -> engine.Plan:
    return engine.run(stack, values=stack_values(stack, **json.loads(overrides_json)),
                      previous_outputs=json.loads(previous_json), deployed=json.loads(deployed_json))


def deployed(p: engine.Plan) -> dict[str, dict[str, Any]]:
    """What AWS reports after `p` was applied (the mocked describe calls the program makes)."""
    group = p.one(REDIS, "redis").inputs
    shape = ("clusterMode", "numCacheClusters", "numNodeGroups", "replicasPerNodeGroup", "nodeType")
    return {"redis": {k: group[k] for k in shape if k in group},
            "db": {"allocatedStorage": p.one("aws:rds/instance:Instance", "db").inputs["allocatedStorage"]}}


def up(stack: str, previous: engine.Plan, **overrides: Any) -> engine.Plan:
    """One `pulumi up` of `stack` after the `up` that produced `previous`."""
    return _up(stack, json.dumps(engine.public(previous.outputs), sort_keys=True, default=str),
               json.dumps(deployed(previous), sort_keys=True), json.dumps(overrides, sort_keys=True))


def waits_for(p: engine.Plan, resource: engine.Resource) -> set[str]:
    """Every URN `resource` waits for, directly or through what it waits for."""
    by_urn, seen, todo = p.by_urn, set(), list(resource.options["dependsOn"])
    while todo:
        urn = todo.pop()
        if urn not in seen:
            seen.add(urn)
            todo += by_urn[urn].options["dependsOn"] if urn in by_urn else []
    return seen


def one(p: engine.Plan, type_: str, name: str) -> engine.Resource:
    return p.one(type_, name)


def boot_env(p: engine.Plan, template: str) -> dict[str, str]:
    """KEY=value lines of an app launch template's /etc/scaleladder files (boot.env, app.plain.env)."""
    text = userdata.decode(one(p, TEMPLATE, template).inputs["userData"])
    return dict(line.strip().split("=", 1) for line in text.splitlines()
                if "=" in line and line.startswith("      ") and line.strip().split("=", 1)[0].isupper())


def db_ingress(p: engine.Plan) -> set[str]:
    """Names of the rules that admit a tier into PostgreSQL."""
    return {r.name for r in p.of_type(INGRESS) if r.inputs["fromPort"] == 5432}


def lb_ingress(p: engine.Plan) -> set[str]:
    """Names of the rules that admit clients into the load balancer's security group."""
    return {r.name for r in p.of_type(INGRESS) if r.name.startswith("lb-from-")}


def refused(stack: str, previous: engine.Plan, **overrides: Any) -> str:
    with pytest.raises(ConfigError) as err:
        engine.run(stack, values=stack_values(stack, **overrides), previous_outputs=engine.public(previous.outputs),
                   deployed=deployed(previous))
    return str(err.value)


# --- 1 -> 2 -----------------------------------------------------------------------------------

def test_climb_1_to_2_hosts_wait_for_nat_route_and_the_vm_stays_until_the_alb_served():
    phase1 = plan("phase1")
    first = up("phase1", phase1, phase=2, climb={"keepSingleHost": True})

    # Every group in private subnets waits for the route table (with its NAT route) and the
    # association of each of its subnets: hosts booting before the NAT route never serve.
    tables = {r.urn: r for r in first.of_type(ROUTE_TABLE)}
    for group in first.of_type(GROUP):
        waited = waits_for(first, group)
        for subnet_id in group.inputs["vpcZoneIdentifiers"]:
            assoc = next(a for a in first.of_type(ASSOCIATION) if a.inputs["subnetId"] == subnet_id)
            table = next(t for t in tables.values() if t.id == assoc.inputs["routeTableId"])
            assert any(route.get("natGatewayId") for route in table.inputs["routes"]), table.name
            assert {assoc.urn, table.urn} <= waited, f"{group.name} launches before {table.name} routes via NAT"

    # The app group's create returns only once its hosts are healthy ALB targets.
    app = one(first, GROUP, "fleet-app")
    assert app.inputs["minElbCapacity"] == app.inputs["desiredCapacity"] >= 1
    assert "waitForElbCapacity" not in app.inputs  # exact on update: breaks with target tracking

    # The phase-1 VM and its Elastic IP stay, unchanged (same URN and replace-forcing user data),
    # still admitted from the internet, while the ALB comes up.
    vm1, vm2 = one(phase1, INSTANCE, "app"), one(first, INSTANCE, "app")
    assert vm2.urn == vm1.urn
    assert {k: vm2.inputs[k] for k in ("userDataBase64", "instanceType")} == \
           {k: vm1.inputs[k] for k in ("userDataBase64", "instanceType")}
    assert one(first, "aws:ec2/eip:Eip", "app-ip").urn == one(phase1, "aws:ec2/eip:Eip", "app-ip").urn
    assert "app-from-0.0.0.0_0-80" in {r.name for r in first.of_type(INGRESS)}
    assert first.outputs[climb.OUT_SINGLE_HOST]

    # Dropping the VM in the same `up` that creates the load balancer is refused, naming the key.
    assert "scaleladder:climb.keepSingleHost" in refused("phase1", phase1, phase=2)
    # Once an `up` brought the fleet up serving, the VM goes (and its internet rule).
    second = up("phase1", first, phase=2)
    assert not second.of_type(INSTANCE)
    assert "app-from-0.0.0.0_0-80" not in {r.name for r in second.of_type(INGRESS)}


def test_the_kept_vm_keeps_the_instance_type_it_was_deployed_with():
    # Phase 1 with its own type: the keepSingleHost `up` must not resize (stop) the only serving VM.
    phase1 = up("phase1", plan("phase1"), appTier={"instanceType": "t3.large"})
    vm1 = one(phase1, INSTANCE, "app")
    assert vm1.inputs["instanceType"] == phase1.outputs[climb.OUT_SINGLE_HOST_TYPE] == "t3.large"
    # Phase 2 sizes its fleet otherwise: the recorded type wins for the VM, the fleet gets the new one.
    first = up("phase1", phase1, phase=2, climb={"keepSingleHost": True}, appTier={"instanceType": "t3.small"})
    assert one(first, INSTANCE, "app").inputs["instanceType"] == "t3.large"
    assert one(first, TEMPLATE, "fleet-app").inputs["instanceType"] == "t3.small"
    # A stack deployed before `singleHostType` existed: the type phase 1 resolves from its keys.
    old = {k: v for k, v in engine.public(phase1.outputs).items() if k != climb.OUT_SINGLE_HOST_TYPE}
    again = engine.run("phase1", values=stack_values("phase1", phase=2, climb={"keepSingleHost": True},
                                                     appTier={"instanceType": "t3.large"}),
                       previous_outputs=old, deployed=deployed(phase1))
    assert one(again, INSTANCE, "app").inputs["instanceType"] == "t3.large"


def test_stacks_deployed_before_the_climb_outputs_are_guarded_too():
    # a599ad3's phase-1 outputs: no singleHostIp, fleetServed, singleHostType.
    new_keys = {climb.OUT_SINGLE_HOST, climb.OUT_SINGLE_HOST_TYPE, climb.OUT_FLEET_SERVED, climb.OUT_AMI}
    old1 = {k: v for k, v in engine.public(plan("phase1").outputs).items() if k not in new_keys}
    assert old1[climb.OUT_PHASE] == 1
    assert "scaleladder:climb.keepSingleHost" in "\n".join(climb.problems(plan("phase2").config, old1))
    assert "scaleladder:phase" in "\n".join(climb.problems(plan("phase6").config, old1))
    # Phase 6 comes only from phase 5 (one phase at a time), whatever the outputs hold.
    for stack in ("phase2", "phase3", "phase4"):
        old = {k: v for k, v in engine.public(plan(stack).outputs).items() if k not in new_keys}
        found = "\n".join(climb.problems(plan("phase6").config, old))
        assert "scaleladder:phase" in found and "one phase at a time" in found, stack
    assert climb.problems(plan("phase6").config, engine.public(plan("phase5").outputs)) == []


def test_step_back_2_to_1_keeps_the_load_balancer_until_a_vm_serves():
    phase2 = up("phase1", plan("phase1"), phase=2, climb={"keepSingleHost": True})
    served = {climb.OUT_PHASE: 2, climb.OUT_FLEET_SERVED: "scaleladder-phase2-app"}
    assert "scaleladder:phase" in "\n".join(climb.problems(phase1_config(), served))
    # With the VM up beside the fleet (the keepSingleHost `up`), phase 1 may remove the fleet.
    assert climb.problems(phase1_config(), engine.public(phase2.outputs)) == []


def phase1_config():
    return plan("phase1").config


# --- 2 -> 3 -----------------------------------------------------------------------------------

def test_climb_2_to_3_app_moves_to_pgbouncer_only_after_it_served_and_direct_rules_go_last():
    phase2 = plan("phase2")
    direct_rules = {"db-from-app-5432", "db-from-workers-5432"}
    assert direct_rules <= db_ingress(phase2)

    # The switch in the `up` that creates PgBouncer is refused, naming the key.
    assert "scaleladder:climb.appDatabaseRoute" in refused("phase2", phase2, phase=3)

    # Up 1: replicas and PgBouncer; the app stays on the direct route and keeps its rules.
    first = up("phase2", phase2, phase=3, climb={"appDatabaseRoute": "direct"})
    assert boot_env(first, "fleet-app")["DB_VIA_PGBOUNCER"] == "false"
    assert direct_rules | {"db-from-pgbouncer-5432"} <= db_ingress(first)
    pgb = one(first, GROUP, "pgbouncer")
    assert pgb.inputs["waitForElbCapacity"] == pgb.inputs["desiredCapacity"] == pgb.inputs["minSize"]

    # Up 2: the app moves; its launch templates (whose change starts the instance refresh) wait for
    # the PgBouncer group, which waits for healthy NLB targets; the direct rules stay this `up`.
    second = up("phase2", first, phase=3)
    pgb = one(second, GROUP, "pgbouncer")
    assert pgb.inputs["waitForElbCapacity"] == pgb.inputs["desiredCapacity"]
    for template in ("fleet-app", "fleet-workers"):
        assert boot_env(second, template)["DB_VIA_PGBOUNCER"] == "true"
        assert pgb.urn in waits_for(second, one(second, TEMPLATE, template)), template
    assert direct_rules <= db_ingress(second)

    # Up 3: every host got the PgBouncer route in the previous `up`: only PgBouncer reaches RDS, once
    # the operator confirmed that the refresh onto the templates that `up` wrote (started, not
    # awaited) finished: refused without the confirmation.
    assert "scaleladder:climb.refreshedTemplates" in refused("phase2", second, phase=3)
    third = up("phase2", second, phase=3, climb={"refreshedTemplates": refreshed(second)})
    assert db_ingress(third) == {"db-from-pgbouncer-5432"}

    # Step back 3 -> 2 straight from PgBouncer is refused (PgBouncer would go while hosts use it);
    # phase 3 with the direct route first, then phase 2.
    same_data_tier = {"database": {"storageGb": 100, "maxStorageGb": 500}, "redis": {"replicasPerShard": 1}}
    assert "scaleladder:phase: the app reaches RDS through PgBouncer" in refused("phase2", second, **same_data_tier)
    back = up("phase2", second, phase=3, climb={"appDatabaseRoute": "direct"})
    assert boot_env(back, "fleet-app")["DB_VIA_PGBOUNCER"] == "false"
    assert direct_rules <= db_ingress(back)
    assert climb.problems(plan("phase2").config, engine.public(back.outputs)) == []


# --- 3 -> 4 -----------------------------------------------------------------------------------

def test_climb_3_to_4_app_takes_the_cluster_protocol_in_compatible_mode():
    phase3 = plan("phase3")
    group3 = one(phase3, "aws:elasticache/replicationGroup:ReplicationGroup", "redis")
    env3 = boot_env(phase3, "fleet-app")
    assert (env3["REDIS_HOST"], env3["REDIS_CLUSTER"]) == (group3.state["primaryEndpointAddress"], "false")

    compatible = up("phase3", phase3, phase=4, redis={"clusterMode": "compatible", "shards": 1})
    group = one(compatible, "aws:elasticache/replicationGroup:ReplicationGroup", "redis")
    assert group.inputs["clusterMode"] == "compatible"
    for template in ("fleet-app", "fleet-workers"):
        env = boot_env(compatible, template)
        assert (env["REDIS_HOST"], env["REDIS_CLUSTER"]) == (group.state["configurationEndpointAddress"], "true")
        # The hosts learn the endpoint from the group, so they roll only after the mode change.
        assert group.urn in waits_for(compatible, one(compatible, TEMPLATE, template))

    # Step 3, `enabled`, ends the primary endpoint: only once the refresh that moved the hosts onto
    # the configuration endpoint is confirmed.
    enabled = {"clusterMode": "enabled", "shards": 1}
    assert "scaleladder:climb.refreshedTemplates" in refused("phase3", compatible, phase=4, redis=enabled)
    done = up("phase3", compatible, phase=4, redis=enabled, climb={"refreshedTemplates": refreshed(compatible)})
    assert one(done, REDIS, "redis").inputs["clusterMode"] == "enabled"


# --- 4 -> 5 and back --------------------------------------------------------------------------

def test_climb_4_to_5_cloudfront_points_at_the_load_balancer_that_already_serves():
    phase4 = plan("phase4")
    https = stack_values("phase5")  # from phase 5 CloudFront reaches the ALB over HTTPS
    tls = {"app": {"certificateArn": https["scaleladder:app"]["certificateArn"]}, "cdn": https["scaleladder:cdn"]}
    # From phase 5 the ALB answers only CloudFront: the first phase-5 `up` must keep it open to the
    # clients whose DNS still points at it.
    assert "scaleladder:climb.keepAlbOpen" in refused("phase4", phase4, phase=5, **tls)
    phase5 = up("phase4", phase4, phase=5, climb={"keepAlbOpen": True}, **tls)
    # The load balancer's group keeps admitting the internet (phase 4's rules, same names: kept in
    # place) beside CloudFront's prefix list while keepAlbOpen is set, and only CloudFront after.
    internet = {"lb-from-0.0.0.0_0-80", "lb-from-0.0.0.0_0-443"}
    assert lb_ingress(phase4) == internet
    assert lb_ingress(phase5) == internet | {"lb-from-cloudfront-443"}
    listeners = {name: one(phase5, "aws:lb/listener:Listener", f"fleet-{name}") for name in ("http", "https")}
    assert [a["type"] for a in listeners["https"].inputs["defaultActions"]] == ["forward"]
    assert [a["type"] for a in listeners["http"].inputs["defaultActions"]] == ["forward"]
    # Once DNS moved (the next `up`, the distribution exists), the ALB refuses all but CloudFront.
    closed = up("phase4", phase5, phase=5, **tls)
    assert [a["type"] for a in one(closed, "aws:lb/listener:Listener", "fleet-https").inputs["defaultActions"]] == \
        ["fixed-response"]
    assert lb_ingress(closed) == {"lb-from-cloudfront-443"}
    # Step back 5 -> 4 only from an `up` that opened the ALB again (DNS back on it first).
    assert "scaleladder:phase" in "\n".join(climb.problems(phase4.config, engine.public(closed.outputs)))
    assert climb.problems(phase4.config, engine.public(phase5.outputs)) == []
    reopened = up("phase4", closed, phase=5, climb={"keepAlbOpen": True}, **tls)  # 5 -> 4, first `up`
    assert lb_ingress(reopened) == internet | {"lb-from-cloudfront-443"}
    assert lb_ingress(up("phase4", reopened)) == internet  # then phase 4: the same rules stay
    alb4 = one(phase4, "aws:lb/loadBalancer:LoadBalancer", "fleet-alb")
    alb5 = one(phase5, "aws:lb/loadBalancer:LoadBalancer", "fleet-alb")
    untagged = [{k: v for k, v in a.inputs.items() if k not in ("tags", "tagsAll")} for a in (alb4, alb5)]
    assert alb5.urn == alb4.urn and untagged[0] == untagged[1]  # the ALB phase 4 serves from, unchanged
    dist = phase5.of_type("aws:cloudfront/distribution:Distribution")[0]
    assert https["scaleladder:cdn"]["originDomain"] in {o["domainName"] for o in dist.inputs["origins"]}
    # The distribution is created only after what serves behind that name: the HTTPS listener this
    # `up` adds, and the app group (whose update returns with its hosts serving).
    waited = waits_for(phase5, dist)
    assert {one(phase5, "aws:lb/listener:Listener", "fleet-https").urn, one(phase5, GROUP, "fleet-app").urn} <= waited
    # Step back 5 -> 4: `url` is the load balancer again (point DNS there before the `up`).
    assert phase4.outputs["url"] == f"http://{alb4.state['dnsName']}"


# --- rolling changes --------------------------------------------------------------------------

def refreshed(p: engine.Plan) -> str:
    """The climb.refreshedTemplates value confirming the refresh onto the templates `p` wrote."""
    return f"{p.outputs[climb.OUT_APP_TEMPLATE]}/{p.outputs[climb.OUT_WORKER_TEMPLATE]}"


@pytest.mark.parametrize("confirmed", [None, "3/2", "4/2", "-/3"])
def test_an_old_path_goes_only_with_the_last_ups_template_versions_confirmed(confirmed):
    # The last `up` wrote app template 4 and worker template 3 (its refresh started, not awaited);
    # a confirmation from an earlier refresh, or none, is refused naming the key and the value.
    moved = {climb.OUT_PHASE: 3, climb.OUT_DB_ROUTE: "pgbouncer", climb.OUT_PGBOUNCER_SERVED: "scaleladder-pgb",
             climb.OUT_FLEET_SERVED: "scaleladder-app", climb.OUT_DIRECT_DB_RULES: True, climb.OUT_REDIS_MODE: "disabled",
             climb.OUT_APP_TEMPLATE: 4, climb.OUT_WORKER_TEMPLATE: 3}
    cluster = {**moved, climb.OUT_PHASE: 4, climb.OUT_DIRECT_DB_RULES: False, climb.OUT_REDIS_MODE: "compatible"}
    settings = {"climb": {"refreshedTemplates": confirmed}} if confirmed else {}
    rules = engine.validate_stack(stack_values("phase3", **settings))
    mode = engine.validate_stack(stack_values("phase3", phase=4, redis={"clusterMode": "enabled", "shards": 1},
                                              **settings))
    for cfg, previous in ((rules, moved), (mode, cluster)):
        found = "\n".join(climb.problems(cfg, previous))
        assert "scaleladder:climb.refreshedTemplates" in found and "allowed now: '4/3'" in found
        assert f"got {confirmed!r}" in found
    ok = {"climb": {"refreshedTemplates": "4/3"}}
    assert climb.problems(engine.validate_stack(stack_values("phase3", **ok)), moved) == []
    assert climb.problems(engine.validate_stack(stack_values(
        "phase3", phase=4, redis={"clusterMode": "enabled", "shards": 1}, **ok)), cluster) == []
    # nginx mode's app hosts are instances (Pulumi replaces them): only the worker template counts.
    nginx = {**moved, climb.OUT_APP_TEMPLATE: None}
    assert climb.problems(engine.validate_stack(stack_values("phase3", climb={"refreshedTemplates": "-/3"})),
                          nginx) == []
    # Steps that keep the old path (the move itself; the step back to the direct route) need none.
    back = engine.validate_stack(stack_values("phase3", climb={"appDatabaseRoute": "direct"}))
    assert climb.problems(back, moved) == []
    assert climb.problems(rules, {**moved, climb.OUT_DIRECT_DB_RULES: False}) == []

def test_every_group_launches_before_it_terminates_and_pgbouncer_drains():
    p = plan("phase3")
    for group in p.of_type(GROUP):
        prefs = group.inputs["instanceRefresh"]["preferences"]
        assert prefs["minHealthyPercentage"] == 100 and 100 < prefs["maxHealthyPercentage"] <= 200, group.name
        assert group.inputs["healthCheckGracePeriod"] >= 600, group.name
        extra = -(-group.inputs["desiredCapacity"] * (prefs["maxHealthyPercentage"] - 100) // 100)
        if group.name == "pgbouncer":  # fixed size: room for the replacement it launches first
            assert group.inputs["maxSize"] >= group.inputs["desiredCapacity"] + min(extra, 1)
            assert prefs["autoRollback"] is False  # the old template may name replicas this up removed
    text = userdata.decode(one(p, TEMPLATE, "pgbouncer").inputs["userData"])
    drop_in = text.split("/etc/systemd/system/pgbouncer.service.d/scaleladder.conf")[1].split("- path:")[0]
    assert "KillSignal=SIGINT" in drop_in and "Restart=on-failure" in drop_in and "TimeoutStopSec=" in drop_in
    tg = one(p, "aws:lb/targetGroup:TargetGroup", "pgbouncer")
    assert 0 < tg.inputs["deregistrationDelay"] < int(drop_in.split("TimeoutStopSec=")[1].split("s")[0]) + 60


def test_a_new_canonical_ami_rolls_the_fleet_only_when_the_stack_asks():
    phase2 = plan("phase2")
    recorded = phase2.outputs[climb.OUT_AMI]
    templates = phase2.of_type(TEMPLATE)
    assert templates and {t.inputs["imageId"] for t in templates} == {recorded}
    # The next `up` keeps the recorded AMI even when SSM would now answer another one.
    later = engine.run("phase2", values=stack_values("phase2"),
                       previous_outputs={**engine.public(phase2.outputs), climb.OUT_AMI: "ami-0aaaabbbbccccdddd"})
    assert {t.inputs["imageId"] for t in later.of_type(TEMPLATE)} == {"ami-0aaaabbbbccccdddd"}
    pinned = up("phase2", phase2, hosts={"ami": "ami-0123456789abcdef0"})
    assert {t.inputs["imageId"] for t in pinned.of_type(TEMPLATE)} == {"ami-0123456789abcdef0"}
    assert pinned.outputs[climb.OUT_AMI] == "ami-0123456789abcdef0"


@pytest.mark.parametrize(("overrides", "key"), [
    ({"climb": {"keepSingleHost": True}}, "scaleladder:climb.keepSingleHost"),
    ({"climb": {"appDatabaseRoute": "pgbouncer"}}, "scaleladder:climb.appDatabaseRoute"),
    ({"hosts": {"ami": "ubuntu-24.04"}}, "scaleladder:hosts.ami"),
    ({"climb": {"refreshedTemplates": "latest"}}, "scaleladder:climb.refreshedTemplates"),
])
def test_climb_settings_outside_their_phase_are_refused_naming_the_key(overrides, key):
    with pytest.raises(ConfigError) as err:
        engine.validate_stack(stack_values("phase1", **overrides))
    assert key in str(err.value)
