"""Phase 6: EKS with managed nodes, metrics-server, Cluster Autoscaler, the app as a
Deployment with an HPA, workers scaled by KEDA on the BullMQ backlog, PgBouncer as a
Deployment; RDS, Redis and the CDN kept. Read from the offline plan."""

from __future__ import annotations

import base64
import importlib.machinery
import json
import os
import re
import subprocess
import sys
import types
from datetime import date
from urllib.parse import quote

import kubernetes_validate
import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import NameOID

from components import workloads
from ladder import (
    aws_facts,
    cli,
    config,
    credentials,
    engine,
    images,
    pgbouncer,
    render,
)
from ladder.mocks import MOCK_DB_PASSWORD
from ladder.prices import catalog

from .plans import SECRET_HOLDERS, plan, scan_strings, secret_paths, stack_values

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
# Custom resources: no schema in kubernetes-validate, checked by property below.
CRD_GROUPS = ("keda.sh/", "external-secrets.io/")
APP_CERT = "arn:aws:acm:us-east-1:123456789012:certificate/0123abcd-0123-4567-89ab-0123456789ab"


def k8s(p: engine.Plan, kind: str, name: str) -> dict:
    """The manifest of the object of `kind` whose metadata.name is `name`."""
    found = [m for m in render.k8s_manifests(p) if m["kind"] == kind and m["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def by_kind(p: engine.Plan, kind: str) -> list[dict]:
    return [m for m in render.k8s_manifests(p) if m["kind"] == kind]


def plain(value):
    return value.value if isinstance(value, engine.Secret) else value


def secrets_by_layout(p: engine.Plan) -> dict[str, str]:
    """credentials.SECRET_* name (and "redis") -> the ARN of the Secrets Manager secret that holds
    that layout, told apart by the SecretString the program stores in it."""
    secrets = {r.id: r for r in p.of_type("aws:secretsmanager/secret:Secret")}
    secrets.update({r.state["arn"]: r for r in secrets.values()})
    initial_user = {credentials.MASTER_USER: credentials.SECRET_MASTER, credentials.INITIAL_APP_RW_LOGIN:
                    credentials.SECRET_APP, credentials.INITIAL_APP_RO_LOGIN: credentials.SECRET_APP_RO}
    found: dict[str, str] = {}
    for version in p.of_type("aws:secretsmanager/secretVersion:SecretVersion"):
        secret = secrets[version.inputs["secretId"]]
        arn = secret.state["arn"]
        text = plain(version.inputs["secretString"])
        if not text.startswith("{"):  # stored as they are: the Redis AUTH token (and CloudFront's origin-verify value)
            if secret.name.startswith("redis"):
                found["redis"] = arn
            continue
        doc = json.loads(text)
        if set(doc) == set(credentials.SECRET_KEYS[credentials.SECRET_PGBOUNCER]):
            found[credentials.SECRET_PGBOUNCER] = arn
        elif doc.get("username") in initial_user:
            found[initial_user[doc["username"]]] = arn
    assert set(found) == {*credentials.SECRET_KEYS, "redis"}, found
    return found


def external_secrets(p: engine.Plan) -> dict[str, dict]:
    """ExternalSecret manifests by the Secret they write."""
    return {m["spec"]["target"]["name"]: m for m in by_kind(p, "ExternalSecret")}


def referenced_arns(es: dict) -> set[str]:
    spec = es["spec"]
    return ({d["remoteRef"]["key"] for d in spec.get("data", [])}
            | {d["extract"]["key"] for d in spec.get("dataFrom", [])})


def pod_specs(p: engine.Plan) -> dict[str, dict]:
    """Every pod template the workloads create, by `<Kind>/<name>`."""
    return {f"{m['kind']}/{m['metadata']['name']}": m["spec"]["template"]["spec"]
            for m in render.k8s_manifests(p) if m["kind"] in ("Deployment", "Job")}


def secrets_used(pod: dict) -> set[str]:
    """Names of the Kubernetes Secrets a pod reads (env, envFrom, volumes)."""
    used = {v["secret"]["secretName"] for v in pod.get("volumes", []) if "secret" in v}
    for c in pod["containers"] + pod.get("initContainers", []):
        used |= {e["secretRef"]["name"] for e in c.get("envFrom", []) if "secretRef" in e}
        used |= {e["valueFrom"]["secretKeyRef"]["name"] for e in c.get("env", [])
                 if "secretKeyRef" in e.get("valueFrom", {})}
    return used


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
    deployments = by_kind(p, "Deployment") + by_kind(p, "Job")
    assert {d["metadata"]["name"] for d in deployments} >= {"app", "workers", "pgbouncer"}
    assert by_kind(p, "Job"), "the bootstrap Job is held to the same rules"
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


# kubernetes/autoscaler cluster-autoscaler/README.md "Releases": the first chart whose ClusterRole
# covers what each autoscaler minor watches (it blocks at start on any cache it may not list).
AUTOSCALER_MIN_CHART = {"1.33": "9.47.0", "1.34": "9.51.0", "1.35": "9.54.0"}  # 1.35: first with appVersion 1.35.0
KEDA_TESTED = {"2.19": ("1.32", "1.34"), "2.20": ("1.33", "1.35")}  # keda.sh compatibility matrix
ESO_TESTED = {"2.6": ("1.34", "1.35"), "2.8": ("1.35", "1.36")}  # external-secrets stability-support.md


def _v(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.lstrip("v").split("."))


@pytest.mark.parametrize("version", aws_facts.EKS_VERSIONS)
def test_cluster_services_follow_the_clusters_kubernetes_minor(version):
    p = plan("phase6", eks={"version": version})
    assert p.one("aws:eks/cluster:Cluster").inputs["version"] == version
    releases = {r.inputs["chart"]: r for r in p.of_type("kubernetes:helm.sh/v3:Release")}
    autoscaler = releases["cluster-autoscaler"]
    tag = autoscaler.inputs["values"]["image"]["tag"]
    assert _v(tag)[:2] == _v(version), "autoscaler minor = Kubernetes minor"
    assert _v(autoscaler.inputs["version"]) >= _v(AUTOSCALER_MIN_CHART[version]), "chart RBAC too old for this minor"
    keda = releases["keda"].inputs["version"]
    low, high = KEDA_TESTED[".".join(keda.split(".")[:2])]
    assert _v(low) <= _v(version) <= _v(high), f"KEDA {keda} is not tested on {version}"
    eso = releases["external-secrets"].inputs["version"]
    low, high = ESO_TESTED[".".join(eso.split(".")[:2])]
    assert _v(low) <= _v(version) <= _v(high), f"External Secrets {eso} is not tested on {version}"


def test_allowed_eks_versions_are_those_in_standard_support_on_the_catalogs_date():
    day = aws_facts.EKS_FACTS_DATE
    assert day == max(date.fromisoformat(str(m["retrieved"])) for m in catalog().regions.values())
    in_standard = {v for v, r in aws_facts.EKS_CALENDAR.items() if r.released <= day < r.end_of_standard}
    assert set(aws_facts.EKS_VERSIONS) <= in_standard
    assert in_standard - set(aws_facts.EKS_VERSIONS) <= {"1.36"}, "only 1.36 waits (no tested KEDA yet)"
    assert plan("phase6").config.eks.version == max(aws_facts.EKS_VERSIONS, key=_v), "default: the newest"
    # A minor whose standard support ended before the catalog's date is refused, naming the key.
    ended = [v for v, r in aws_facts.EKS_CALENDAR.items() if r.end_of_standard <= day]
    assert "1.33" in ended
    for version in ended:
        with pytest.raises(config.ConfigError) as err:
            config.load({"phase": 6, "loadBalancer": "alb", "eks": {"version": version}}, "us-east-1")
        (problem,) = [line for line in err.value.problems if "eks.version" in line]
        assert problem.startswith("scaleladder:eks.version") and all(v in problem for v in aws_facts.EKS_VERSIONS)
    # The window moves with the catalog: a year later nothing recorded today is still allowed.
    assert aws_facts.eks_versions_on(date(day.year + 2, day.month, 1)) == ()
    # The cluster says which support it runs under.
    assert plan("phase6").one("aws:eks/cluster:Cluster").inputs["upgradePolicy"] == {"supportType": "STANDARD"}


def test_cluster_and_oac_names_are_not_fixed_so_replacements_do_not_collide():
    p = plan("phase6")
    cluster = p.one("aws:eks/cluster:Cluster")
    suffix = p.one("random:index/randomString:RandomString")
    prefix = f"{p.project}-{p.stack}"
    assert cluster.inputs["name"] == f"{prefix}-{suffix.state['result']}"
    # The suffix is remade when an input that forces a new cluster changes (here: the KMS key).
    assert suffix.inputs["keepers"]["encryptionKey"] == cluster.inputs["encryptionConfig"]["provider"]["keyArn"]
    assert p.one("aws:cloudwatch/logGroup:LogGroup", "eks-control-plane").inputs["name"] == f"/aws/eks/{cluster.inputs['name']}/cluster"
    assert "name" not in p.one("aws:cloudfront/originAccessControl:OriginAccessControl").inputs, "OAC is auto-named"


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
        # ESO writes that Secret from the Redis AUTH token's Secrets Manager secret.
        synced = external_secrets(p)[ref["name"]]
        assert [(d["secretKey"], d["remoteRef"]) for d in synced["spec"]["data"]] == [
            (ref["key"], {"key": secrets_by_layout(p)["redis"]})]


def test_pgbouncer_runs_the_phase3_template_behind_a_service():
    p = plan("phase6")
    pb = p.config.pgbouncer
    deployment = k8s(p, "Deployment", "pgbouncer")
    pod = deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["replicas"] == pb.instances, "the count the connection-budget check assumes"
    volumes = {v["name"]: v for v in pod["volumes"]}
    (container,) = [c for c in pod["containers"] if c["name"] == "pgbouncer"]
    mounts = {m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"]}
    ini_path = container["command"][-1]
    ini = k8s(p, "ConfigMap", mounts[os.path.dirname(ini_path)]["configMap"]["name"])["data"][os.path.basename(ini_path)]
    settings = dict(line.split(" = ", 1) for line in ini.splitlines() if " = " in line and not line.startswith((";", "#")))
    # In the replicas' own order (db-replica-0, -1 ...), not the mocks' registration order (not deterministic).
    replicas = [r.state["address"] for r in sorted(p.of_type("aws:rds/instance:Instance"), key=lambda r: r.name)
                if "replicateSourceDb" in r.inputs]
    assert ini == pgbouncer.render_ini(pgbouncer.ini_data(
        version=pb.version, pool_mode=pb.pool_mode, max_client_conn=pb.max_client_conn,
        default_pool_size=pb.default_pool_size, reserve_pool_size=pb.reserve_pool_size,
        primary_host=p.outputs["dbAddress"], replica_hosts=replicas, listen_port=6432,
        server_tls_ca_file=settings["server_tls_ca_file"], auth_file=settings["auth_file"],
        unix_socket_dir=settings["unix_socket_dir"], client_tls_sslmode="require",
        client_tls_key_file=settings["client_tls_key_file"], client_tls_cert_file=settings["client_tls_cert_file"])), \
        "same template and data as the phase 3 hosts"
    # Passwords are looked up, not copied: the auth file holds PgBouncer's own users only.
    assert (settings["auth_user"], settings["auth_query"]) == (credentials.PGBOUNCER_AUTH_USER, credentials.AUTH_QUERY)
    assert (settings["admin_users"], settings["stats_users"]) == (credentials.PGBOUNCER_ADMIN_USER,
                                                                  credentials.PGBOUNCER_STATS_USER)
    # Every file the ini names is mounted where it says: the RDS CA from the shipped bundle ...
    ca = mounts[os.path.dirname(settings["server_tls_ca_file"])]
    bundle = k8s(p, "ConfigMap", ca["configMap"]["name"])["data"][os.path.basename(settings["server_tls_ca_file"])]
    assert bundle == workloads.rds_ca_bundle(p.config.region)
    # The strongest check this PgBouncer can make over its hosts (verify-full on host lists needs a newer one).
    assert settings["server_tls_sslmode"] == pgbouncer.server_tls_sslmode_for(pb.version, "verify-full", replicas) != "disable"
    # ... the client TLS key, made in the pod's memory by the init container (never in a Secret) ...
    tls = mounts[os.path.dirname(settings["client_tls_key_file"])]
    assert tls["emptyDir"]["medium"] == "Memory" and settings["client_tls_sslmode"] == "require"
    (maker,) = pod["initContainers"]
    assert maker["command"][0] == "openssl" and settings["client_tls_key_file"] in maker["command"]
    assert settings["client_tls_cert_file"] in maker["command"]
    # ... and the auth file, from the Secret ESO syncs from db-pgbouncer alone.
    auth = mounts[os.path.dirname(settings["auth_file"])]["secret"]["secretName"]
    synced = external_secrets(p)[auth]
    assert referenced_arns(synced) == {secrets_by_layout(p)[credentials.SECRET_PGBOUNCER]}
    userlist = synced["spec"]["target"]["template"]["data"][os.path.basename(settings["auth_file"])]
    assert re.findall(r'^"\{\{ \.(\w+) \}\}"', userlist, re.M) == ["auth_user", "admin_user", "stats_user"]
    # Nothing is fetched at start (review 5-6 finding 22).
    assert not any("http" in " ".join(c.get("command", [])) for c in pod["containers"] + pod["initContainers"])
    # A changed auth file reaches PgBouncer by SIGHUP from the sidecar, in one process namespace.
    (reloader,) = [c for c in pod["containers"] if c["name"] != "pgbouncer"]
    assert pod["shareProcessNamespace"] is True and settings["auth_file"] in reloader["command"][-1]
    assert "kill -HUP" in reloader["command"][-1]
    assert {m["mountPath"] for m in reloader["volumeMounts"]} == {os.path.dirname(settings["auth_file"])}
    assert container["image"] == f"ghcr.io/cloudnative-pg/pgbouncer:{images.PGBOUNCER_TAGS[pb.version]}"
    service = k8s(p, "Service", "pgbouncer")
    assert service["spec"]["ports"][0]["port"] == 6432 and service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]


def test_pgbouncer_pods_helper_commands_run(tmp_path):
    """The init container's openssl command makes a key and a certificate for the Service name;
    the reload sidecar's script is valid POSIX sh."""
    pod = k8s(plan("phase6"), "Deployment", "pgbouncer")["spec"]["template"]["spec"]
    (maker,) = pod["initContainers"]
    command = [arg.replace(workloads.TLS_DIR, str(tmp_path)) for arg in maker["command"]]
    subprocess.run(command, check=True, capture_output=True)
    cert = x509.load_pem_x509_certificate((tmp_path / "server.crt").read_bytes())
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "pgbouncer.scaleladder.svc"
    assert b"PRIVATE KEY" in (tmp_path / "server.key").read_bytes()
    (reloader,) = [c for c in pod["containers"] if c["name"] == "reload-auth"]
    subprocess.run(["sh", "-n", "-c", reloader["command"][-1]], check=True)


def test_the_app_gets_its_own_logins_through_external_secrets_with_tls_to_pgbouncer():
    p = plan("phase6")
    arns = secrets_by_layout(p)
    synced = external_secrets(p)
    for name in ("app", "workers"):
        pod = k8s(p, "Deployment", name)["spec"]["template"]["spec"]
        assert secrets_used(pod) == {workloads.APP_CREDENTIALS}, name
    creds = synced[workloads.APP_CREDENTIALS]
    assert referenced_arns(creds) == {arns[credentials.SECRET_APP], arns[credentials.SECRET_APP_RO], arns["redis"]}
    refs = {d["secretKey"]: (d["remoteRef"]["key"], d["remoteRef"].get("property")) for d in creds["spec"]["data"]}
    urls = creds["spec"]["target"]["template"]["data"]
    host = "pgbouncer.scaleladder.svc.cluster.local:6432"
    for url_key, source, database in (("DATABASE_URL", credentials.SECRET_APP, pgbouncer.RW_DATABASE),
                                      ("DATABASE_READ_URL", credentials.SECRET_APP_RO, pgbouncer.RO_DATABASE)):
        m = re.fullmatch(r"postgres://\{\{ \.(\w+) \| urlquery \}\}:\{\{ \.(\w+) \| urlquery \}\}@(.+)/(\w+)\?sslmode=(\S+)",
                         urls[url_key])
        assert m, urls[url_key]
        user, password, at, db, sslmode = m.groups()
        assert refs[user] == (arns[source], "username") and refs[password] == (arns[source], "password")
        assert (at, db, sslmode) == (host, database, "require&uselibpqcompat=true")
    assert urls["REDIS_URL"].startswith("rediss://") and urls["REDIS_URL"].endswith(f"@{p.outputs['redisEndpoint']}:6379")
    # ESO reads with its own Pod Identity role, which may read exactly these secrets.
    releases = {r.inputs["chart"]: r for r in p.of_type("kubernetes:helm.sh/v3:Release")}
    eso = releases["external-secrets"]
    association = next(a for a in p.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
                       if a.inputs["namespace"] == eso.inputs["namespace"])
    assert association.inputs["serviceAccount"] == eso.inputs["values"]["serviceAccount"]["name"]
    role = next(r for r in p.of_type("aws:iam/role:Role") if r.state["arn"] == association.inputs["roleArn"])
    grants = [json.loads(r.inputs["policy"]) for r in p.of_type("aws:iam/rolePolicy:RolePolicy")
              if r.inputs["role"] == role.state["name"]]
    (statement,) = [s for doc in grants for s in doc["Statement"]]
    assert set(statement["Resource"]) == set(arns.values())
    assert "secretsmanager:GetSecretValue" in statement["Action"] and "*" not in statement["Resource"]
    (store,) = by_kind(p, "SecretStore")
    assert store["spec"]["provider"]["aws"] == {"service": "SecretsManager", "region": p.config.region}
    assert {es["spec"]["secretStoreRef"]["name"] for es in synced.values()} == {store["metadata"]["name"]}


def test_only_the_bootstrap_job_reads_the_master_secret_and_it_runs_the_bootstrap_sql():
    p = plan("phase6")
    arns = secrets_by_layout(p)
    synced = external_secrets(p)
    master = [target for target, es in synced.items() if arns[credentials.SECRET_MASTER] in referenced_arns(es)]
    assert master == [workloads.BOOTSTRAP_CREDENTIALS]
    readers = [name for name, pod in pod_specs(p).items() if workloads.BOOTSTRAP_CREDENTIALS in secrets_used(pod)]
    (job_name,) = readers
    assert job_name.startswith("Job/"), "only the bootstrap Job may see the master password"
    job = pod_specs(p)[job_name]
    (psql,) = job["containers"]
    assert psql["image"] == f"docker.io/library/postgres:{p.config.database.engine_version.split('.')[0]}"
    conninfo = next(e["value"] for e in psql["env"] if e["name"] == "CONNINFO")
    assert f"host={p.outputs['dbAddress']} " in conninfo and "sslmode=verify-full" in conninfo
    volumes = {v["name"]: v for v in job["volumes"]}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in psql["volumeMounts"]}
    sql = re.search(r"-f (\S+)", psql["command"][-1]).group(1)
    files = k8s(p, "ConfigMap", mounts[os.path.dirname(sql)]["configMap"]["name"])["data"]
    assert files[os.path.basename(sql)] == credentials.BOOTSTRAP_SQL.read_text()
    ca = re.search(r"sslrootcert=(\S+)", conninfo).group(1)
    assert k8s(p, "ConfigMap", mounts[os.path.dirname(ca)]["configMap"]["name"])["data"][os.path.basename(ca)] == \
        workloads.rds_ca_bundle(p.config.region)
    # It gets what db/bootstrap.sql reads, from the secrets that hold it.
    refs = {d["secretKey"]: (d["remoteRef"]["key"], d["remoteRef"]["property"])
            for d in synced[workloads.BOOTSTRAP_CREDENTIALS]["spec"]["data"]}
    env = credentials.BOOTSTRAP_ENV
    assert refs == {
        "PGUSER": (arns[credentials.SECRET_MASTER], "username"), "PGPASSWORD": (arns[credentials.SECRET_MASTER], "password"),
        env["app_rw_login"]: (arns[credentials.SECRET_APP], "username"),
        env["app_rw_password"]: (arns[credentials.SECRET_APP], "password"),
        env["app_ro_login"]: (arns[credentials.SECRET_APP_RO], "username"),
        env["app_ro_password"]: (arns[credentials.SECRET_APP_RO], "password"),
        env["pgbouncer_auth_password"]: (arns[credentials.SECRET_PGBOUNCER], "auth_password")}
    # PgBouncer and the app start after it (their logins exist by then).
    job_urn = next(r.urn for r in p.of_type("kubernetes:batch/v1:Job"))
    for name in ("apps-pgbouncer", "apps-app", "apps-workers"):
        assert job_urn in p.one(DEPLOYMENT, name).options["dependsOn"], name


def test_the_bootstrap_jobs_verifier_step_hands_psql_scram_verifiers_only(tmp_path):
    """Runs the init container's own program against the host script: every password the
    SQL reads becomes a SCRAM-SHA-256 verifier for that password, and psql sources them."""
    p = plan("phase6")
    job = next(iter(pod for name, pod in pod_specs(p).items() if name.startswith("Job/")))
    (init,) = job["initContainers"]
    program = init["command"][-1].replace(workloads.SCRIPT_DIR, str(credentials.HOST_SCRIPT.parent)) \
        .replace(workloads.VERIFIER_DIR, str(tmp_path))
    passwords = {var: f"pw-{n}-Ab9" for n, var in enumerate(workloads.BOOTSTRAP_PASSWORD_ENV)}
    subprocess.run([sys.executable, "-c", program], check=True, env={**os.environ, **passwords,
                                                                        "PYTHONDONTWRITEBYTECODE": "1"})
    exported = subprocess.run(["sh", "-c", f". {tmp_path}/env && env"], check=True, capture_output=True,
                              text=True).stdout
    got = dict(line.split("=", 1) for line in exported.splitlines() if line.startswith("LADDER_"))
    assert set(got) == set(passwords) == {v for k, v in credentials.BOOTSTRAP_ENV.items() if k.endswith("password")}
    loader = importlib.machinery.SourceFileLoader("scaleladder_db_check", str(credentials.HOST_SCRIPT))
    module = types.ModuleType(loader.name)
    sys.modules[loader.name] = module  # its dataclasses look their module up
    try:
        loader.exec_module(module)
    finally:
        del sys.modules[loader.name]
    for var, verifier in got.items():
        assert verifier.startswith("SCRAM-SHA-256$") and passwords[var] not in verifier
        iterations, rest = verifier.removeprefix("SCRAM-SHA-256$").split(":", 1)
        salt = base64.b64decode(rest.split("$")[0])
        assert module.scram_verifier(passwords[var], salt=salt, iterations=int(iterations)) == verifier
    (psql,) = job["containers"]
    assert psql["command"][-1].startswith(f". {workloads.VERIFIER_DIR}/env && exec psql")


def test_rds_ca_bundles_hold_the_regions_root_cas_for_every_catalog_region():
    for region in catalog().regions:
        pem = workloads.rds_ca_bundle(region).encode()
        certs = x509.load_pem_x509_certificates(pem)
        names = {c.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value for c in certs}
        # components/database.py uses rds-ca-rsa2048-g1; the other two G1 roots for a CA change.
        assert names == {f"Amazon RDS {region} Root CA {kind} G1" for kind in ("RSA2048", "RSA4096", "ECC384")}
        for c in certs:
            assert c.issuer == c.subject, "roots only"
            c.verify_directly_issued_by(c)
            assert c.not_valid_after_utc.year >= 2061


def test_an_unpublished_pgbouncer_version_is_refused_in_phase_6(monkeypatch):
    for version in config.PgBouncerConfig.model_fields["version"].annotation.__args__:
        assert images.pgbouncer_image(version), f"pgbouncer.version {version} has no published image"
        assert images.PGBOUNCER_TAGS[version] in images.PGBOUNCER_PUBLISHED
    assert "1.23.1" not in images.PGBOUNCER_PUBLISHED and images.PGBOUNCER_TAGS["1.23"] == "1.23.0"
    # Someone allows a version before its image exists: phase 6 refuses it, phase 5 (apt) does not.
    monkeypatch.setattr(images, "PGBOUNCER_TAGS", {k: v for k, v in images.PGBOUNCER_TAGS.items() if k != "1.25"})
    with pytest.raises(config.ConfigError) as err:
        config.load({"phase": 6, "loadBalancer": "alb", "pgbouncer": {"version": "1.25"}}, "us-east-1")
    (problem,) = [line for line in err.value.problems if "pgbouncer.version" in line]
    assert problem.startswith("scaleladder:pgbouncer.version") and "1.24" in problem
    config.load({"phase": 5, "loadBalancer": "alb", "pgbouncer": {"version": "1.25"},
                 "app": {"certificateArn": APP_CERT}, "cdn": {"originDomain": "origin.example.com"}}, "us-east-1")


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
    # From phase 5 CloudFront reaches the origin over HTTPS only (a certificate is required), so the
    # Ingress's ALB listens on 443 only (no HTTP listener to redirect: CloudFront is the only client).
    assert ports == [{"HTTPS": 443}] and notes["alb.ingress.kubernetes.io/certificate-arn"] == p.config.app.certificate_arn
    assert "alb.ingress.kubernetes.io/ssl-redirect" not in notes
    assert (origin["domainName"], origin["customOriginConfig"]["originProtocolPolicy"]) == (
        p.config.cdn.origin_domain, "https-only")
    env = k8s(p, "ConfigMap", next(e["configMapRef"]["name"] for e in k8s(p, "Deployment", "app")["spec"]["template"]
                                   ["spec"]["containers"][0]["envFrom"] if "configMapRef" in e))["data"]
    # Known before the distribution (which waits for the app): a new stack has no CDN name yet,
    # so the same-host path (tests/unit/test_climb_eks.py covers the climb and aliases).
    assert env["STATIC_URL"] == "/static"


def test_climbing_from_5_to_6_keeps_the_database_redis_and_the_cdn():
    before = plan("phase5")
    # A real climb to 6 supplies what the phase-6 preset does: the API's allowed ranges (no open
    # default; stacks/Pulumi.phase6.yaml).
    after = engine.run("phase5", values={**stack_values("phase5"), "scaleladder:phase": 6,
                                         "scaleladder:eks": engine.read_stack("phase6")["scaleladder:eks"]},
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
    # From phase 5 CloudFront reaches the origin over HTTPS at the certificate's name (cdn.originDomain,
    # pointed at the Ingress's ALB), not at the ALB's own hostname.
    assert app["domainName"] == after.config.cdn.origin_domain




def test_no_password_reaches_kubernetes_the_plan_outputs_or_rendered_files(tmp_path):
    p = plan("phase6")
    # Every generated password (RandomPassword results: the database's and Redis's) and the mock
    # Secrets Manager answer, as they are and URL-encoded.
    generated = {r.state["result"] for r in p.of_type("random:index/randomPassword:RandomPassword")}
    assert generated
    forbidden = {MOCK_DB_PASSWORD, *generated} | {quote(f, safe="") for f in generated}
    assert not p.of_type("kubernetes:core/v1:Secret"), "Pulumi writes no Kubernetes Secret: ESO does"
    for r in p.resources:
        leaked = {s for s in scan_strings(engine.public(r.inputs)) for f in forbidden if f in s}
        assert not leaked, f"{r.type} {r.name} carries a secret in plain text"
        # A secret marked secret still lands in clear text in, say, a ConfigMap: only holders may get one.
        for path in secret_paths(r.inputs):
            assert (r.type, path) in SECRET_HOLDERS, f"{r.type} {r.name}.{path} receives a secret"
    # The one documented exception (SECRET_HOLDERS; components/workloads.py): the ALB controller reads
    # listener conditions only from annotations, so the app Ingress's conditions annotation carries the
    # origin-verify value CloudFront sends. That annotation of that Ingress may hold that value, nothing
    # else secret; every other field of every Kubernetes object holds no secret at all.
    verify = p.one("random:index/randomPassword:RandomPassword", "origin-verify-value").state["result"]
    for r in p.resources:
        if r.type.startswith("kubernetes:"):  # manifests and Helm values, secret-marked or not
            tree = plain_tree(r.inputs)
            if (r.type, r.name) == ("kubernetes:networking.k8s.io/v1:Ingress", "apps-app"):
                notes = tree["metadata"]["annotations"]
                notes[ORIGIN_CONDITIONS] = notes[ORIGIN_CONDITIONS].replace(verify, "<origin-verify>")
            assert not any(f in s for s in scan_strings(tree) for f in forbidden), r.name
    assert not any(f in s for s in scan_strings(engine.public(p.outputs)) for f in forbidden)
    for path in render.write(p, tmp_path):
        text = path.read_text()
        assert not any(f in text for f in forbidden), f"{path} holds a secret"


ORIGIN_CONDITIONS = "alb.ingress.kubernetes.io/conditions.app"


def plain_tree(value):
    """`value` with secrets unwrapped: what the cluster would actually receive."""
    if isinstance(value, engine.Secret):
        return plain_tree(value.value)
    if isinstance(value, dict):
        return {k: plain_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain_tree(v) for v in value]
    return value


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
    assert {"Deployment", "Service", "Ingress", "HorizontalPodAutoscaler", "PodDisruptionBudget", "ConfigMap", "Job",
            "ScaledObject", "ExternalSecret", "SecretStore"} <= kinds and "Secret" not in kinds
    releases = yaml.safe_load((p6 / "kubernetes/helm-releases.yaml").read_text())
    assert {r["chart"] for r in releases} >= {"metrics-server", "cluster-autoscaler", "external-secrets"}
    assert list(p6.glob("kubernetes/files/*/pgbouncer.ini"))
    assert "helm releases" in capsys.readouterr().out


@pytest.mark.parametrize("version", aws_facts.EKS_VERSIONS)
def test_rendered_manifests_validate_against_the_clusters_kubernetes_schemas(version):
    p = plan("phase6", eks={"version": version})
    manifests = render.k8s_manifests(p)
    skipped = {m["kind"] for m in manifests if m["apiVersion"].startswith(CRD_GROUPS)}
    # KEDA's and ESO's kinds are CRDs kubernetes-validate has no schema for; their content is asserted above.
    assert skipped == {"ScaledObject", "TriggerAuthentication", "ExternalSecret", "SecretStore"}
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
