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

Neither the app Deployment nor the workers set `spec.replicas`: the HPA (KEDA's HPA
for the workers) owns it, and with server-side apply a field Pulumi never wrote
stays the autoscaler's.

Secrets. The RDS master password is generated and rotated by RDS in Secrets
Manager; Pulumi reads the current version at deploy time
(`get_secret_version_output`) and wraps it in `Output.secret`, so it reaches only
Kubernetes Secret objects (envelope-encrypted by the cluster's KMS key) and the
encrypted Pulumi state, never an output, a ConfigMap, a rendered file or a log. The
Redis AUTH token is already a Pulumi secret. Apps keep the contract they have on
EC2 (DATABASE_URL, DATABASE_READ_URL, REDIS_URL in the environment, the image's own
command), which an init container fetching the secret could not give without
knowing that command. ConfigMaps and Secrets are auto-named, so a changed value
makes a new object and rolls the pods that use it. After RDS rotates the password
(every 7 days by default), the next `pulumi up` rolls PgBouncer and the apps onto
it; until then PgBouncer's open server connections keep working, new ones fail, so
schedule `pulumi up` after rotation or lengthen the rotation period (see README).

Every container: CPU and memory requests (HPA computes utilisation from them) and
limits, non-root, read-only root filesystem, no privilege escalation, no
capabilities, the runtime's default seccomp profile; the namespace enforces the
`restricted` Pod Security Standard, so a pod that drops any of this is refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Mapping, Sequence
from urllib.parse import quote

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from ladder import pgbouncer

from .app_host import AppSpec
from .base import Tier

core, apps, meta = k8s.core.v1, k8s.apps.v1, k8s.meta.v1

PGBOUNCER_PORT = 6432
# PgBouncer image: CloudNativePG's (CNCF) build of upstream PgBouncer on Debian slim, the
# image the CloudNativePG operator itself runs; PgBouncer publishes no image of its own.
# Tags follow PgBouncer releases; `pgbouncer.version` picks the one whose settings
# ladder/pgbouncer.py renders for.
PGBOUNCER_IMAGES = {
    "1.17": "ghcr.io/cloudnative-pg/pgbouncer:1.17.0", "1.18": "ghcr.io/cloudnative-pg/pgbouncer:1.18.0",
    "1.21": "ghcr.io/cloudnative-pg/pgbouncer:1.21.0", "1.22": "ghcr.io/cloudnative-pg/pgbouncer:1.22.1",
    "1.23": "ghcr.io/cloudnative-pg/pgbouncer:1.23.1", "1.24": "ghcr.io/cloudnative-pg/pgbouncer:1.24.1",
    "1.25": "ghcr.io/cloudnative-pg/pgbouncer:1.25.0",
}
PGBOUNCER_UID = 998  # the image's `pgbouncer` user
CURL_IMAGE = "curlimages/curl:8.11.1"  # fetches the RDS CA bundle, as the EC2 hosts do at boot
APP_UID = 1000  # `node` in the official Node.js images; any non-root uid works for a read-only image
CONFIG_DIR, AUTH_DIR, CA_DIR, RUN_DIR = "/etc/pgbouncer/config", "/etc/pgbouncer/auth", "/etc/pgbouncer/ca", "/var/run/pgbouncer"


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
    db_user: str
    db_secret_arn: pulumi.Input[str]
    """The RDS-managed master secret (JSON with username and password)."""
    db_primary_host: pulumi.Input[str]
    db_replica_hosts: Sequence[pulumi.Input[str]]
    db_port: int
    redis_host: pulumi.Input[str]
    redis_port: int
    redis_cluster: bool
    redis_token: pulumi.Output[str]
    """A Pulumi secret."""
    pgbouncer: PgBouncerSpec
    static_url: pulumi.Input[str] | None = None
    after: Sequence[pulumi.Resource] = ()
    """Cluster services every object waits for: the load balancer controller's webhooks
    intercept Services and Pods, KEDA's CRDs must exist before ScaledObjects."""
    app_resources: Resources = Resources("250m", "512Mi", "1", "1Gi")
    worker_resources: Resources = Resources("250m", "512Mi", "1", "1Gi")
    pgbouncer_resources: Resources = Resources("100m", "64Mi", "500m", "256Mi")
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

        db = aws.secretsmanager.get_secret_version_output(secret_id=args.db_secret_arn,
                                                          opts=pulumi.InvokeOutputOptions(parent=self))
        self.db_password = pulumi.Output.secret(db.secret_string).apply(lambda s: json.loads(s)["password"])

        self.pgbouncer_ini = self._pgbouncer(name)
        config = self._app_config(name)
        secrets = self._app_secrets(name)
        self.app = self._app(name, config, secrets)
        self.workers = self._workers(name, config, secrets)
        self.ingress_hostname = self.ingress.status.apply(lambda s: s.load_balancer.ingress[0].hostname)
        self.register_outputs({"ingressHostname": self.ingress_hostname, "namespace": ns})

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
        }
        if a.static_url is not None:
            data["STATIC_URL"] = a.static_url
        # Auto-named: a change makes a new ConfigMap and rolls the pods.
        return core.ConfigMap(f"{name}-app-env", metadata=self._meta("", "app", auto=True), data=data,
                              opts=self._after_ns)

    def _app_secrets(self, name: str) -> k8s.core.v1.Secret:
        a = self.args
        host = f"pgbouncer.{a.namespace}.svc.cluster.local"

        def url(database: str) -> pulumi.Output[str]:
            # TLS ends at PgBouncer inside the cluster; PgBouncer verifies RDS (as on EC2 from phase 3).
            return pulumi.Output.secret(self.db_password.apply(
                lambda pw: f"postgres://{quote(a.db_user, safe='')}:{quote(pw, safe='')}@{host}:{PGBOUNCER_PORT}"
                           f"/{database}?sslmode=disable"))

        redis_url = pulumi.Output.secret(pulumi.Output.all(a.redis_token, a.redis_host).apply(
            lambda v: f"rediss://:{quote(v[0], safe='')}@{v[1]}:{a.redis_port}"))
        return core.Secret(f"{name}-app-secrets", metadata=self._meta("", "app", auto=True), type="Opaque",
                           string_data={"DATABASE_URL": url(pgbouncer.RW_DATABASE),
                                        "DATABASE_READ_URL": url(pgbouncer.RO_DATABASE), "REDIS_URL": redis_url},
                           opts=self._after_ns)

    def _env_from(self, config: core.ConfigMap, secrets: core.Secret) -> list[core.EnvFromSourceArgs]:
        return [core.EnvFromSourceArgs(config_map_ref=core.ConfigMapEnvSourceArgs(name=config.metadata.name)),
                core.EnvFromSourceArgs(secret_ref=core.SecretEnvSourceArgs(name=secrets.metadata.name))]

    def _pdb(self, name: str, component: str) -> None:
        k8s.policy.v1.PodDisruptionBudget(
            f"{name}-{component}", metadata=self._meta(component, component),
            spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                max_unavailable=1, selector=meta.LabelSelectorArgs(match_labels=self._labels(component)),
                unhealthy_pod_eviction_policy="AlwaysAllow"),
            opts=self._after_ns)

    def _deployment(self, name: str, component: str, container: core.ContainerArgs,
                    grace_seconds: int) -> apps.Deployment:
        """A Deployment of one hardened app container: surge-only rolling updates, spread over
        zones, a writable /tmp on a read-only root. No `replicas`: its autoscaler owns that."""
        labels = self._labels(component)
        tmp, tmp_mount = tmp_volume()
        container.volume_mounts = [*(container.volume_mounts or []), tmp_mount]
        return apps.Deployment(
            f"{name}-{component}", metadata=self._meta(component, component),
            spec=apps.DeploymentSpecArgs(
                selector=meta.LabelSelectorArgs(match_labels=labels),
                strategy=apps.DeploymentStrategyArgs(type="RollingUpdate", rolling_update=apps.RollingUpdateDeploymentArgs(
                    max_unavailable=0, max_surge="25%")),
                revision_history_limit=5,
                template=core.PodTemplateSpecArgs(
                    metadata=meta.ObjectMetaArgs(labels=labels),
                    spec=core.PodSpecArgs(
                        automount_service_account_token=False, security_context=pod_security(APP_UID),
                        topology_spread_constraints=spread(labels), termination_grace_period_seconds=grace_seconds,
                        containers=[container], volumes=[tmp]))),
            opts=self._after_ns)

    # -- app -------------------------------------------------------------------
    def _app(self, name: str, config: core.ConfigMap, secrets: core.Secret) -> apps.Deployment:
        a = self.args
        labels = self._labels("app")
        probe = dict(http_get=core.HTTPGetActionArgs(path=a.app.health_path, port="http"), timeout_seconds=3)
        deployment = self._deployment(
            name, "app", grace_seconds=45,  # long enough for the ALB to deregister the pod (preStop)
            container=core.ContainerArgs(
                name="app", image=a.app.image,
                ports=[core.ContainerPortArgs(name="http", container_port=a.app.port)],
                env_from=self._env_from(config, secrets),
                startup_probe=core.ProbeArgs(**probe, period_seconds=5, failure_threshold=30),
                readiness_probe=core.ProbeArgs(**probe, period_seconds=5, failure_threshold=3),
                liveness_probe=core.ProbeArgs(**probe, period_seconds=20, failure_threshold=3),
                lifecycle=core.LifecycleArgs(pre_stop=core.LifecycleHandlerArgs(sleep=core.SleepActionArgs(seconds=10))),
                **hardened(a.app_resources, APP_UID)))
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
                rules=[k8s.networking.v1.IngressRuleArgs(http=k8s.networking.v1.HTTPIngressRuleValueArgs(paths=[
                    k8s.networking.v1.HTTPIngressPathArgs(
                        path="/", path_type="Prefix",
                        backend=k8s.networking.v1.IngressBackendArgs(service=k8s.networking.v1.IngressServiceBackendArgs(
                            name="app", port=k8s.networking.v1.ServiceBackendPortArgs(name="http"))))]))]),
            opts=self.child(depends_on=[self.namespace, *a.after, service]))
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

    def _ingress_annotations(self) -> dict[str, str]:
        a = self.args
        prefix = "alb.ingress.kubernetes.io"
        notes = {
            f"{prefix}/scheme": "internet-facing",
            f"{prefix}/target-type": "ip",
            f"{prefix}/healthcheck-path": a.app.health_path,
            f"{prefix}/success-codes": "200",
            f"{prefix}/load-balancer-attributes":
                "idle_timeout.timeout_seconds=60,routing.http.drop_invalid_header_fields.enabled=true",
            f"{prefix}/target-group-attributes": "deregistration_delay.timeout_seconds=30",
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
    def _workers(self, name: str, config: core.ConfigMap, secrets: core.Secret) -> apps.Deployment:
        a = self.args
        # No probes: a BullMQ worker serves no port; a crashed worker exits and restarts.
        deployment = self._deployment(
            name, "workers", grace_seconds=120,  # BullMQ finishes the running job on SIGTERM (worker.close())
            container=core.ContainerArgs(
                name="worker", image=a.app.image, command=list(a.app.worker_command),
                env_from=self._env_from(config, secrets), **hardened(a.worker_resources, APP_UID)))
        self._pdb(name, "workers")

        password = core.Secret(f"{name}-redis-auth", metadata=self._meta("", "workers", auto=True), type="Opaque",
                               string_data={"password": pulumi.Output.secret(a.redis_token)}, opts=self._after_ns)
        auth = k8s.apiextensions.CustomResource(
            f"{name}-redis-auth", api_version="keda.sh/v1alpha1", kind="TriggerAuthentication",
            metadata=self._meta("redis-auth", "workers"),
            spec={"secretTargetRef": [{"parameter": "password", "name": password.metadata.name, "key": "password"}]},
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

    # -- PgBouncer -------------------------------------------------------------
    def _pgbouncer(self, name: str) -> pulumi.Output[str]:
        a, p = self.args, self.args.pgbouncer
        labels = self._labels("pgbouncer")
        ini = pulumi.Output.all(a.db_primary_host, *a.db_replica_hosts).apply(lambda hosts: pgbouncer.render_ini(
            pgbouncer.ini_data(
                version=p.version, pool_mode=p.pool_mode, max_client_conn=p.max_client_conn,
                default_pool_size=p.default_pool_size, reserve_pool_size=p.reserve_pool_size,
                primary_host=hosts[0], replica_hosts=list(hosts[1:]), db_port=a.db_port,
                listen_addr="0.0.0.0", listen_port=PGBOUNCER_PORT, server_tls_sslmode="verify-full",
                server_tls_ca_file=f"{CA_DIR}/rds-ca.pem", auth_file=f"{AUTH_DIR}/userlist.txt",
                admin_users=[a.db_user], stats_users=[a.db_user], unix_socket_dir=RUN_DIR)))
        config = core.ConfigMap(f"{name}-pgbouncer", metadata=self._meta("", "pgbouncer", auto=True),
                                data={"pgbouncer.ini": ini}, opts=self._after_ns)

        def userlist(pw: str) -> str:
            def q(s: str) -> str:
                return '"' + s.replace('"', '""') + '"'
            return f"{q(a.db_user)} {q(pw)}\n"

        users = core.Secret(f"{name}-pgbouncer-users", metadata=self._meta("", "pgbouncer", auto=True), type="Opaque",
                            string_data={"userlist.txt": pulumi.Output.secret(self.db_password.apply(userlist))},
                            opts=self._after_ns)
        ca_url = f"https://truststore.pki.rds.amazonaws.com/{a.app.region}/{a.app.region}-bundle.pem"
        volumes = [
            core.VolumeArgs(name="config", config_map=core.ConfigMapVolumeSourceArgs(name=config.metadata.name)),
            core.VolumeArgs(name="auth", secret=core.SecretVolumeSourceArgs(secret_name=users.metadata.name,
                                                                            default_mode=0o440)),
            core.VolumeArgs(name="ca", empty_dir=core.EmptyDirVolumeSourceArgs(size_limit="1Mi")),
            core.VolumeArgs(name="run", empty_dir=core.EmptyDirVolumeSourceArgs(medium="Memory", size_limit="1Mi")),
        ]
        tcp = core.TCPSocketActionArgs(port="pgbouncer")
        apps.Deployment(
            f"{name}-pgbouncer", metadata=self._meta("pgbouncer", "pgbouncer"),
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
                        security_context=pod_security(PGBOUNCER_UID),
                        topology_spread_constraints=spread(labels),
                        init_containers=[core.ContainerArgs(
                            name="rds-ca", image=CURL_IMAGE,
                            command=["curl", "-fsS", "--retry", "5", "-o", f"{CA_DIR}/rds-ca.pem", ca_url],
                            volume_mounts=[core.VolumeMountArgs(name="ca", mount_path=CA_DIR)],
                            **hardened(a.helper_resources, PGBOUNCER_UID))],
                        containers=[core.ContainerArgs(
                            name="pgbouncer", image=PGBOUNCER_IMAGES[p.version],
                            command=["/usr/bin/pgbouncer", f"{CONFIG_DIR}/pgbouncer.ini"],
                            ports=[core.ContainerPortArgs(name="pgbouncer", container_port=PGBOUNCER_PORT)],
                            readiness_probe=core.ProbeArgs(tcp_socket=tcp, period_seconds=5),
                            liveness_probe=core.ProbeArgs(tcp_socket=tcp, period_seconds=15, failure_threshold=3),
                            volume_mounts=[
                                core.VolumeMountArgs(name="config", mount_path=CONFIG_DIR, read_only=True),
                                core.VolumeMountArgs(name="auth", mount_path=AUTH_DIR, read_only=True),
                                core.VolumeMountArgs(name="ca", mount_path=CA_DIR, read_only=True),
                                core.VolumeMountArgs(name="run", mount_path=RUN_DIR)],
                            **hardened(a.pgbouncer_resources, PGBOUNCER_UID))],
                        volumes=volumes))),
            opts=self._after_ns)
        core.Service(
            f"{name}-pgbouncer", metadata=self._meta("pgbouncer", "pgbouncer"),
            spec=core.ServiceSpecArgs(type="ClusterIP", selector=labels, ports=[core.ServicePortArgs(
                name="pgbouncer", port=PGBOUNCER_PORT, target_port="pgbouncer")]),
            opts=self._after_ns)
        self._pdb(name, "pgbouncer")
        return ini
