"""Issue 15: the paths the program closes stay closed, and the realistic one-line mistakes a
mutation check found unnoticed (scripts/mutate.py) fail a test here.

Plan-based tests use the cached preset plans (tests/unit/plans.py); the rest exercise the pure
pieces (config model, firewall plan, templates, the hosts' boot script) so they stay fast.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from components.cdn import CLOUDFRONT_ORIGIN_FACING, ORIGIN_VERIFY_HEADER
from components.eks import CLUSTER_ADMIN_POLICY
from ladder import aws_facts, engine
from ladder.config import ConfigError
from ladder.mocks import ACCOUNT_ID
from ladder.templates import render
from ladder.topology import CLOUDFRONT, INTERNET, POSTGRES, REDIS, firewall_plan
from ladder.userdata import load_balancer_data

from .plans import existing_stacks, plan, stack_values

REPO = Path(__file__).resolve().parents[2]
SG_INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
PRESETS = existing_stacks()


def config_of(stack: str, **overrides: Any):
    """The validated config of a preset with `scaleladder:<key>` overrides (no plan)."""
    return engine.validate_stack(stack_values(stack, **overrides))


def refused(stack: str, **overrides: Any) -> str:
    with pytest.raises(ConfigError) as err:
        config_of(stack, **overrides)
    return str(err.value)


# --- EKS: IMDS, API endpoint, admin ---------------------------------------------------------


def test_eks_nodes_keep_pods_off_the_node_role():
    """Hop limit 1: a pod on the pod network is a hop further than the node and gets no IMDS token."""
    p = plan("phase6")
    template = p.one("aws:ec2/launchTemplate:LaunchTemplate", "eks-nodes")
    assert template.inputs["metadataOptions"] == {"httpEndpoint": "enabled", "httpTokens": "required",
                                                  "httpPutResponseHopLimit": 1}
    nodes = p.one("aws:eks/nodeGroup:NodeGroup")
    assert nodes.inputs["launchTemplate"]["id"] == template.id


@pytest.mark.parametrize("stack,overrides", [("phase1", {}), ("phase2", {}), ("phase2", {"loadBalancer": "nginx"})])
def test_ec2_hosts_keep_containers_off_the_instance_role(stack, overrides):
    """Instances (phase 1's VM, nginx mode's hosts) and launch templates (the groups): IMDSv2, hop limit 1."""
    p = plan(stack, **overrides)
    hosts = p.of_type("aws:ec2/instance:Instance") + p.of_type("aws:ec2/launchTemplate:LaunchTemplate")
    assert hosts
    for host in hosts:
        options = host.inputs.get("metadataOptions") or {}
        assert options.get("httpTokens") == "required", host.name
        assert options.get("httpPutResponseHopLimit") == 1, f"{host.name}: a container one hop away reaches the role"


def test_eks_public_endpoint_admits_only_the_listed_ranges():
    p = plan("phase6")
    vpc = p.one("aws:eks/cluster:Cluster").inputs["vpcConfig"]
    listed = engine.read_stack("phase6")["scaleladder:eks"]["publicAccessCidrs"]
    assert vpc["endpointPrivateAccess"] is True and vpc["endpointPublicAccess"] is True
    assert vpc["publicAccessCidrs"] == listed
    assert all(ipaddress.ip_network(c).prefixlen >= 8 for c in vpc["publicAccessCidrs"])


def test_eks_private_endpoint_has_no_public_address():
    p = plan("phase6", eks={"endpointAccess": "private", "publicAccessCidrs": None})
    vpc = p.one("aws:eks/cluster:Cluster").inputs["vpcConfig"]
    assert vpc["endpointPrivateAccess"] is True and vpc["endpointPublicAccess"] is False
    assert "publicAccessCidrs" not in vpc


@pytest.mark.parametrize("cidrs,says", [
    (["0.0.0.0/0"], "opens the Kubernetes API to the internet"),
    (["203.0.113.0/24", "0.0.0.0/1"], "opens the Kubernetes API to the internet"),
    (["10.0.0.0/8"], "private range"),
    (["203.0.113.7/24"], "not an IPv4 network"),
    ([], "at least one range"),
])
def test_eks_public_access_cidrs_refuses_open_or_meaningless_ranges(cidrs, says):
    message = refused("phase6", eks={"publicAccessCidrs": cidrs})
    assert "scaleladder:eks.publicAccessCidrs" in message and says in message


def test_eks_public_endpoint_has_no_open_default():
    values = stack_values("phase6")
    del values["scaleladder:eks"]["publicAccessCidrs"]
    with pytest.raises(ConfigError) as err:
        engine.validate_stack(values)
    assert "scaleladder:eks.publicAccessCidrs: required" in str(err.value) and "private" in str(err.value)


def test_eks_admin_is_one_role_not_whoever_ran_the_last_up():
    p = plan("phase6")
    role = p.one("aws:iam/role:Role", "eks-admin")
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:root"}, "the account's IAM policies decide"
    entries = p.of_type("aws:eks/accessEntry:AccessEntry")
    admins = [a for a in p.of_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
              if a.inputs["policyArn"] == CLUSTER_ADMIN_POLICY]
    assert [e.inputs["principalArn"] for e in entries] == [a.inputs["principalArn"] for a in admins] == [role.state["arn"]]
    kubeconfig = p.outputs["kubeconfig"]
    kubeconfig = json.loads(kubeconfig.value if isinstance(kubeconfig, engine.Secret) else kubeconfig)
    args = kubeconfig["users"][0]["user"]["exec"]["args"]
    assert args[args.index("--role-arn") + 1] == role.state["arn"], "kubectl and the provider act as the admin role"


def test_eks_admin_principals_narrow_who_may_assume_the_role():
    who = ["arn:aws:iam::123456789012:role/ci-deployer", "arn:aws:iam::123456789012:role/platform-admin"]
    p = plan("phase6", eks={"adminPrincipalArns": who})
    trust = json.loads(p.one("aws:iam/role:Role", "eks-admin").inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"AWS": sorted(who)}
    assert "scaleladder:eks.adminPrincipalArns" in refused("phase6", eks={"adminPrincipalArns": ["ci-deployer"]})


# --- CloudFront -> origin -----------------------------------------------------------------


def test_phase5_refuses_to_run_without_a_certificate_for_the_origin():
    values = stack_values("phase5")
    del values["scaleladder:app"]["certificateArn"]
    del values["scaleladder:cdn"]["originDomain"]
    with pytest.raises(ConfigError) as err:
        engine.validate_stack(values)
    assert "scaleladder:app.certificateArn: required from phase 5" in str(err.value)
    assert "scaleladder:cdn.originDomain" in str(err.value)


@pytest.mark.parametrize("stack", ["phase5", "phase6"])
def test_cloudfront_reaches_the_origin_over_https_with_the_secret_header(stack):
    p = plan(stack)
    origin = next(o for o in p.one("aws:cloudfront/distribution:Distribution").inputs["origins"] if o["originId"] == "app")
    assert origin["domainName"] == p.config.cdn.origin_domain
    assert origin["customOriginConfig"]["originProtocolPolicy"] == "https-only"
    assert origin["customOriginConfig"]["originSslProtocols"] == ["TLSv1.2"]
    [header] = origin["customHeaders"]
    assert header["name"] == ORIGIN_VERIFY_HEADER and isinstance(header["value"], engine.Secret)
    stored = p.one("aws:secretsmanager/secretVersion:SecretVersion", "origin-verify").inputs["secretString"]
    assert header["value"].value == stored.value and len(stored.value) >= 32
    assert not any(stored.value in s for s in engine.strings(engine.public(p.outputs)))


def test_phase5_alb_admits_only_cloudfront_and_only_with_the_header():
    p = plan("phase5")
    lb_sg = p.one("aws:ec2/securityGroup:SecurityGroup", "lb-sg").id
    into_lb = [r.inputs for r in p.of_type(SG_INGRESS) if r.inputs["securityGroupId"] == lb_sg]
    pl = [r for r in into_lb if "prefixListId" in r]
    assert len(into_lb) == len(pl) == 1, "the managed list weighs 55 of the group's 60 rules: one rule, on 443"
    assert pl[0]["fromPort"] == pl[0]["toPort"] == 443 and not any("cidrIpv4" in r for r in into_lb)
    https = p.one("aws:lb/listener:Listener", "fleet-https").inputs
    assert https["defaultActions"][0]["type"] == "fixed-response"
    assert https["defaultActions"][0]["fixedResponse"]["statusCode"] == "403"
    rule = p.one("aws:lb/listenerRule:ListenerRule", "fleet-from-cdn").inputs
    condition = rule["conditions"][0]["httpHeader"]
    assert condition["httpHeaderName"] == ORIGIN_VERIFY_HEADER
    stored = p.one("aws:secretsmanager/secretVersion:SecretVersion", "origin-verify").inputs["secretString"].value
    assert [v.value for v in condition["values"]] == [stored]
    assert rule["actions"][0]["type"] == "forward"


def test_phase2_to_4_edges_still_face_the_internet():
    """The prefix list is phase 5's: without CloudFront in front the load balancer must admit clients."""
    rules = firewall_plan(config_of("phase4")).rules
    assert {(r.port, r.source) for r in rules if r.tier == "lb"} == {(80, INTERNET), (443, INTERNET)}
    assert {(r.port, r.source) for r in firewall_plan(config_of("phase5")).rules if r.tier == "lb"} == {(443, CLOUDFRONT)}


def test_phase6_ingress_admits_only_cloudfront_and_only_with_the_header():
    p = plan("phase6")
    ingress = p.one("kubernetes:networking.k8s.io/v1:Ingress")
    notes = ingress.inputs["metadata"]["annotations"]
    a = "alb.ingress.kubernetes.io"
    assert notes[f"{a}/security-group-prefix-lists"].startswith("pl-")
    assert json.loads(notes[f"{a}/listen-ports"]) == [{"HTTPS": 443}]
    condition = notes[f"{a}/conditions.app"]
    assert isinstance(condition, engine.Secret), "the header value is a secret in the state"
    [header] = json.loads(condition.value)
    stored = p.one("aws:secretsmanager/secretVersion:SecretVersion", "origin-verify").inputs["secretString"].value
    assert header == {"field": "http-header", "httpHeaderConfig": {"httpHeaderName": ORIGIN_VERIFY_HEADER,
                                                                   "values": [stored]}}
    forbidden = json.loads(notes[f"{a}/actions.forbidden"])
    assert forbidden["fixedResponseConfig"]["statusCode"] == "403"
    assert ingress.inputs["spec"]["defaultBackend"]["service"] == {"name": "forbidden", "port": {"name": "use-annotation"}}
    # The prefix list is the one AWS manages for CloudFront, looked up by its published name.
    assert CLOUDFRONT_ORIGIN_FACING == "com.amazonaws.global.cloudfront.origin-facing"


# --- hosts' roles and retained buckets --------------------------------------------------------


def _policy(p: engine.Plan, name: str) -> list[dict[str, Any]]:
    return json.loads(p.one("aws:iam/rolePolicy:RolePolicy", name).inputs["policy"])["Statement"]


def test_the_nginx_lb_host_cannot_read_any_secret():
    p = plan("phase2", loadBalancer="nginx")
    lb = p.one("aws:ec2/instance:Instance", "fleet-nginx-lb")
    profile = p.one("aws:iam/instanceProfile:InstanceProfile", "lb-host-profile")
    assert lb.inputs["iamInstanceProfile"] == profile.state["name"]
    assert not any("secretsmanager" in json.dumps(s) for s in _policy(p, "lb-host-access"))
    assert any("secretsmanager:GetSecretValue" in json.dumps(s) for s in _policy(p, "app-host-access"))
    apps = [i for i in p.of_type("aws:ec2/instance:Instance") if i.name.startswith("fleet-app-")]
    assert apps and all(i.inputs["iamInstanceProfile"] != profile.state["name"] for i in apps)


GUARDS = {"aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "aws:s3/bucketPolicy:BucketPolicy",
          "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
          "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
          "aws:s3/bucketVersioning:BucketVersioning", "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
          "aws:s3/bucketAcl:BucketAcl"}


def test_a_retained_bucket_keeps_its_guards_after_a_step_back():
    p = plan("phase5")
    cdn_buckets = {b.id: b for b in p.of_type("aws:s3/bucket:Bucket") if b.name in ("static-assets", "cdn-logs")}
    assert len(cdn_buckets) == 2 and all(b.options.get("retainOnDelete") for b in cdn_buckets.values())
    guards = [r for r in p.resources if r.type in GUARDS and r.inputs.get("bucket") in cdn_buckets]
    assert {r.type for r in guards} == GUARDS
    assert [r.name for r in guards if not r.options.get("retainOnDelete")] == []


# --- NetworkPolicies --------------------------------------------------------------------------


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if not selector:
        return True
    ok = all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items())
    for e in selector.get("matchExpressions") or []:
        ok = ok and e["operator"] == "In" and labels.get(e["key"]) in e["values"]
    return ok


def _ports_allow(rule: dict[str, Any], port: int) -> bool:
    ports = rule.get("ports")
    return not ports or any(int(x["port"]) == port and x.get("protocol", "TCP") == "TCP" for x in ports)


def egress_allowed(policies: list[dict[str, Any]], component: str, address: str, port: int) -> bool:
    """NetworkPolicy semantics for pod `component` opening TCP `address:port` (an address outside the cluster)."""
    labels = {"app.kubernetes.io/name": component}
    selecting = [s for s in policies if "Egress" in s.get("policyTypes", []) and _selects(s["podSelector"], labels)]
    assert selecting, f"no egress policy selects {component}: everything would be allowed"
    ip = ipaddress.ip_address(address)
    for spec in selecting:
        for rule in spec.get("egress") or []:
            for peer in rule.get("to") or [{}]:
                block = peer.get("ipBlock")
                if block is None and peer:
                    continue  # pod/namespace peers never match an address outside the cluster
                inside = block is None or (ip in ipaddress.ip_network(block["cidr"]) and not any(
                    ip in ipaddress.ip_network(x) for x in block.get("except") or []))
                if inside and _ports_allow(rule, port):
                    return True
    return False


def test_only_the_tiers_that_need_them_reach_postgres_and_redis():
    p = plan("phase6")
    policies = [r.inputs["spec"] for r in p.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")]
    inside = str(next(ipaddress.ip_network(p.config.network.cidr).hosts()))  # where RDS and Redis sit
    reach = {c: (egress_allowed(policies, c, inside, POSTGRES), egress_allowed(policies, c, inside, REDIS))
             for c in ("app", "workers", "pgbouncer", "bootstrap")}
    assert reach == {"app": (False, True), "workers": (False, True), "pgbouncer": (True, False),
                     "bootstrap": (True, False)}
    assert egress_allowed(policies, "app", "198.51.100.10", 443), "the app still reaches the internet"
    assert not egress_allowed(policies, "pgbouncer", "198.51.100.10", 443)
    pgb = next(s for s in policies if "Ingress" in s.get("policyTypes", [])
               and _selects(s["podSelector"], {"app.kubernetes.io/name": "pgbouncer"}) and s["podSelector"])
    sources = {v for rule in pgb["ingress"] for peer in rule["from"]
               for e in peer["podSelector"]["matchExpressions"] for v in e["values"]}
    assert sources == {"app", "workers"}
    cni = p.one("aws:eks/addon:Addon", "eks-vpc-cni").inputs
    assert json.loads(cni["configurationValues"]) == {"enableNetworkPolicy": "true"}, "nothing enforces them otherwise"


# --- the mutation survivors of issue 15 (scripts/mutate.py) ---------------------------------------


def boot_env_lines(via_pgbouncer: bool) -> dict[str, str]:
    """Run the hosts' own URL builder (the Python block of cloudinit/boot.sh) and read its output."""
    script = (REPO / "cloudinit" / "boot.sh").read_text()
    code = re.search(r"<<'PY'\n(.*?)\nPY\n", script, re.S)
    assert code, "boot.sh no longer builds the URLs in its Python block: update this test"
    login = json.dumps({"username": "app_rw_a", "password": "p@ss/word"})
    env = {**os.environ, "DB_SECRET": login, "DB_READ_SECRET": login, "REDIS_TOKEN": "t", "DB_PORT": "6432",
           "DB_HOST": "db.internal", "DB_NAME": "app", "DB_READ_HOST": "db.internal", "DB_READ_NAME": "app_ro",
           "REDIS_HOST": "redis.internal", "REDIS_PORT": "6379", "DB_VIA_PGBOUNCER": "true" if via_pgbouncer else "false"}
    out = subprocess.run([sys.executable, "-c", code.group(1)], env=env, capture_output=True, text=True, check=True)
    return dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)


def _query(url: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in url.split("?", 1)[1].split("&"))


def test_hosts_straight_to_rds_verify_the_server():
    env = boot_env_lines(via_pgbouncer=False)
    for var in ("DATABASE_URL", "DATABASE_READ_URL"):
        q = _query(env[var])
        assert q["sslmode"] == "verify-full" and q["sslrootcert"] == "/etc/ssl/rds-ca.pem", var


def test_hosts_through_pgbouncer_encrypt():
    env = boot_env_lines(via_pgbouncer=True)
    for var in ("DATABASE_URL", "DATABASE_READ_URL"):
        assert _query(env[var])["sslmode"] == "require", var


def upstream_directives(conf: str) -> list[str]:
    """The directives of the `upstream` block, comments dropped."""
    body = re.search(r"upstream\s+\S+\s*\{(.*?)\n\}", conf, re.S)
    assert body, "no upstream block"
    lines = [line.split("#", 1)[0].strip() for line in body.group(1).splitlines()]
    return [line.rstrip(";") for line in lines if line]


def test_nginx_lb_balances_on_least_connections():
    conf = render("nginx/load_balancer.conf.j2", load_balancer_data(["10.0.1.10:80", "10.0.2.10:80"], "/health"))
    directives = upstream_directives(conf)
    assert directives[0] == "least_conn", "the balancing method comes first (before keepalive)"
    assert [d for d in directives if d.startswith("server ")] == [
        'server "10.0.1.10:80" max_fails=3 fail_timeout=30s', 'server "10.0.2.10:80" max_fails=3 fail_timeout=30s']


def test_pgbouncer_connection_budget_stops_below_max_connections():
    """Exactly max_connections server connections is refused (RDS keeps slots for its superusers, the
    bootstrap and replication); one fewer is accepted."""
    base = config_of("phase3")
    limit = aws_facts.rds_max_connections(base.database.instance_class)
    assert limit <= 2000, "pick pool sizes that can reach this class's limit"
    pool = min(limit, 1000)
    over = {"instances": 1, "defaultPoolSize": pool, "reservePoolSize": limit - pool, "maxClientConn": 100_000}
    message = refused("phase3", pgbouncer=over)
    assert "scaleladder:pgbouncer.instances" in message and f"({limit})" in message
    under = {**over, "reservePoolSize": limit - pool - 1} if limit > pool else {**over, "defaultPoolSize": pool - 1}
    assert config_of("phase3", pgbouncer=under).pgbouncer.instances == 1


@pytest.mark.parametrize("stack", PRESETS)
def test_no_internet_facing_group_reaches_the_data_tier(stack):
    plan_ = firewall_plan(config_of(stack))
    sources = {(r.tier, r.source) for r in plan_.rules if r.tier in ("db", "redis")}
    assert sources and {s for _, s in sources} <= {"app", "workers", "pgbouncer", "eks"}, sources
    assert "lb" not in {s for _, s in sources}, "the load balancer's group faces the internet"


@pytest.mark.parametrize("stack", PRESETS)
def test_the_data_tier_opens_no_connection_out(stack):
    plan_ = firewall_plan(config_of(stack))
    assert {"db", "redis"} <= set(plan_.tiers) and not {"db", "redis"} & set(plan_.outbound)
