"""Phase 6: EKS with managed nodes, metrics-server, Cluster Autoscaler, the app as a
Deployment with an HPA, workers scaled by KEDA on the BullMQ backlog, PgBouncer as a
Deployment; RDS, Redis and the CDN kept. Read from the offline plan."""

from __future__ import annotations

import json
import re
from urllib.parse import quote

import kubernetes_validate
import pytest
import yaml

from ladder import cli, engine, pgbouncer, render
from ladder.mocks import MOCK_DB_PASSWORD

from .plans import plan, scan_strings, stack_values

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
CRD_GROUPS = ("keda.sh/",)  # custom resources: no schema in kubernetes-validate, checked by property below
APP_CERT = "arn:aws:acm:us-east-1:123456789012:certificate/0123abcd-0123-4567-89ab-0123456789ab"


def k8s(p: engine.Plan, kind: str, name: str) -> dict:
    """The manifest of the object of `kind` whose metadata.name is `name`."""
    found = [m for m in render.k8s_manifests(p) if m["kind"] == kind and m["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def by_kind(p: engine.Plan, kind: str) -> list[dict]:
    return [m for m in render.k8s_manifests(p) if m["kind"] == kind]


def secret_values(p: engine.Plan, name: str) -> dict[str, str]:
    """The (mock) plaintext of a Kubernetes Secret's stringData, for checking what it holds."""
    res = next(r for r in p.resources if r.type == "kubernetes:core/v1:Secret" and r.state["metadata"]["name"] == name)
    data = res.inputs["stringData"]
    assert isinstance(data, engine.Secret), f"{name}.stringData must be a Pulumi secret"
    return data.value


@pytest.mark.parametrize("hpa", [{}, {"minReplicas": 3, "maxReplicas": 7, "cpuPercent": 60, "memoryPercent": 75}])
def test_hpa_scales_the_app_deployment_on_cpu_and_memory_within_the_configured_bounds(hpa):
    p = plan("phase6", eks={"hpa": hpa}) if hpa else plan("phase6")
    want = p.config.eks.hpa
    if hpa:
        assert (want.min_replicas, want.max_replicas, want.cpu_percent, want.memory_percent) == tuple(hpa.values())
    (autoscaler,) = by_kind(p, "HorizontalPodAutoscaler")
    spec = autoscaler["spec"]
    app = k8s(p, "Deployment", spec["scaleTargetRef"]["name"])
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": app["metadata"]["name"]}
    assert app["spec"]["template"]["spec"]["containers"][0]["image"] == p.config.app.image
    assert (spec["minReplicas"], spec["maxReplicas"]) == (want.min_replicas, want.max_replicas)
    metrics = {(m["resource"]["name"], m["resource"]["target"]["type"], m["resource"]["target"]["averageUtilization"])
               for m in spec["metrics"] if m["type"] == "Resource"}
    assert metrics == {("cpu", "Utilization", want.cpu_percent), ("memory", "Utilization", want.memory_percent)}
    assert spec["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 300
    assert "replicas" not in app["spec"], "the HPA owns replicas; Pulumi must not reset them on every up"
    rolling = app["spec"]["strategy"]["rollingUpdate"]
    assert (rolling["maxUnavailable"], rolling["maxSurge"]) == (0, "25%")
    pod = app["spec"]["template"]["spec"]
    assert "topology.kubernetes.io/zone" in {c["topologyKey"] for c in pod["topologySpreadConstraints"]}
    container = pod["containers"][0]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == p.config.app.health_path
        assert container[probe]["httpGet"]["port"] in ("http", p.config.app.port)
    assert container["ports"] == [{"name": "http", "containerPort": p.config.app.port}]


def test_every_container_has_requests_and_limits_and_runs_locked_down():
    p = plan("phase6")
    deployments = by_kind(p, "Deployment")
    assert {d["metadata"]["name"] for d in deployments} >= {"app", "workers", "pgbouncer"}
    for d in deployments:
        pod = d["spec"]["template"]["spec"]
        pod_ctx = pod.get("securityContext", {})
        containers = pod["containers"] + pod.get("initContainers", [])
        for c in containers:
            where = f"{d['metadata']['name']}/{c['name']}"
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c["resources"][kind]), f"{where}: {kind}"
            ctx = c.get("securityContext", {})
            assert ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot")) is True, where
            assert ctx.get("readOnlyRootFilesystem") is True, where
            assert ctx.get("allowPrivilegeEscalation") is False, where
            assert "ALL" in ctx.get("capabilities", {}).get("drop", []), where
            seccomp = ctx.get("seccompProfile", pod_ctx.get("seccompProfile", {}))
            assert seccomp.get("type") == "RuntimeDefault", where
        assert pod.get("automountServiceAccountToken") is False, "no workload talks to the Kubernetes API"
    (ns,) = by_kind(p, "Namespace")
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    # A drain never takes all of a tier at once.
    budgets = {b["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] for b in by_kind(p, "PodDisruptionBudget")}
    assert budgets == {"app", "workers", "pgbouncer"}


def test_the_cluster_runs_metrics_server_and_cluster_autoscaler_on_its_own_node_group():
    p = plan("phase6")
    cluster = p.one("aws:eks/cluster:Cluster")
    name = cluster.inputs["name"]
    provider = p.one("pulumi:providers:kubernetes")
    releases = {r.inputs["chart"]: r for r in p.of_type("kubernetes:helm.sh/v3:Release")}
    assert {"metrics-server", "cluster-autoscaler", "aws-load-balancer-controller", "keda"} <= set(releases)
    for chart, r in releases.items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", r.inputs["version"]), f"{chart}: pin an exact chart version"
        assert r.inputs["repositoryOpts"]["repo"].startswith("https://"), chart
        assert r.options["provider"].startswith(provider.urn), f"{chart} must deploy through the cluster's provider"
    objects = [r for r in p.resources if render.is_kubernetes_object(r)]
    assert objects and all(r.options["provider"].startswith(provider.urn) for r in objects), "never a default kubeconfig"

    values = releases["cluster-autoscaler"].inputs["values"]
    assert values["autoDiscovery"]["clusterName"] == name and values["cloudProvider"] == "aws"
    assert values["image"]["tag"].startswith(f"v{p.config.eks.version}."), "autoscaler minor = Kubernetes minor"
    association = next(a for a in p.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
                       if a.inputs["serviceAccount"] == values["rbac"]["serviceAccount"]["name"])
    assert association.inputs["namespace"] == "kube-system"
    policies = [json.loads(r.inputs["policy"]) for r in p.of_type("aws:iam/policy:Policy")]
    resize = [s for doc in policies for s in doc["Statement"] if "autoscaling:SetDesiredCapacity" in s["Action"]]
    assert resize and all(s["Condition"] == {"StringEquals": {f"aws:ResourceTag/k8s.io/cluster-autoscaler/{name}": "owned"}}
                          for s in resize), "the autoscaler resizes only this cluster's groups"

    nodes = p.one("aws:eks/nodeGroup:NodeGroup")
    scaling = nodes.inputs["scalingConfig"]
    eks = p.config.eks
    assert (scaling["minSize"], scaling["desiredSize"], scaling["maxSize"]) == (eks.nodes_min, eks.nodes_min, eks.nodes_max)
    assert "scalingConfig.desiredSize" in nodes.options["ignoreChanges"], "the autoscaler owns desired size"
    assert nodes.inputs["instanceTypes"] == [eks.node_instance_type]
    assert nodes.inputs["tags"][f"k8s.io/cluster-autoscaler/{name}"] == "owned"
    assert nodes.inputs["tags"]["k8s.io/cluster-autoscaler/enabled"] == "true"
    private = {s.id for s in p.of_type("aws:ec2/subnet:Subnet") if "private" in s.name}
    assert set(nodes.inputs["subnetIds"]) == private == set(cluster.inputs["vpcConfig"]["subnetIds"])


def test_the_control_plane_is_authenticated_logged_and_encrypted():
    p = plan("phase6")
    cluster = p.one("aws:eks/cluster:Cluster")
    i = cluster.inputs
    assert i["version"] == p.config.eks.version
    assert i["accessConfig"] == {"authenticationMode": "API", "bootstrapClusterCreatorAdminPermissions": False}
    assert set(i["enabledClusterLogTypes"]) == {"api", "audit", "authenticator", "controllerManager", "scheduler"}
    key = p.one("aws:kms/key:Key")
    assert i["encryptionConfig"] == {"resources": ["secrets"], "provider": {"keyArn": key.state["arn"]}}
    assert key.inputs["enableKeyRotation"] is True
    assert i["vpcConfig"]["endpointPrivateAccess"] is True
    admin = p.one("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
    assert admin.inputs["policyArn"].endswith("/AmazonEKSClusterAdminPolicy")
    addons = {a.inputs["addonName"]: a for a in p.of_type("aws:eks/addon:Addon")}
    assert {"vpc-cni", "kube-proxy", "coredns", "eks-pod-identity-agent"} <= set(addons)
    nodes = p.one("aws:eks/nodeGroup:NodeGroup")
    assert addons["vpc-cni"].urn in nodes.options["dependsOn"], "nodes become Ready only with the CNI"
    assert nodes.urn in addons["coredns"].options["dependsOn"], "CoreDNS needs nodes to run on"
    # The provider's kubeconfig authenticates with short-lived tokens: no credential in it.
    kubeconfig = json.loads(p.one("pulumi:providers:kubernetes").inputs["kubeconfig"])
    (user,) = kubeconfig["users"]
    assert user["user"]["exec"]["command"] == "aws" and user["user"]["exec"]["args"][:2] == ["eks", "get-token"]
    assert set(user["user"]) == {"exec"}


@pytest.mark.parametrize("overrides,kind,lists", [
    ({}, "redis-cluster", {"{bull}:default:wait"}),
    ({"app": {"queues": ["emails", "default"], "queuePrefix": "{jobs}"}}, "redis-cluster",
     {"{jobs}:emails:wait", "{jobs}:default:wait"}),
    ({"redis": {"clusterMode": "compatible", "shards": 1}}, "redis", {"{bull}:default:wait"}),
])
def test_workers_scale_on_each_bullmq_wait_list(overrides, kind, lists):
    p = plan("phase6", **overrides)
    (scaled,) = by_kind(p, "ScaledObject")
    spec = scaled["spec"]
    workers = k8s(p, "Deployment", spec["scaleTargetRef"]["name"])
    assert workers["spec"]["template"]["spec"]["containers"][0]["command"] == p.config.app.worker_command
    assert "replicas" not in workers["spec"], "KEDA's HPA owns replicas"
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (p.config.workers.min, p.config.workers.max)
    assert {t["metadata"]["listName"] for t in spec["triggers"]} == lists
    endpoint = p.outputs["redisEndpoint"]
    for t in spec["triggers"]:
        assert t["type"] == kind
        assert t["metadata"]["enableTLS"] == "true"
        assert t["metadata"]["listLength"] == str(p.config.workers.queue_depth_target)
        assert t["metadata"]["addresses" if kind == "redis-cluster" else "address"] == f"{endpoint}:6379"
        auth = k8s(p, "TriggerAuthentication", t["authenticationRef"]["name"])
        (ref,) = auth["spec"]["secretTargetRef"]
        assert ref["parameter"] == "password"
        assert secret_values(p, ref["name"])[ref["key"]] == p.one("random:index/randomPassword:RandomPassword").state["result"]


def test_pgbouncer_runs_the_phase3_template_behind_a_service():
    p = plan("phase6")
    pb = p.config.pgbouncer
    deployment = k8s(p, "Deployment", "pgbouncer")
    pod = deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["replicas"] == pb.instances, "the count the connection-budget check assumes"
    config_volume = next(v for v in pod["volumes"] if "configMap" in v)
    ini = k8s(p, "ConfigMap", config_volume["configMap"]["name"])["data"]["pgbouncer.ini"]
    # In the replicas' own order (db-replica-0, -1 ...), not the mocks' registration order (not deterministic).
    replicas = [r.state["address"] for r in sorted(p.of_type("aws:rds/instance:Instance"), key=lambda r: r.name)
                if "replicateSourceDb" in r.inputs]
    expected = pgbouncer.render_ini(pgbouncer.ini_data(
        version=pb.version, pool_mode=pb.pool_mode, max_client_conn=pb.max_client_conn,
        default_pool_size=pb.default_pool_size, reserve_pool_size=pb.reserve_pool_size,
        primary_host=p.outputs["dbAddress"], replica_hosts=replicas, listen_port=6432,
        server_tls_ca_file="/etc/pgbouncer/ca/rds-ca.pem", auth_file="/etc/pgbouncer/auth/userlist.txt",
        admin_users=["app_admin"], stats_users=["app_admin"], unix_socket_dir="/var/run/pgbouncer"))
    assert ini == expected, "same template and data as the phase 3 hosts"
    (container,) = pod["containers"]
    assert container["command"][-1] == "/etc/pgbouncer/config/pgbouncer.ini"
    assert container["image"].rsplit(":", 1)[1].startswith(pb.version + "."), "image matches the rendered settings"
    auth_volume = next(v for v in pod["volumes"] if "secret" in v)
    assert secret_values(p, auth_volume["secret"]["secretName"])["userlist.txt"] == f'"app_admin" "{MOCK_DB_PASSWORD}"\n'
    service = k8s(p, "Service", "pgbouncer")
    assert service["spec"]["ports"][0]["port"] == 6432 and service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]

    # The app reaches both pools through the Service; TLS to RDS is PgBouncer's job.
    app_secret = next(e["secretRef"]["name"] for e in k8s(p, "Deployment", "app")["spec"]["template"]["spec"]
                      ["containers"][0]["envFrom"] if "secretRef" in e)
    urls = secret_values(p, app_secret)
    host = "pgbouncer.scaleladder.svc.cluster.local:6432"
    assert urls["DATABASE_URL"] == f"postgres://app_admin:{quote(MOCK_DB_PASSWORD)}@{host}/app?sslmode=disable"
    assert urls["DATABASE_READ_URL"].endswith(f"@{host}/app_ro?sslmode=disable")
    assert urls["REDIS_URL"].startswith("rediss://") and urls["REDIS_URL"].endswith(f"@{p.outputs['redisEndpoint']}:6379")


@pytest.mark.parametrize("cert", [None, APP_CERT])
def test_the_ingress_is_an_internet_facing_alb_to_pod_ips_and_the_cdn_origin(cert):
    p = plan("phase6", app={"certificateArn": cert}, cdn={"originDomain": "origin.example.com"}) if cert else plan("phase6")
    (ingress,) = by_kind(p, "Ingress")
    notes = ingress["metadata"]["annotations"]
    assert ingress["spec"]["ingressClassName"] == "alb"
    assert notes["alb.ingress.kubernetes.io/scheme"] == "internet-facing"
    assert notes["alb.ingress.kubernetes.io/target-type"] == "ip"
    assert notes["alb.ingress.kubernetes.io/healthcheck-path"] == p.config.app.health_path
    ports = json.loads(notes["alb.ingress.kubernetes.io/listen-ports"])
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    service = k8s(p, "Service", backend["name"])
    assert backend["port"]["name"] in {sp["name"] for sp in service["spec"]["ports"]}
    assert service["spec"]["type"] == "ClusterIP"
    origin = next(o for o in p.one("aws:cloudfront/distribution:Distribution").inputs["origins"] if o["originId"] == "app")
    if cert:
        assert {"HTTPS": 443} in ports and notes["alb.ingress.kubernetes.io/certificate-arn"] == cert
        assert notes["alb.ingress.kubernetes.io/ssl-redirect"] == "443"
        assert (origin["domainName"], origin["customOriginConfig"]["originProtocolPolicy"]) == ("origin.example.com", "https-only")
    else:
        assert ports == [{"HTTP": 80}]
        assert origin["domainName"] == p.outputs["ingressHostname"], "the CDN moved to the Ingress's ALB"
        assert origin["customOriginConfig"]["originProtocolPolicy"] == "http-only"
    env = k8s(p, "ConfigMap", next(e["configMapRef"]["name"] for e in k8s(p, "Deployment", "app")["spec"]["template"]
                                   ["spec"]["containers"][0]["envFrom"] if "configMapRef" in e))["data"]
    assert env["STATIC_URL"] == f"https://{p.outputs['cdnDomain']}/static"


def test_climbing_from_5_to_6_keeps_the_database_redis_and_the_cdn():
    before = plan("phase5")
    after = engine.run("phase5", values={**stack_values("phase5"), "scaleladder:phase": 6},
                       previous_outputs={"redisClusterMode": before.config.redis.cluster_mode})
    kept = {
        ("aws:rds/instance:Instance", "db"), ("aws:elasticache/replicationGroup:ReplicationGroup", "redis"),
        ("aws:s3/bucket:Bucket", "static-assets"), ("aws:cloudfront/distribution:Distribution", "cdn"),
    }
    for type_, name in kept:
        old, new = before.one(type_, name), after.one(type_, name)
        assert old.urn == new.urn, f"{name} would be replaced or deleted"
    assert not after.of_type("scaleladder:app:Fleet") and not after.of_type("aws:autoscaling/group:Group")
    assert [t.name for t in after.of_type("aws:ec2/launchTemplate:LaunchTemplate")] == ["eks-nodes"], \
        "the only EC2 template left is the EKS node group's"
    assert not after.of_type("scaleladder:data:PgBouncer"), "PgBouncer moves into the cluster"
    app = next(o for o in after.one("aws:cloudfront/distribution:Distribution").inputs["origins"] if o["originId"] == "app")
    assert app["domainName"] == after.outputs["ingressHostname"]


# Where a secret may go: Kubernetes Secrets, the Redis group's AUTH token, its Secrets Manager copy.
SECRET_HOLDERS = {("kubernetes:core/v1:Secret", "stringData"),
                  ("aws:elasticache/replicationGroup:ReplicationGroup", "authToken"),
                  ("aws:secretsmanager/secretVersion:SecretVersion", "secretString")}


def secret_paths(value, path=""):
    if isinstance(value, engine.Secret):
        yield path
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from secret_paths(v, f"{path}.{k}" if path else k)
    elif isinstance(value, list):
        for n, v in enumerate(value):
            yield from secret_paths(v, f"{path}[{n}]")


def test_secrets_never_appear_in_plain_text_in_the_plan_outputs_or_rendered_files(tmp_path):
    p = plan("phase6")
    token = p.one("random:index/randomPassword:RandomPassword").state["result"]
    forbidden = {MOCK_DB_PASSWORD, quote(MOCK_DB_PASSWORD), token}
    for r in p.resources:
        leaked = {s for s in scan_strings(engine.public(r.inputs)) for f in forbidden if f in s}
        assert not leaked, f"{r.type} {r.name} carries a secret in plain text"
        # A secret marked secret still lands in clear text in, say, a ConfigMap: only holders may get one.
        for path in secret_paths(r.inputs):
            assert (r.type, path) in SECRET_HOLDERS, f"{r.type} {r.name}.{path} receives a secret"
    for r in p.of_type("kubernetes:core/v1:Secret"):
        assert isinstance(r.inputs["stringData"], engine.Secret)
    assert not any(f in s for s in scan_strings(engine.public(p.outputs)) for f in forbidden)
    for path in render.write(p, tmp_path):
        text = path.read_text()
        assert not any(f in text for f in forbidden), f"{path} holds a secret"


def test_render_writes_user_data_nginx_pgbouncer_and_manifests(tmp_path, capsys):
    assert cli.main(["render", "phase5", "--out", str(tmp_path / "p5")]) == 0
    p5 = tmp_path / "p5"
    assert list(p5.glob("cloud-init/*.yaml")) and list(p5.glob("hosts/*/etc/nginx/**/*.conf"))
    (ini,) = p5.glob("hosts/*/etc/pgbouncer/pgbouncer.ini")
    assert "[databases]" in ini.read_text()

    assert cli.main(["render", "phase6", "--out", str(tmp_path / "p6")]) == 0
    p6 = tmp_path / "p6"
    written = (p6 / "INDEX.txt").read_text().split("\n")[1:-1]
    assert all((p6 / rel).is_file() for rel in written)
    kinds = {yaml.safe_load((p6 / rel).read_text())["kind"] for rel in written
             if rel.startswith("kubernetes/") and rel.endswith(".yaml") and "helm-releases" not in rel}
    assert {"Deployment", "Service", "Ingress", "HorizontalPodAutoscaler", "PodDisruptionBudget", "ConfigMap", "Secret",
            "ScaledObject"} <= kinds
    releases = yaml.safe_load((p6 / "kubernetes/helm-releases.yaml").read_text())
    assert {r["chart"] for r in releases} >= {"metrics-server", "cluster-autoscaler"}
    assert list(p6.glob("kubernetes/files/*/pgbouncer.ini"))
    assert "helm releases" in capsys.readouterr().out


@pytest.mark.parametrize("version", ["1.30", "1.33", "1.34"])
def test_rendered_manifests_validate_against_the_clusters_kubernetes_schemas(version):
    p = plan("phase6", eks={"version": version})
    manifests = render.k8s_manifests(p)
    skipped = {m["kind"] for m in manifests if m["apiVersion"].startswith(CRD_GROUPS)}
    # KEDA's kinds are CRDs kubernetes-validate has no schema for; their content is asserted above.
    assert skipped == {"ScaledObject", "TriggerAuthentication"}
    checked = [m for m in manifests if not m["apiVersion"].startswith(CRD_GROUPS)]
    assert len(checked) >= 10
    for m in checked:
        kubernetes_validate.validate(m, version, strict=True)


def test_no_cluster_service_install_waits_on_the_load_balancer_controllers_webhook():
    """The Helm releases install in parallel; the controller's Service webhook (failurePolicy
    Fail) would refuse metrics-server's and KEDA's Services until its own pods are ready."""
    p = plan("phase6")
    releases = {r.inputs["chart"]: r for r in p.of_type("kubernetes:helm.sh/v3:Release")}
    lbc = releases["aws-load-balancer-controller"]
    assert lbc.inputs["values"]["enableServiceMutatorWebhook"] is False
    services = [o for o in p.resources if o.type == "kubernetes:core/v1:Service"]
    assert services and all(s.inputs["spec"]["type"] != "LoadBalancer" for s in services)
