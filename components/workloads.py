"""Workloads (phase 6): the app, the BullMQ workers and PgBouncer as Kubernetes
objects on the EKS cluster (all through the cluster's provider).

- app: Deployment + ClusterIP Service + Ingress (an internet-facing ALB made by the
  AWS Load Balancer Controller, targets are pod IPs) + HorizontalPodAutoscaler on CPU
  and memory utilisation + PodDisruptionBudget.
- workers: Deployment scaled by a KEDA ScaledObject on the length of each queue's
  BullMQ wait list (`{prefix}:<queue>:wait`) + PodDisruptionBudget.
- PgBouncer: Deployment (`pgbouncer.instances` replicas, the count the config's
  connection-budget check assumes) + Service on 6432 + PodDisruptionBudget; its
  pgbouncer.ini is rendered by the same template and data as phase 3's hosts.
- bootstrap: a Job that runs db/bootstrap.sql with psql as the master user, before
  PgBouncer and the app start (and again whenever the SQL changes: a new Job).

Neither the app Deployment nor the workers set `spec.replicas`: the HPA (KEDA's HPA
for the workers) owns it, and with server-side apply a field Pulumi never wrote
stays the autoscaler's.

Credentials (issue 11). No password passes through Pulumi into Kubernetes: External
Secrets Operator (installed by components/eks.py, Pod Identity) reads Secrets Manager
and writes the Secrets pods use, re-reading every REFRESH_INTERVAL. Its role may read
exactly the secrets below (an inline policy made here, next to the consumers):
- `app-credentials` (db-app, db-app-ro, Redis AUTH): DATABASE_URL, DATABASE_READ_URL
  and REDIS_URL for the app and workers, assembled by ESO's template, so apps keep
  their EC2 contract (three URLs in the environment, the image's own command).
- `redis-auth` (Redis AUTH): KEDA's TriggerAuthentication.
- `pgbouncer-auth` (db-pgbouncer): PgBouncer's auth file (auth user, admin, stats);
  app logins are looked up through `auth_query`, so they are never in it.
- `db-bootstrap` (db-master plus the app and auth passwords): read by the bootstrap
  Job's pods only. An init container (python, the host script's own `scram_verifier`)
  turns the app and auth passwords into SCRAM verifiers in a memory volume; psql sends
  only those (db/bootstrap.sql refuses anything else).
Refresh. PgBouncer: a sidecar watches the mounted auth file (the kubelet updates
Secret volumes in place) and sends PgBouncer SIGHUP (RELOAD: no connection dropped;
the pod shares its process namespace). App and workers read their URLs at start: the
rotation procedure's "consumers refresh" step in phase 6 is
`kubectl -n scaleladder rollout restart deployment/app deployment/workers` once ESO has
synced (within REFRESH_INTERVAL), before the old login is retired; the old login keeps
working until then (alternating logins, ladder/credentials.py).
TLS. App -> PgBouncer: `sslmode=require`, encrypted; each PgBouncer pod makes its own
self-signed key at start (an init container, openssl from the same image) that never
leaves the pod's memory volume, so clients do not verify it (no CA to pin). PgBouncer
-> RDS and the bootstrap's psql -> RDS: verify-full against the RDS root CAs of the
region, shipped in a ConfigMap from components/rds_ca/ (nothing is downloaded at start).

Every container: CPU and memory requests (HPA computes utilisation from them) and
limits, non-root, read-only root filesystem, no privilege escalation, no
capabilities, the runtime's default seccomp profile; the namespace enforces the
`restricted` Pod Security Standard, so a pod that drops any of this is refused.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from ladder import capacity, credentials, images, lifecycle, metrics, pgbouncer
from ladder.capacity import millicores

from .app_host import AppSpec
from .base import Tier
from .cdn import CLOUDFRONT_ORIGIN_FACING, ORIGIN_VERIFY_HEADER
from .fleet import SECURITY_HEADERS

core, apps, meta = k8s.core.v1, k8s.apps.v1, k8s.meta.v1

PGBOUNCER_PORT = 6432
FORBIDDEN_ACTION = "forbidden"
"""The Ingress's default backend behind CloudFront: the controller's fixed-response action (403)."""
PGBOUNCER_UID = images.PGBOUNCER_UID
APP_UID = 1000  # `node` in the official Node.js images; any non-root uid works for a read-only image
CONFIG_DIR, AUTH_DIR, CA_DIR, RUN_DIR = "/etc/pgbouncer/config", "/etc/pgbouncer/auth", "/etc/pgbouncer/ca", "/var/run/pgbouncer"
TLS_DIR = "/etc/pgbouncer/tls"
CA_FILE = "rds-ca.pem"
RDS_CA_DIR = Path(__file__).resolve().parent / "rds_ca"
"""The RDS root CAs per region (see the header of each file for where they come from)."""

# External Secrets Operator: the store, the Secrets it writes (names fixed: ESO owns them,
# Pulumi never writes them) and how often it re-reads Secrets Manager. Every read is a
# GetSecretValue call ($0.05 per 10,000): 1 minute is about 9 calls a minute, ~$2 a month.
ESO_API = "external-secrets.io/v1"
SECRET_STORE = "aws-secrets-manager"
APP_CREDENTIALS, REDIS_AUTH, PGBOUNCER_AUTH, BOOTSTRAP_CREDENTIALS = (
    "app-credentials", "redis-auth", "pgbouncer-auth", "db-bootstrap")
REFRESH_INTERVAL = "1m"
# The bootstrap Job's verifier step: Docker Official Image `python` (docker-library/python),
# used only to run cloudinit/scaleladder-db's scram_verifier (one implementation of SCRAM).
PYTHON_IMAGE = "docker.io/library/python:3.12-slim"
BOOTSTRAP_DIR, SCRIPT_DIR, VERIFIER_DIR, DB_CA_DIR = "/bootstrap", "/scripts", "/run/verifiers", "/etc/rds-ca"
BOOTSTRAP_PASSWORD_ENV = tuple(credentials.BOOTSTRAP_ENV[k] for k in
                               ("app_rw_password", "app_ro_password", "pgbouncer_auth_password"))
"""The bootstrap inputs that must reach psql as SCRAM verifiers, never as passwords."""

# PgBouncer's client TLS (ladder/pgbouncer.py renders it): the key the pod's init container makes.
PGBOUNCER_CLIENT_TLS = {"client_tls_sslmode": "require", "client_tls_key_file": f"{TLS_DIR}/server.key",
                        "client_tls_cert_file": f"{TLS_DIR}/server.crt"}
# The reload sidecar: the kubelet swaps a Secret volume's files in place when ESO updates the
# Secret; on a change, SIGHUP makes PgBouncer re-read its config and auth file without dropping a
# connection (PgBouncer docs, "Signals": SIGHUP = RELOAD). POSIX sh + /proc only (the image has
# no procps); the pod shares one process namespace, and both containers run as the same uid.
RELOAD_ON_CHANGE = f"""f={AUTH_DIR}/userlist.txt
last=$(cat "$f" | sha256sum)
while sleep 20; do
  now=$(cat "$f" | sha256sum)
  [ "$now" = "$last" ] && continue
  for p in /proc/[0-9]*; do
    [ "$(cat "$p/comm" 2>/dev/null)" = pgbouncer ] && kill -HUP "${{p#/proc/}}" && echo "auth file changed: pgbouncer reloaded"
  done
  last=$now
done
"""


# checkov's Kubernetes checks (tests/unit/test_checkov.py runs them on `ladder render phase6`) that
# these workloads do not meet, each with the reason; checkov reads `checkov.io/skip<n>: ID=reason`
# annotations on the object (checkov docs, "Suppressing and Skipping Policies").
_PINNED_TAGS = ("CKV_K8S_43", "images by pinned tag: app.image is the stack's own pinned tag, PgBouncer, postgres "
                "and python tags are pinned in ladder/images.py; a digest needs a registry lookup the plan cannot make")
_PULL_IF_NOT_PRESENT = ("CKV_K8S_15", "IfNotPresent with pinned tags that are never reused: a pod restart does "
                        "not depend on the registry being up")
_IMAGE_USER = ("CKV_K8S_40", "runs as the image's own non-root user (node 1000, the PgBouncer and postgres images' "
               "users), which owns its files; no hostPath, host namespace or privilege, so no host uid to collide with")
_ENV_CONTRACT = ("CKV_K8S_35", "the app's contract is DATABASE_URL/REDIS_URL in its environment, as on EC2; the Secret "
                 "is External Secrets', synced from Secrets Manager, never written by Pulumi")
CHECKOV_SKIPS: dict[str, tuple[tuple[str, str], ...]] = {
    "app": (_PINNED_TAGS, _PULL_IF_NOT_PRESENT, _IMAGE_USER, _ENV_CONTRACT),
    "workers": (_PINNED_TAGS, _PULL_IF_NOT_PRESENT, _IMAGE_USER, _ENV_CONTRACT,
                ("CKV_K8S_8", "a BullMQ worker serves no port: a stuck worker is found by the queue-depth alarm, "
                              "a crashed one exits and restarts"),
                ("CKV_K8S_9", "a BullMQ worker takes no traffic, so there is nothing to be ready for")),
    "pgbouncer": (_PINNED_TAGS, _PULL_IF_NOT_PRESENT, _IMAGE_USER,
                  ("CKV_K8S_8", "the pgbouncer container has a TCP liveness probe; checkov also counts the "
                                "reload-auth sidecar, a shell loop with no port"),
                  ("CKV_K8S_9", "the pgbouncer container has a TCP readiness probe; the reload-auth sidecar serves "
                                "nothing")),
    "bootstrap": (_PINNED_TAGS, _PULL_IF_NOT_PRESENT, _IMAGE_USER,
                  ("CKV_K8S_35", "psql reads PGPASSWORD from its environment; the Job's pods are the only readers "
                                 "of that Secret and exit after the run")),
}


def checkov_skips(component: str) -> dict[str, str] | None:
    skips = CHECKOV_SKIPS.get(component, ())
    return {f"checkov.io/skip{n}": f"{check}={why}" for n, (check, why) in enumerate(skips, 1)} or None


def _alb_hostname(status: Any) -> str:
    """The ALB's DNS name, which the load balancer controller writes into the Ingress status."""
    return status.load_balancer.ingress[0].hostname


def rds_ca_bundle(region: str) -> str:
    """The RDS root CAs of `region`, shipped with the program (no download at pod start)."""
    path = RDS_CA_DIR / f"{region}.pem"
    if not path.is_file():
        raise ValueError(f"no RDS CA bundle for {region} in {RDS_CA_DIR} (add one for every catalog region)")
    return path.read_text()


@dataclass(frozen=True)
class Resources:
    """Requests (what the scheduler reserves, the HPA's 100 %) and limits of one container."""

    cpu: str
    memory: str
    cpu_limit: str
    memory_limit: str

    def args(self) -> core.ResourceRequirementsArgs:
        return core.ResourceRequirementsArgs(requests={"cpu": self.cpu, "memory": self.memory},
                                             limits={"cpu": self.cpu_limit, "memory": self.memory_limit})


@dataclass(frozen=True)
class Scale:
    min: int
    max: int


@dataclass(frozen=True)
class PgBouncerSpec:
    replicas: int
    version: str
    pool_mode: str
    max_client_conn: int
    default_pool_size: int
    reserve_pool_size: int


@dataclass(frozen=True)
class WorkloadsArgs:
    namespace: str
    app: AppSpec
    """The app as on EC2: image, port, health path, plain env (ConfigMap), worker command, queues."""
    app_scale: Scale
    """HPA bounds (`eks.hpa.minReplicas/maxReplicas`)."""
    cpu_percent: int
    memory_percent: int
    worker_scale: Scale
    """KEDA bounds (`workers.min/max`)."""
    queue_depth_target: int
    """Waiting jobs per worker KEDA aims for (`workers.queueDepthTarget`)."""
    certificate_arn: str | None
    db_secret_arns: Mapping[str, pulumi.Input[str]]
    """Secrets Manager ARNs by credentials.SECRET_* name (db-master, db-app, db-app-ro, db-pgbouncer)."""
    db_primary_host: pulumi.Input[str]
    db_replica_hosts: Sequence[pulumi.Input[str]]
    db_port: int
    db_engine_version: str
    """`database.engineVersion`: the bootstrap's psql follows its major."""
    redis_host: pulumi.Input[str]
    redis_port: int
    redis_cluster: bool
    redis_secret_arn: pulumi.Input[str]
    """The Redis AUTH token's secret (its SecretString is the token)."""
    external_secrets_role: pulumi.Input[str]
    """Name of External Secrets Operator's IAM role (components/eks.py): granted read here."""
    pgbouncer: PgBouncerSpec
    static_url: pulumi.Input[str] | None = None
    vpc_cidr: str | None = None
    """The VPC's range (`network.cidr`): where RDS, Redis and the ALB are, for the NetworkPolicies."""
    origin_verify: pulumi.Input[str] | None = None
    """The secret X-Origin-Verify value CloudFront sends (components/cdn.py OriginVerify): the
    Ingress's ALB admits only CloudFront's prefix list and forwards only requests carrying it."""
    web_acl_arn: pulumi.Input[str] | None = None
    """`cdn.apiPath: loadBalancer`: the REGIONAL web ACL the controller associates with the Ingress's ALB,
    which then faces the clients (internet on 80/443, HTTP redirected to HTTPS)."""
    after: Sequence[pulumi.Resource] = ()
    """Cluster services every object waits for: the load balancer controller's webhooks
    intercept Services and Pods, KEDA's CRDs must exist before ScaledObjects."""
    # CPU from the capacity model (ladder/capacity.py): one Node.js process or one single-threaded
    # PgBouncer per pod uses at most one core, so app and PgBouncer request the core they can use.
    app_resources: Resources = Resources(millicores(capacity.APP_POD_CPU.value), "512Mi",
                                         millicores(capacity.APP_POD_CPU.value), "1Gi")
    worker_resources: Resources = Resources(millicores(capacity.WORKER_POD_CPU.value), "512Mi", "1", "1Gi")
    pgbouncer_resources: Resources = Resources(millicores(capacity.PGBOUNCER_POD_CPU.value), "64Mi",
                                               millicores(capacity.PGBOUNCER_POD_CPU.value), "256Mi")
    helper_resources: Resources = Resources("10m", "16Mi", "100m", "64Mi")
    labels: Mapping[str, str] = field(default_factory=lambda: {"app.kubernetes.io/part-of": "scaleladder"})


def queue_list_names(prefix: str, queues: Sequence[str]) -> list[str]:
    """BullMQ keeps a queue's waiting jobs in the list `<prefix>:<queue>:wait`."""
    return [f"{prefix}:{q}:wait" for q in queues]


def keda_triggers(host: str, port: int, cluster: bool, lists: Sequence[str], target: int, auth: str) -> list[dict]:
    """One redis (or redis-cluster) trigger per wait list; KEDA scales on the largest."""
    kind = "redis-cluster" if cluster else "redis"
    address = {"addresses": f"{host}:{port}"} if cluster else {"address": f"{host}:{port}", "databaseIndex": "0"}
    return [{"type": kind, "name": name.replace("{", "").replace("}", "").replace(":", "-"),
             "metadata": {**address, "listName": name, "listLength": str(target), "enableTLS": "true"},
             "authenticationRef": {"name": auth}} for name in lists]


def hardened(resources: Resources, uid: int) -> dict:
    """Container-level settings every container shares."""
    return dict(
        resources=resources.args(),
        security_context=core.SecurityContextArgs(
            run_as_non_root=True, run_as_user=uid, run_as_group=uid, read_only_root_filesystem=True,
            allow_privilege_escalation=False, capabilities=core.CapabilitiesArgs(drop=["ALL"]),
            seccomp_profile=core.SeccompProfileArgs(type="RuntimeDefault")),
    )


def pod_security(uid: int) -> core.PodSecurityContextArgs:
    return core.PodSecurityContextArgs(run_as_non_root=True, run_as_user=uid, run_as_group=uid, fs_group=uid,
                                       seccomp_profile=core.SeccompProfileArgs(type="RuntimeDefault"))


def spread(labels: Mapping[str, str]) -> list[core.TopologySpreadConstraintArgs]:
    """Across zones first, then nodes; ScheduleAnyway so a full zone delays balance, not pods."""
    return [core.TopologySpreadConstraintArgs(max_skew=1, topology_key=key, when_unsatisfiable="ScheduleAnyway",
                                              label_selector=meta.LabelSelectorArgs(match_labels=dict(labels)))
            for key in ("topology.kubernetes.io/zone", "kubernetes.io/hostname")]


def tmp_volume() -> tuple[core.VolumeArgs, core.VolumeMountArgs]:
    return (core.VolumeArgs(name="tmp", empty_dir=core.EmptyDirVolumeSourceArgs(medium="Memory", size_limit="64Mi")),
            core.VolumeMountArgs(name="tmp", mount_path="/tmp"))


class Workloads(Tier):
    TOKEN = "scaleladder:eks:Workloads"

    def __init__(self, name: str, args: WorkloadsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(name, opts)
        self.args = args
        ns = args.namespace
        self.namespace = core.Namespace(name, metadata=meta.ObjectMetaArgs(name=ns, labels={
            **args.labels,
            "pod-security.kubernetes.io/enforce": "restricted",
            # The load balancer controller holds a rolling update until the new pod is healthy in the ALB.
            "elbv2.k8s.aws/pod-readiness-gate-inject": "enabled",
        }), opts=self.child(depends_on=list(args.after)))
        self._after_ns = self.child(depends_on=[self.namespace, *args.after])
        if args.vpc_cidr is not None:
            self._network_policies(name, args.vpc_cidr)

        store = self._secret_store(name)
        self._store = store
        self._after_store = self.child(depends_on=[self.namespace, *args.after, store])
        self._app_credentials(name)
        self.rds_ca = core.ConfigMap(f"{name}-rds-ca", metadata=self._meta("", "rds-ca", auto=True),
                                     data={CA_FILE: rds_ca_bundle(args.app.region)}, opts=self._after_ns)
        self.bootstrap = self._bootstrap(name)
        self.pgbouncer_ini = self._pgbouncer(name)
        config = self._app_config(name)
        self.metrics_account = core.ServiceAccount(
            f"{name}-metrics", metadata=self._meta(metrics.METRICS_SERVICE_ACCOUNT, "app"), automount_service_account_token=False,
            opts=self._after_ns)
        self.app = self._app(name, config)
        self.workers = self._workers(name, config)
        self.ingress_hostname = self.ingress.status.apply(_alb_hostname)
        self.register_outputs({"ingressHostname": self.ingress_hostname, "namespace": ns})

    # -- network policies ----------------------------------------------------------
    def _network_policies(self, name: str, vpc_cidr: str) -> None:
        """Who talks to whom inside the namespace and out of it (enforced by the VPC CNI's network
        policy agent, `enableNetworkPolicy` on the vpc-cni add-on, components/eks.py). Everything is
        denied, then: DNS for all; the ALB (the VPC) into the app's port; app and workers into
        PgBouncer; PostgreSQL (5432 in the VPC: RDS) only from PgBouncer and the bootstrap Job;
        Redis (6379 in the VPC) only from app and workers; app and workers out to the internet
        (third-party APIs, AWS public endpoints), never to the VPC's other ports. The security
        groups still decide at the VPC level (every pod shares the cluster group); these policies
        decide which pod may use that path. The node's own IP (kubelet probes) is always allowed."""
        a = self.args
        net = k8s.networking.v1

        def pods(*names: str) -> meta.LabelSelectorArgs:
            return meta.LabelSelectorArgs(match_expressions=[meta.LabelSelectorRequirementArgs(
                key="app.kubernetes.io/name", operator="In", values=list(names))])

        def tcp(port: int | str) -> list[net.NetworkPolicyPortArgs]:
            return [net.NetworkPolicyPortArgs(protocol="TCP", port=port)]

        vpc = [net.NetworkPolicyPeerArgs(ip_block=net.IPBlockArgs(cidr=vpc_cidr))]
        dns = net.NetworkPolicyEgressRuleArgs(
            to=[net.NetworkPolicyPeerArgs(namespace_selector=meta.LabelSelectorArgs(
                match_labels={"kubernetes.io/metadata.name": "kube-system"}), pod_selector=meta.LabelSelectorArgs(
                match_labels={"k8s-app": "kube-dns"}))],
            ports=[net.NetworkPolicyPortArgs(protocol=p, port=53) for p in ("UDP", "TCP")])
        policies: dict[str, net.NetworkPolicySpecArgs] = {
            "default-deny": net.NetworkPolicySpecArgs(pod_selector=meta.LabelSelectorArgs(),
                                                      policy_types=["Ingress", "Egress"], egress=[dns]),
            "app-from-alb": net.NetworkPolicySpecArgs(
                pod_selector=pods("app"), policy_types=["Ingress"],
                ingress=[net.NetworkPolicyIngressRuleArgs(from_=vpc, ports=tcp(a.app.port))]),
            "pgbouncer-from-app": net.NetworkPolicySpecArgs(
                pod_selector=pods("pgbouncer"), policy_types=["Ingress"],
                ingress=[net.NetworkPolicyIngressRuleArgs(
                    from_=[net.NetworkPolicyPeerArgs(pod_selector=pods("app", "workers"))], ports=tcp(PGBOUNCER_PORT))]),
            "app-egress": net.NetworkPolicySpecArgs(
                pod_selector=pods("app", "workers"), policy_types=["Egress"], egress=[
                    net.NetworkPolicyEgressRuleArgs(to=[net.NetworkPolicyPeerArgs(pod_selector=pods("pgbouncer"))],
                                                    ports=tcp(PGBOUNCER_PORT)),
                    net.NetworkPolicyEgressRuleArgs(to=vpc, ports=tcp(a.redis_port)),
                    net.NetworkPolicyEgressRuleArgs(to=[net.NetworkPolicyPeerArgs(ip_block=net.IPBlockArgs(
                        cidr="0.0.0.0/0", except_=[vpc_cidr]))])]),
            "database-egress": net.NetworkPolicySpecArgs(
                pod_selector=pods("pgbouncer", "bootstrap"), policy_types=["Egress"],
                egress=[net.NetworkPolicyEgressRuleArgs(to=vpc, ports=tcp(a.db_port))]),
        }
        self.network_policies = {
            policy: net.NetworkPolicy(f"{name}-{policy}", metadata=meta.ObjectMetaArgs(
                name=policy, namespace=a.namespace, labels=dict(a.labels)), spec=spec, opts=self._after_ns)
            for policy, spec in policies.items()}

    def _workload_meta(self, name: str, component: str, auto: bool = False) -> meta.ObjectMetaArgs:
        """A Deployment's or Job's metadata, with the checkov checks it is exempt from and why."""
        m = self._meta(name, component, auto)
        m.annotations = checkov_skips(component)
        return m

    def _meta(self, name: str, component: str, auto: bool = False) -> meta.ObjectMetaArgs:
        labels = {**self.args.labels, "app.kubernetes.io/name": component}
        return meta.ObjectMetaArgs(namespace=self.args.namespace, labels=labels, name=None if auto else name)

    def _labels(self, component: str) -> dict[str, str]:
        return {"app.kubernetes.io/name": component, **self.args.labels}

    # -- app configuration -----------------------------------------------------
    def _app_config(self, name: str) -> k8s.core.v1.ConfigMap:
        a = self.args
        data: dict[str, pulumi.Input[str]] = {
            **a.app.env, "PORT": str(a.app.port), "REDIS_CLUSTER": "true" if a.redis_cluster else "false",
            "BULLMQ_PREFIX": a.app.queue_prefix, "BULLMQ_QUEUES": ",".join(a.app.queues),
            # The metrics contract (ladder/metrics.py): pods publish with their Pod Identity role.
            **metrics.direct_env(a.app.env.get("SCALELADDER_STACK", "")),
        }
        if a.static_url is not None:
            data["STATIC_URL"] = a.static_url
        # Auto-named: a change makes a new ConfigMap and rolls the pods.
        return core.ConfigMap(f"{name}-app-env", metadata=self._meta("", "app", auto=True), data=data,
                              opts=self._after_ns)

    # -- credentials (External Secrets Operator) -----------------------------------
    def _secret_store(self, name: str) -> k8s.apiextensions.CustomResource:
        """The namespace's view of Secrets Manager, and the ESO role's grant to read exactly
        the secrets this namespace's ExternalSecrets name."""
        a = self.args
        arns = [*(a.db_secret_arns[k] for k in sorted(a.db_secret_arns)), a.redis_secret_arn]
        # The actions ESO's AWS provider uses (external-secrets docs/provider/aws-access.md,
        # "EKS Pod Identity Setup"), on these secrets only.
        grant = aws.iam.RolePolicy(f"{name}-external-secrets-read", role=a.external_secrets_role,
                                   policy=pulumi.Output.all(*arns).apply(lambda resolved: json.dumps({
                                       "Version": "2012-10-17", "Statement": [{
                                           "Sid": "ReadScaleladderSecrets", "Effect": "Allow",
                                           "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret",
                                                      "secretsmanager:GetResourcePolicy",
                                                      "secretsmanager:ListSecretVersionIds"],
                                           "Resource": sorted(resolved)}]})),
                                   opts=self.child())
        return k8s.apiextensions.CustomResource(
            f"{name}-secret-store", api_version=ESO_API, kind="SecretStore",
            metadata=self._meta(SECRET_STORE, "external-secrets"),
            # No auth block: ESO uses its controller's credentials (Pod Identity).
            spec={"provider": {"aws": {"service": "SecretsManager", "region": a.app.region}}},
            opts=self.child(depends_on=[self.namespace, *a.after, grant]))

    def _external_secret(self, name: str, target: str, component: str, data: list[dict[str, Any]],
                         template: Mapping[str, pulumi.Input[str]] | None = None,
                         data_from: list[dict[str, Any]] | None = None) -> k8s.apiextensions.CustomResource:
        """An ExternalSecret that ESO keeps synced into the Secret `target` (owned by ESO)."""
        target_spec: dict[str, Any] = {"name": target, "creationPolicy": "Owner"}
        if template is not None:
            target_spec["template"] = {"engineVersion": "v2", "type": "Opaque", "data": dict(template)}
        spec: dict[str, Any] = {
            "refreshInterval": REFRESH_INTERVAL,
            "secretStoreRef": {"name": SECRET_STORE, "kind": "SecretStore"},
            "target": target_spec,
        }
        if data:
            spec["data"] = data
        if data_from:
            spec["dataFrom"] = data_from
        return k8s.apiextensions.CustomResource(
            f"{name}-{target}", api_version=ESO_API, kind="ExternalSecret", metadata=self._meta(target, component),
            spec=spec, opts=self._after_store)

    @staticmethod
    def _ref(key: str, arn: pulumi.Input[str], prop: str | None = None) -> dict[str, Any]:
        remote: dict[str, Any] = {"key": arn}
        if prop is not None:
            remote["property"] = prop
        return {"secretKey": key, "remoteRef": remote}

    def _app_credentials(self, name: str) -> None:
        """The app's and workers' URLs, and KEDA's Redis password, assembled by ESO."""
        a = self.args
        pgb = f"pgbouncer.{a.namespace}.svc.cluster.local:{PGBOUNCER_PORT}"

        def url(prefix: str, database: str) -> str:
            # ESO template (Go text/template): urlquery percent-encodes the user information.
            # sslmode=require: encrypted to PgBouncer, whose per-pod self-signed key has no CA to verify;
            # uselibpqcompat: node-postgres otherwise reads `require` as verify-full (brianc/node-postgres#3473).
            return ("postgres://{{ ." + prefix + "_username | urlquery }}:{{ ." + prefix + "_password | urlquery }}"
                    f"@{pgb}/{database}?sslmode=require&uselibpqcompat=true")

        arns = a.db_secret_arns
        self._external_secret(name, APP_CREDENTIALS, "app", data=[
            self._ref("rw_username", arns[credentials.SECRET_APP], "username"),
            self._ref("rw_password", arns[credentials.SECRET_APP], "password"),
            self._ref("ro_username", arns[credentials.SECRET_APP_RO], "username"),
            self._ref("ro_password", arns[credentials.SECRET_APP_RO], "password"),
            self._ref("redis_token", a.redis_secret_arn),
        ], template={
            "DATABASE_URL": url("rw", pgbouncer.RW_DATABASE),
            "DATABASE_READ_URL": url("ro", pgbouncer.RO_DATABASE),
            "REDIS_URL": pulumi.Output.from_input(a.redis_host).apply(
                lambda host: "rediss://:{{ .redis_token | urlquery }}@" + f"{host}:{a.redis_port}"),
        })
        self._external_secret(name, REDIS_AUTH, "workers", data=[self._ref("password", a.redis_secret_arn)])

    def _env_from(self, config: core.ConfigMap) -> list[core.EnvFromSourceArgs]:
        return [core.EnvFromSourceArgs(config_map_ref=core.ConfigMapEnvSourceArgs(name=config.metadata.name)),
                core.EnvFromSourceArgs(secret_ref=core.SecretEnvSourceArgs(name=APP_CREDENTIALS))]

    def _pdb(self, name: str, component: str) -> None:
        k8s.policy.v1.PodDisruptionBudget(
            f"{name}-{component}", metadata=self._meta(component, component),
            spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                max_unavailable=1, selector=meta.LabelSelectorArgs(match_labels=self._labels(component)),
                unhealthy_pod_eviction_policy="AlwaysAllow"),
            opts=self._after_ns)

    def _deployment(self, name: str, component: str, container: core.ContainerArgs,
                    grace_seconds: int, after: Sequence[pulumi.Resource] = ()) -> apps.Deployment:
        """A Deployment of one hardened app container: surge-only rolling updates, spread over
        zones, a writable /tmp on a read-only root. No `replicas`: its autoscaler owns that.
        After the bootstrap Job: the app's logins exist before the first pod connects."""
        labels = self._labels(component)
        tmp, tmp_mount = tmp_volume()
        container.volume_mounts = [*(container.volume_mounts or []), tmp_mount]  # type: ignore[misc]  # a plain list here
        return apps.Deployment(
            f"{name}-{component}", metadata=self._workload_meta(component, component),
            spec=apps.DeploymentSpecArgs(
                selector=meta.LabelSelectorArgs(match_labels=labels),
                strategy=apps.DeploymentStrategyArgs(type="RollingUpdate", rolling_update=apps.RollingUpdateDeploymentArgs(
                    max_unavailable=0, max_surge="25%")),
                revision_history_limit=5,
                template=core.PodTemplateSpecArgs(
                    metadata=meta.ObjectMetaArgs(labels=labels),
                    spec=core.PodSpecArgs(
                        automount_service_account_token=False, security_context=pod_security(APP_UID),
                        # Pod Identity (components/signals.py): PutMetricData into ScaleLadder/App only.
                        service_account_name=self.metrics_account.metadata.name,
                        topology_spread_constraints=spread(labels), termination_grace_period_seconds=grace_seconds,
                        containers=[container], volumes=[tmp]))),
            opts=self.child(depends_on=[self.namespace, *self.args.after, self.bootstrap, *after]))

    # -- app -------------------------------------------------------------------
    def _app(self, name: str, config: core.ConfigMap) -> apps.Deployment:
        a = self.args
        labels = self._labels("app")
        probe: dict[str, Any] = dict(http_get=core.HTTPGetActionArgs(path=a.app.health_path, port="http"), timeout_seconds=3)
        service = core.Service(
            f"{name}-app", metadata=self._meta("app", "app"),
            spec=core.ServiceSpecArgs(type="ClusterIP", selector=labels,
                                      ports=[core.ServicePortArgs(name="http", port=80, target_port="http")]),
            opts=self._after_ns)
        self.ingress = k8s.networking.v1.Ingress(
            f"{name}-app", metadata=meta.ObjectMetaArgs(name="app", namespace=a.namespace, labels=labels,
                                                        annotations=self._ingress_annotations()),
            spec=k8s.networking.v1.IngressSpecArgs(
                ingress_class_name="alb",
                # Behind CloudFront, what no rule matches (no origin header) gets the fixed 403 below.
                default_backend=k8s.networking.v1.IngressBackendArgs(service=k8s.networking.v1.IngressServiceBackendArgs(
                    name=FORBIDDEN_ACTION, port=k8s.networking.v1.ServiceBackendPortArgs(name="use-annotation")))
                if a.origin_verify is not None else None,
                rules=[k8s.networking.v1.IngressRuleArgs(http=k8s.networking.v1.HTTPIngressRuleValueArgs(paths=[
                    k8s.networking.v1.HTTPIngressPathArgs(
                        path="/", path_type="Prefix",
                        backend=k8s.networking.v1.IngressBackendArgs(service=k8s.networking.v1.IngressServiceBackendArgs(
                            name="app", port=k8s.networking.v1.ServiceBackendPortArgs(name="http"))))]))]),
            opts=self.child(depends_on=[self.namespace, *a.after, service]))
        # After the Ingress: the controller's webhook injects the ALB readiness gate only into pods
        # created once the Ingress's TargetGroupBinding exists (aws-load-balancer-controller docs,
        # "Pod readiness gate"), so a ready app pod is one the ALB reports healthy; Pulumi's
        # Deployment await (rollout complete) therefore means "the ALB serves it" (the CDN waits for it).
        stop = lifecycle.APP
        deployment = self._deployment(
            name, "app", grace_seconds=stop.grace_seconds, after=[self.ingress],
            container=core.ContainerArgs(
                name="app", image=a.app.image,
                ports=[core.ContainerPortArgs(name="http", container_port=a.app.port)],
                env_from=self._env_from(config),
                startup_probe=core.ProbeArgs(**probe, period_seconds=5, failure_threshold=30),
                readiness_probe=core.ProbeArgs(**probe, period_seconds=5, failure_threshold=3),
                liveness_probe=core.ProbeArgs(**probe, period_seconds=20, failure_threshold=3),
                # Serves while the ALB still sends new requests to the deregistering target (ladder/lifecycle.py).
                lifecycle=core.LifecycleArgs(pre_stop=core.LifecycleHandlerArgs(
                    sleep=core.SleepActionArgs(seconds=stop.pre_stop_seconds))),
                **hardened(a.app_resources, APP_UID)))
        k8s.autoscaling.v2.HorizontalPodAutoscaler(
            f"{name}-app", metadata=self._meta("app", "app"),
            spec=k8s.autoscaling.v2.HorizontalPodAutoscalerSpecArgs(
                scale_target_ref=k8s.autoscaling.v2.CrossVersionObjectReferenceArgs(
                    api_version="apps/v1", kind="Deployment", name=deployment.metadata.name),
                min_replicas=a.app_scale.min, max_replicas=a.app_scale.max,
                metrics=[k8s.autoscaling.v2.MetricSpecArgs(type="Resource", resource=k8s.autoscaling.v2.ResourceMetricSourceArgs(
                    name=resource, target=k8s.autoscaling.v2.MetricTargetArgs(type="Utilization", average_utilization=pct)))
                    for resource, pct in (("cpu", a.cpu_percent), ("memory", a.memory_percent))],
                behavior=k8s.autoscaling.v2.HorizontalPodAutoscalerBehaviorArgs(
                    scale_down=k8s.autoscaling.v2.HPAScalingRulesArgs(stabilization_window_seconds=300))),
            opts=self._after_ns)
        self._pdb(name, "app")
        return deployment

    def _ingress_annotations(self) -> dict[str, pulumi.Input[str]]:
        """The controller's annotations; behind CloudFront (origin_verify) the conditions one holds
        the origin header's value, a Pulumi secret (encrypted in the state)."""
        a = self.args
        notes: dict[str, pulumi.Input[str]] = dict(self._plain_ingress_annotations())
        prefix = "alb.ingress.kubernetes.io"
        if a.web_acl_arn is not None:
            # aws-load-balancer-controller docs/guide/ingress/annotations.md: wafv2-acl-arn ("Only Regional
            # WAFv2 is supported"); inbound-cidrs (default 0.0.0.0/0, ::/0; the ALB is IPv4 here), stated
            # so the open edge is explicit; listen-ports 80 + 443 and ssl-redirect come with the certificate.
            notes[f"{prefix}/wafv2-acl-arn"] = a.web_acl_arn
            notes[f"{prefix}/inbound-cidrs"] = "0.0.0.0/0"
            # The security headers CloudFront's policy added to API responses, from the HTTPS listener
            # (annotation listener-attributes.${Protocol}-${Port}, controller >= the chart 1.13 pinned in
            # components/eks.py; keys: ELB API Reference "ListenerAttribute"; values as components/fleet.py).
            notes[f"{prefix}/listener-attributes.HTTPS-443"] = ",".join(
                f"routing.http.response.{key}.header_value={SECURITY_HEADERS[short]}" for key, short in
                (("strict_transport_security", "hsts"), ("x_content_type_options", "nosniff"),
                 ("x_frame_options", "frames")))
        if a.origin_verify is None:
            return notes
        # aws-load-balancer-controller docs, "Ingress annotations": security-group-prefix-lists
        # (inbound sources of the managed group), actions.<name> (a fixed response, referenced as a
        # backend with port `use-annotation`), conditions.<service> (extra rule conditions).
        # HTTPS only: CloudFront uses https-only, and each prefix-list rule weighs 55 of a group's 60.
        prefix_list = aws.ec2.get_managed_prefix_list_output(
            name=CLOUDFRONT_ORIGIN_FACING, opts=pulumi.InvokeOutputOptions(parent=self)).id
        notes[f"{prefix}/listen-ports"] = json.dumps([{"HTTPS": 443}])
        notes.pop(f"{prefix}/ssl-redirect", None)
        notes[f"{prefix}/actions.{FORBIDDEN_ACTION}"] = json.dumps({
            "type": "fixed-response",
            "fixedResponseConfig": {"contentType": "text/plain", "statusCode": "403", "messageBody": "Forbidden"}})
        notes[f"{prefix}/security-group-prefix-lists"] = prefix_list
        notes[f"{prefix}/conditions.app"] = pulumi.Output.secret(a.origin_verify).apply(lambda value: json.dumps([{
            "field": "http-header", "httpHeaderConfig": {"httpHeaderName": ORIGIN_VERIFY_HEADER, "values": [value]}}]))
        return notes

    def _plain_ingress_annotations(self) -> dict[str, str]:
        a = self.args
        prefix = "alb.ingress.kubernetes.io"
        notes = {
            f"{prefix}/scheme": "internet-facing",
            f"{prefix}/target-type": "ip",
            f"{prefix}/healthcheck-path": a.app.health_path,
            f"{prefix}/success-codes": "200",
            f"{prefix}/load-balancer-attributes":
                "idle_timeout.timeout_seconds=60,routing.http.drop_invalid_header_fields.enabled=true",
            f"{prefix}/target-group-attributes":
                f"deregistration_delay.timeout_seconds={lifecycle.ALB_DEREGISTRATION_DELAY_SECONDS}",
        }
        if a.certificate_arn:
            notes.update({
                f"{prefix}/listen-ports": json.dumps([{"HTTP": 80}, {"HTTPS": 443}]),
                f"{prefix}/certificate-arn": a.certificate_arn,
                f"{prefix}/ssl-policy": "ELBSecurityPolicy-TLS13-1-2-2021-06",
                f"{prefix}/ssl-redirect": "443",
            })
        else:
            notes[f"{prefix}/listen-ports"] = json.dumps([{"HTTP": 80}])
        return notes

    # -- workers ---------------------------------------------------------------
    def _workers(self, name: str, config: core.ConfigMap) -> apps.Deployment:
        a = self.args
        # No probes: a BullMQ worker serves no port; a crashed worker exits and restarts.
        deployment = self._deployment(
            name, "workers", grace_seconds=lifecycle.WORKERS.grace_seconds,  # BullMQ finishes the running job on SIGTERM
            container=core.ContainerArgs(
                name="worker", image=a.app.image, command=list(a.app.worker_command),
                env_from=self._env_from(config), **hardened(a.worker_resources, APP_UID)))
        self._pdb(name, "workers")

        auth = k8s.apiextensions.CustomResource(
            f"{name}-redis-auth", api_version="keda.sh/v1alpha1", kind="TriggerAuthentication",
            metadata=self._meta("redis-auth", "workers"),
            spec={"secretTargetRef": [{"parameter": "password", "name": REDIS_AUTH, "key": "password"}]},
            opts=self._after_ns)
        lists = queue_list_names(a.app.queue_prefix, a.app.queues)
        self.scaled_object = k8s.apiextensions.CustomResource(
            f"{name}-workers", api_version="keda.sh/v1alpha1", kind="ScaledObject",
            metadata=self._meta("workers", "workers"),
            spec={
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment.metadata.name},
                "minReplicaCount": a.worker_scale.min, "maxReplicaCount": a.worker_scale.max,
                "pollingInterval": 15, "cooldownPeriod": 300,
                "triggers": pulumi.Output.from_input(a.redis_host).apply(lambda host: keda_triggers(
                    host, a.redis_port, a.redis_cluster, lists, a.queue_depth_target, "redis-auth")),
            },
            opts=self.child(depends_on=[self.namespace, *a.after, auth]))
        return deployment

    # -- bootstrap ---------------------------------------------------------------
    def _bootstrap(self, name: str) -> k8s.batch.v1.Job:
        """db/bootstrap.sql as the master, from the only Secret that holds the master password."""
        a = self.args
        arns = a.db_secret_arns
        env = credentials.BOOTSTRAP_ENV
        self._external_secret(name, BOOTSTRAP_CREDENTIALS, "bootstrap", data=[
            self._ref("PGUSER", arns[credentials.SECRET_MASTER], "username"),
            self._ref("PGPASSWORD", arns[credentials.SECRET_MASTER], "password"),
            self._ref(env["app_rw_login"], arns[credentials.SECRET_APP], "username"),
            self._ref(env["app_rw_password"], arns[credentials.SECRET_APP], "password"),
            self._ref(env["app_ro_login"], arns[credentials.SECRET_APP_RO], "username"),
            self._ref(env["app_ro_password"], arns[credentials.SECRET_APP_RO], "password"),
            self._ref(env["pgbouncer_auth_password"], arns[credentials.SECRET_PGBOUNCER], "auth_password"),
        ])
        # Auto-named: a changed SQL or script makes a new ConfigMap, so a new Job that runs it.
        files = core.ConfigMap(f"{name}-bootstrap", metadata=self._meta("", "bootstrap", auto=True), data={
            "bootstrap.sql": credentials.BOOTSTRAP_SQL.read_text(),
            "scaleladder-db": credentials.HOST_SCRIPT.read_text(),
        }, opts=self._after_ns)
        verifiers = (
            "import importlib.machinery, importlib.util, os, shlex, sys\n"
            f"loader = importlib.machinery.SourceFileLoader('scaleladder_db', '{SCRIPT_DIR}/scaleladder-db')\n"
            "module = importlib.util.module_from_spec(importlib.util.spec_from_loader(loader.name, loader))\n"
            "sys.modules[loader.name] = module\n"  # its dataclasses look their module up
            "loader.exec_module(module)\n"
            f"with open('{VERIFIER_DIR}/env', 'w') as out:\n"
            f"    for var in {list(BOOTSTRAP_PASSWORD_ENV)!r}:\n"
            "        out.write(f'export {var}={shlex.quote(module.scram_verifier(os.environ[var]))}\\n')\n")
        conninfo = pulumi.Output.from_input(a.db_primary_host).apply(
            lambda host: f"host={host} port={a.db_port} dbname={credentials.DB_NAME} sslmode=verify-full "
                         f"sslrootcert={DB_CA_DIR}/{CA_FILE} connect_timeout=10")
        secret_env = [core.EnvFromSourceArgs(secret_ref=core.SecretEnvSourceArgs(name=BOOTSTRAP_CREDENTIALS))]
        work = core.VolumeArgs(name="verifiers", empty_dir=core.EmptyDirVolumeSourceArgs(medium="Memory", size_limit="1Mi"))
        mount = core.VolumeMountArgs(name="verifiers", mount_path=VERIFIER_DIR)
        uid = images.POSTGRES_UID
        return k8s.batch.v1.Job(
            f"{name}-bootstrap", metadata=self._workload_meta("", "bootstrap", auto=True),
            spec=k8s.batch.v1.JobSpecArgs(
                backoff_limit=6, active_deadline_seconds=1800,
                template=core.PodTemplateSpecArgs(
                    metadata=meta.ObjectMetaArgs(labels=self._labels("bootstrap")),
                    spec=core.PodSpecArgs(
                        restart_policy="OnFailure", automount_service_account_token=False,
                        security_context=pod_security(uid),
                        init_containers=[core.ContainerArgs(
                            name="verifiers", image=PYTHON_IMAGE, command=["python3", "-c", verifiers],
                            env=[core.EnvVarArgs(name="PYTHONDONTWRITEBYTECODE", value="1")], env_from=secret_env,
                            volume_mounts=[mount, core.VolumeMountArgs(name="files", mount_path=SCRIPT_DIR, read_only=True)],
                            **hardened(a.helper_resources, uid))],
                        containers=[core.ContainerArgs(
                            name="psql", image=images.postgres_image(a.db_engine_version),
                            # The environment's app passwords are replaced by their verifiers before psql starts.
                            command=["sh", "-c", f'. {VERIFIER_DIR}/env && exec psql "$CONNINFO" -X -q '
                                                 f"-f {BOOTSTRAP_DIR}/bootstrap.sql"],
                            env=[core.EnvVarArgs(name="CONNINFO", value=conninfo),
                                 core.EnvVarArgs(name="HOME", value=VERIFIER_DIR)],
                            env_from=secret_env,
                            volume_mounts=[mount,
                                           core.VolumeMountArgs(name="files", mount_path=BOOTSTRAP_DIR, read_only=True),
                                           core.VolumeMountArgs(name="rds-ca", mount_path=DB_CA_DIR, read_only=True)],
                            **hardened(a.helper_resources, uid))],
                        volumes=[work,
                                 core.VolumeArgs(name="files", config_map=core.ConfigMapVolumeSourceArgs(
                                     name=files.metadata.name)),
                                 core.VolumeArgs(name="rds-ca", config_map=core.ConfigMapVolumeSourceArgs(
                                     name=self.rds_ca.metadata.name))]))),
            # pulumi-kubernetes waits for a Job to complete (batch/v1 Job docs: 10 minutes by
            # default); the first run also waits for ESO's first sync and two image pulls.
            opts=self.child(depends_on=[self.namespace, *a.after, self._store],
                            custom_timeouts=pulumi.CustomTimeouts(create="20m", update="20m")))

    # -- PgBouncer -------------------------------------------------------------
    def _pgbouncer_ini(self) -> pulumi.Output[str]:
        a, p = self.args, self.args.pgbouncer
        return pulumi.Output.all(a.db_primary_host, *a.db_replica_hosts).apply(lambda hosts: pgbouncer.render_ini(
            pgbouncer.ini_data(
                version=p.version, pool_mode=p.pool_mode, max_client_conn=p.max_client_conn,
                default_pool_size=p.default_pool_size, reserve_pool_size=p.reserve_pool_size,
                primary_host=hosts[0], replica_hosts=list(hosts[1:]), db_port=a.db_port,
                listen_addr="0.0.0.0", listen_port=PGBOUNCER_PORT, server_tls_sslmode="verify-full",
                server_tls_ca_file=f"{CA_DIR}/{CA_FILE}", auth_file=f"{AUTH_DIR}/userlist.txt",
                admin_users=[credentials.PGBOUNCER_ADMIN_USER], stats_users=[credentials.PGBOUNCER_STATS_USER],
                unix_socket_dir=RUN_DIR, **PGBOUNCER_CLIENT_TLS)))

    def _pgbouncer(self, name: str) -> pulumi.Output[str]:
        a, p = self.args, self.args.pgbouncer
        labels = self._labels("pgbouncer")
        ini = self._pgbouncer_ini()
        config = core.ConfigMap(f"{name}-pgbouncer", metadata=self._meta("", "pgbouncer", auto=True),
                                data={"pgbouncer.ini": ini}, opts=self._after_ns)

        def line(user: str, password: str) -> str:
            # The auth file's quoting: a double quote inside a field is doubled (PgBouncer docs, auth_file).
            return '"{{ .' + user + ' }}" "{{ .' + password + ' | replace "\\"" "\\"\\"" }}"\n'

        self._external_secret(name, PGBOUNCER_AUTH, "pgbouncer", data=[], data_from=[
            {"extract": {"key": a.db_secret_arns[credentials.SECRET_PGBOUNCER]}}], template={
            "userlist.txt": line("auth_user", "auth_password") + line("admin_user", "admin_password")
                            + line("stats_user", "stats_password")})
        image = images.pgbouncer_image(p.version)
        if image is None:  # refused by the config already (scaleladder:pgbouncer.version)
            raise ValueError(f"no PgBouncer image for {p.version}")
        volumes = [
            core.VolumeArgs(name="config", config_map=core.ConfigMapVolumeSourceArgs(name=config.metadata.name)),
            core.VolumeArgs(name="auth", secret=core.SecretVolumeSourceArgs(secret_name=PGBOUNCER_AUTH,
                                                                            default_mode=0o440)),
            core.VolumeArgs(name="ca", config_map=core.ConfigMapVolumeSourceArgs(name=self.rds_ca.metadata.name)),
            core.VolumeArgs(name="tls", empty_dir=core.EmptyDirVolumeSourceArgs(medium="Memory", size_limit="1Mi")),
            core.VolumeArgs(name="run", empty_dir=core.EmptyDirVolumeSourceArgs(medium="Memory", size_limit="1Mi")),
        ]
        auth_mount = core.VolumeMountArgs(name="auth", mount_path=AUTH_DIR, read_only=True)
        tcp = core.TCPSocketActionArgs(port="pgbouncer")
        apps.Deployment(
            f"{name}-pgbouncer", metadata=self._workload_meta("pgbouncer", "pgbouncer"),
            spec=apps.DeploymentSpecArgs(
                replicas=p.replicas,
                selector=meta.LabelSelectorArgs(match_labels=labels),
                strategy=apps.DeploymentStrategyArgs(type="RollingUpdate", rolling_update=apps.RollingUpdateDeploymentArgs(
                    max_unavailable=0, max_surge=1)),
                revision_history_limit=5,
                template=core.PodTemplateSpecArgs(
                    metadata=meta.ObjectMetaArgs(labels=labels),
                    spec=core.PodSpecArgs(
                        automount_service_account_token=False,
                        # The reload sidecar signals PgBouncer, so the two share a process namespace.
                        share_process_namespace=True,
                        # The preStop drains (ladder/lifecycle.py: SIGINT, wait for the exit); grace covers it.
                        termination_grace_period_seconds=lifecycle.PGBOUNCER.grace_seconds,
                        security_context=pod_security(PGBOUNCER_UID),
                        topology_spread_constraints=spread(labels),
                        init_containers=[core.ContainerArgs(
                            name="tls-key", image=image,
                            command=["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650",
                                     "-subj", f"/CN=pgbouncer.{a.namespace}.svc",
                                     "-keyout", f"{TLS_DIR}/server.key", "-out", f"{TLS_DIR}/server.crt"],
                            volume_mounts=[core.VolumeMountArgs(name="tls", mount_path=TLS_DIR)],
                            **hardened(a.helper_resources, PGBOUNCER_UID))],
                        containers=[core.ContainerArgs(
                            name="pgbouncer", image=image,
                            command=["/usr/bin/pgbouncer", f"{CONFIG_DIR}/pgbouncer.ini"],
                            ports=[core.ContainerPortArgs(name="pgbouncer", container_port=PGBOUNCER_PORT)],
                            readiness_probe=core.ProbeArgs(tcp_socket=tcp, period_seconds=5),
                            liveness_probe=core.ProbeArgs(tcp_socket=tcp, period_seconds=15, failure_threshold=3),
                            lifecycle=core.LifecycleArgs(pre_stop=core.LifecycleHandlerArgs(
                                exec_=core.ExecActionArgs(command=["sh", "-c", lifecycle.pgbouncer_pre_stop_script()]))),
                            volume_mounts=[
                                core.VolumeMountArgs(name="config", mount_path=CONFIG_DIR, read_only=True),
                                auth_mount,
                                core.VolumeMountArgs(name="ca", mount_path=CA_DIR, read_only=True),
                                core.VolumeMountArgs(name="tls", mount_path=TLS_DIR, read_only=True),
                                core.VolumeMountArgs(name="run", mount_path=RUN_DIR)],
                            **hardened(a.pgbouncer_resources, PGBOUNCER_UID)),
                            core.ContainerArgs(
                                name="reload-auth", image=image, command=["sh", "-c", RELOAD_ON_CHANGE],
                                volume_mounts=[auth_mount], **hardened(a.helper_resources, PGBOUNCER_UID))],
                        volumes=volumes))),
            opts=self.child(depends_on=[self.namespace, *a.after, self.bootstrap]))
        core.Service(
            f"{name}-pgbouncer", metadata=self._meta("pgbouncer", "pgbouncer"),
            spec=core.ServiceSpecArgs(type="ClusterIP", selector=labels, ports=[core.ServicePortArgs(
                name="pgbouncer", port=PGBOUNCER_PORT, target_port="pgbouncer")]),
            opts=self._after_ns)
        self._pdb(name, "pgbouncer")
        return ini
