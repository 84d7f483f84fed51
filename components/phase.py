"""Builds the tiers a phase needs, in dependency order, from the validated config.

This is the only place that knows which phase has which tier; components get
typed args and hand typed outputs to the next. Returns the stack outputs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Literal

import pulumi

from ladder import aws_facts, climb, climb_eks, credentials, edge
from ladder import pgbouncer as pgbouncer_names
from ladder.config import ConfigError, StackConfig
from ladder.metrics import container_log_group
from ladder.names import name_prefix
from ladder.prices import catalog
from ladder.topology import FirewallPlan, direct_db_rules, firewall_plan
from ladder.userdata import trusted_proxies

from .alarms import (
    Alarms,
    AlarmsArgs,
    AlarmSpec,
    alb_alarms,
    api_answers_alarm,
    app_metric_alarms,
    database_alarms,
    host_alarms,
    nginx_lb_alarms,
    pgbouncer_alarms,
    queue_alarm,
    redis_alarms,
    redis_node_ids,
    status_alarm,
)
from .app_host import (
    AmiByArchitecture,
    AppEndpoints,
    AppSpec,
    SingleHost,
    SingleHostArgs,
    ami_for,
    hosts_ami,
    user_data,
    vm_architecture_problems,
)
from .cache import Cache, CacheArgs
from .cdn import ORIGIN_VERIFY_HEADER, Cdn, CdnArgs, OriginVerify, OriginVerifyArgs
from .database import DB_NAME, DB_PORT, Database, DatabaseArgs
from .deployed import (
    DB_IDENTIFIER_OUTPUT,
    DB_LOG_GROUPS_OUTPUT,
    REDIS_GROUP_ID_OUTPUT,
    deployed_database,
    deployed_redis,
    previous_outputs,
)
from .eks import EksCluster, EksClusterArgs
from .firewall import Firewall, FirewallArgs
from .fleet import Fleet, FleetArgs, GroupSize
from .identity import HostRole, HostRoleArgs, db_secrets_for
from .network import Network, NetworkArgs
from .ops import Ops, OpsArgs, image_from_parameter
from .pgbouncer import PgBouncer, PgBouncerArgs
from .signals import (
    container_logs,
    eks_container_logs,
    metrics_publisher,
    pod_metrics_identity,
    publisher_parameter_name,
    rds_identifier,
    rds_log_groups,
)
from .waf import ALB_ASSOCIATION, EdgeFirewall, EdgeFirewallArgs, cloudfront_provider
from .workloads import PgBouncerSpec, Scale, Workloads, WorkloadsArgs


def build(cfg: StackConfig) -> dict[str, Any]:
    stack = pulumi.get_stack()
    tags = {"project": pulumi.get_project(), "stack": stack, "phase": str(cfg.phase)}
    prefix = name_prefix(pulumi.get_project(), stack)  # safe for every AWS name it starts
    outputs: dict[str, Any] = {"phase": cfg.phase}

    previous = previous_outputs()
    # The 1 -> 5 climb step this `up` takes, judged against what the last one left (ladder.climb): a
    # refused step raises ConfigError naming the key. Every EC2 host's AMI waits on it, so no host or
    # launch template changes before the check passed (and a program that fails deletes nothing).
    step = pulumi.Output.all(**{k: previous.get_output(k) for k in climb.PREVIOUS_KEYS}).apply(
        lambda prev: climb.step(cfg, prev))
    # The phase-1 VM keeps its CPU architecture (EC2 cannot change it in place): refused like a step.
    vm_arch = pulumi.Output.all(previous.get_output(climb.OUT_SINGLE_HOST_TYPE), previous.get_output(climb.OUT_PHASE)
                                ).apply(lambda v: _check_vm_architecture(cfg, v[0], v[1]))
    ami = host_amis(cfg, previous, pulumi.Output.all(step, vm_arch))

    net = Network("network", NetworkArgs(cfg.network.cidr, cfg.network.az_count, cfg.network.nat_gateways, tags))
    # Phase 6: pods reach RDS and Redis from the EKS cluster security group (an external tier).
    # The 5 <-> 6 steps and the node group's type (ladder/climb_eks.py), from the stack's last outputs.
    eks_previous = pulumi.Output.all(*(previous.get_output(k) for k in climb_eks.PREVIOUS_KEYS)).apply(
        lambda v: dict(zip(climb_eks.PREVIOUS_KEYS, v, strict=True)))
    eks_step = eks_previous.apply(lambda prev: climb_eks.check(cfg, prev))
    # A deployed group keeps its type unless the stack sets one; the group waits for the check, so a
    # refused type change touches no node group.
    node_type = pulumi.Output.all(eks_step, eks_previous).apply(lambda v: climb_eks.node_instance_type(cfg, v[1]))
    eks = build_eks(cfg, net, tags, prefix, node_type) if cfg.phase == 6 else None
    # 5 <-> 6 (ladder/climb_eks.py): with climb.keepEc2Tier the phase-5 EC2 tier stays, built exactly as
    # phase 5 builds it (its config and tags), so that `up` changes nothing on the path that serves.
    keep_ec2 = cfg.phase == 6 and cfg.climb.keep_ec2_tier
    cfg5, tags5 = (cfg.ec2_tier, {**tags, "phase": "5"}) if keep_ec2 else (cfg, tags)
    plan = with_ec2_tier(firewall_plan(cfg), firewall_plan(cfg5)) if keep_ec2 else firewall_plan(cfg)
    fw = Firewall("firewall", FirewallArgs(
        net.vpc_id, plan, tags, external={"eks": eks.security_group_id} if eks else {},
        later_rules=step.apply(lambda s: direct_db_rules(cfg) if s.keep_direct_db_rules else [])))
    sg = fw.ids

    db = Database("db", DatabaseArgs(
        subnet_ids=net.private_subnet_ids, security_group_id=sg["db"], instance_class=cfg.database.instance_class,
        engine_version=cfg.database.engine_version, storage_gb=cfg.database.storage_gb,
        max_storage_gb=cfg.database.max_storage_gb, multi_az=cfg.database.multi_az,
        replicas=cfg.database.replicas if cfg.phase >= 3 else 0,
        backup_retention_days=cfg.database.backup_retention_days, final_snapshot_name=f"{prefix}-db-final", tags=tags,
        identifier=rds_identifier(previous, prefix), log_retention_days=cfg.logs.retention_days,
        manage_log_groups=rds_log_groups(previous, cfg.logs.rds_log_groups_imported, stack, pulumi.get_project()),
        deployed=deployed_database(previous)))

    redis = Cache("redis", CacheArgs(
        subnet_ids=net.private_subnet_ids, security_group_id=sg["redis"], node_type=cfg.redis.node_type,
        engine_version=cfg.redis.engine_version, cluster_mode=cfg.redis.cluster_mode, shards=cfg.redis.shards,
        replicas_per_shard=cfg.redis.replicas_per_shard, engine=cfg.redis.engine,
        accept_interruption=cfg.climb.accept_cache_interruption, deployed=deployed_redis(previous), tags=tags))

    app = AppSpec(region=cfg.region, image=cfg.app.image, port=cfg.app.port, health_path=cfg.app.health_path,
                  env={**cfg.app.env, "SCALELADDER_STACK": stack}, worker_command=cfg.app.worker_command,
                  queues=cfg.app.queues, queue_prefix=cfg.app.queue_prefix,
                  registry_credentials_secret_arn=cfg.app.registry_credentials_secret_arn,
                  log_group=container_log_group(prefix), metrics_parameter=publisher_parameter_name(prefix),
                  trusted_proxies=trusted_proxies(cfg.phase, cfg.network.cidr))
    # Phase 5+: the app learns the CDN's URL, and the distribution waits for the app (its hosts'
    # healthy targets, phase 6's ready Deployment): the URL must not wait for the distribution
    # (a cycle: the plan, and `pulumi up`, would hang), so it comes from what is known before.
    static_url = stable_static_url(cfg, previous) if cfg.phase >= 5 else None
    # Cluster protocol on the configuration endpoint from `compatible` on: AWS's order for the move
    # (ElastiCache "Modifying cluster mode": in compatible mode "applications must be reconfigured
    # to start using ... cluster protocol and configuration endpoint", then set enabled).
    redis_ends = dict(redis_secret_arn=redis.secret.arn, redis_host=redis.endpoint, redis_port=redis.port,
                      redis_cluster=cfg.redis.cluster_mode != "disabled", static_url=static_url)
    pgbouncer_specs: list[AlarmSpec] = []  # the PgBouncer tier's alarms, where there is one
    pgb = build_pgbouncer(cfg5, net, sg, db, tags5, prefix, ami) if cfg.uses_pgbouncer and cfg5.phase <= 5 else None
    if pgb is not None:
        outputs["pgbouncerEndpoint"] = pgb.endpoint
        outputs[climb.OUT_PGBOUNCER_SERVED] = pgb.group.name  # known once its NLB targets were healthy
        pgbouncer_specs = pgbouncer_alarms(pgb.group.name, pgb.nlb.arn_suffix, pgb.target_group.arn_suffix,
                                           cfg.pgbouncer.default_pool_size)
    if cfg5.phase <= 5:
        outputs[climb.OUT_DB_ROUTE] = cfg5.app_database_route
        outputs[climb.OUT_DIRECT_DB_RULES] = step.apply(lambda s: s.keep_direct_db_rules)
        outputs.update({climb.AMI_OUTPUTS[arch]: arch_ami for arch, arch_ami in ami.items()})
    if pgb is not None and cfg5.app_database_route == "pgbouncer":
        ends = AppEndpoints(db_secret_arn=db.secret_arns[credentials.SECRET_APP], db_host=pgb.endpoint,
                            db_port=pgb.port, db_name=pgbouncer_names.RW_DATABASE, db_read_host=pgb.endpoint,
                            db_read_name=pgbouncer_names.RO_DATABASE, db_via_pgbouncer=True,
                            db_read_secret_arn=db.secret_arns[credentials.SECRET_APP_RO], **redis_ends)
    else:
        # No PgBouncer tier: the app hosts run the roles bootstrap (as the master) before the containers.
        ends = AppEndpoints(db_secret_arn=db.secret_arns[credentials.SECRET_APP], db_host=db.address,
                            db_port=DB_PORT, db_name=DB_NAME, db_read_host=db.address, db_read_name=DB_NAME,
                            db_via_pgbouncer=False, db_read_secret_arn=db.secret_arns[credentials.SECRET_APP_RO],
                            db_bootstrap_secret_arns=db.secret_arns, **redis_ends)
    app_db_secrets = db_secrets_for("app", db.secret_arns, bootstraps=ends.db_bootstrap_secret_arns is not None)
    registry_secret = [cfg.app.registry_credentials_secret_arn] if cfg.app.registry_credentials_secret_arn else []
    # Day-2 Ansible (ansible/, components/ops.py): phases 1-5 run EC2 hosts it can reach over SSM.
    # Built in phase 6 too (it only has a bucket and a policy there): stepping 5->6 deletes no bucket.
    ops = Ops("ops", OpsArgs(prefix, pulumi.get_project(), stack, cfg.app.image,
                             image_parameter=image_from_parameter(cfg5.phase, cfg5.load_balancer,
                                                                  cfg.climb.keep_single_host),
                             tags=tags5))  # every phase: a bucket is stateful to `ladder diff`, so 5->6 keeps it
    app_logs = container_logs(prefix, cfg.logs.retention_days, tags5) if cfg5.phase <= 5 else None
    publisher = metrics_publisher(prefix, tags5) if cfg5.phase <= 5 else None
    role = HostRole("app-host", HostRoleArgs([*app_db_secrets, redis.secret.arn, *registry_secret], tags5,
                                             image=cfg.app.image,
                                             parameter_arns=[*([ops.image_parameter_arn] if ops and ops.image_parameter_arn
                                                               else []), *([publisher.arn] if publisher else [])],
                                             log_group_arns=[app_logs.arn] if app_logs else ())) if cfg5.phase <= 5 else None
    if ops is not None:
        outputs.update({"ssmTransferBucket": ops.bucket_name, "ansibleOperatorPolicyArn": ops.operator_policy.arn})
    image_parameter = ops.image_parameter_name if ops else None

    specs: list[AlarmSpec] = [queue_alarm(stack), *pgbouncer_specs]
    # Phase 5+: the secret header CloudFront sends and the load balancer requires (components/cdn.py).
    # With cdn.apiPath loadBalancer CloudFront never reaches the load balancer (it serves /static from S3):
    # no header to send or check (ladder.edge.origin_verified decides where it is checked).
    origin_verify = OriginVerify("origin-verify", OriginVerifyArgs(prefix, tags)) \
        if edge.api_via_cloudfront(cfg) else None
    verify = origin_verify.value if origin_verify is not None else None
    # Phase 6 with the API straight to the Ingress's ALB: its REGIONAL web ACL exists before the
    # Ingress names it (alb.ingress.kubernetes.io/wafv2-acl-arn); its alarm is made once the stack's
    # alarm topic (confirmed since phase 5) exists, below: no new topic awaiting confirmation.
    ingress_acl = build_edge_firewall(cfg, prefix, tags, scope="REGIONAL", alarm_later=True) \
        if cfg.phase == 6 and edge.alb_faces_clients(cfg) else None
    scheme = "https://" if cfg.app.certificate_arn else "http://"  # TLS starts where a certificate is configured
    if eks is not None:
        work = build_workloads(cfg, app, eks, db, redis, static_url,
                               origin_verify=verify if edge.origin_verified(cfg) else None,
                               web_acl_arn=ingress_acl.acl.arn if ingress_acl is not None else None)
        pod_metrics_identity(eks.cluster_name, work.args.namespace, tags)  # the pods publish the metrics contract
        eks_container_logs(eks.cluster_name, cfg.logs.retention_days, tags, after=list(eks.releases.values()))
        origin = work.ingress_hostname
        specs += app_metric_alarms(stack) + [AlarmSpec("eks-nodes-cpu", "cpuPercent", "AWS/EC2", "CPUUtilization",
                                                       {"AutoScalingGroupName": eks.node_group_asg})]
        outputs[climb_eks.OUT_NODE_TYPE] = node_type  # what the next `up` keeps (ladder/climb_eks.py)
        outputs.update({"eksClusterName": eks.cluster_name, "kubeconfig": eks.kubeconfig,
                        "ingressHostname": work.ingress_hostname})
        outputs["url"] = pulumi.Output.concat(scheme, cfg.cdn.origin_domain or origin)
        if keep_ec2:  # the phase-5 tier, unchanged, until an `up` has brought the EKS path up serving
            fleet = build_fleet(cfg5, net, sg, role, app, ends, prefix, stack, tags5, image_parameter, ami,
                                after=[pgb.group] if pgb is not None else [],
                                origin_verify=verify if edge.origin_verified(cfg5) else None)
            if ingress_acl is not None and edge.alb_faces_clients(cfg5):  # its clients, until DNS moved to EKS
                # phase 5's association name (waf.ALB_ASSOCIATION): the same URN both ways of the climb
                ingress_acl.associate(ALB_ASSOCIATION, fleet.alb.arn)  # type: ignore[union-attr]  # phase 5 runs an ALB
            specs += fleet_alarms(fleet, stack)
            outputs.update({climb_eks.OUT_EC2_KEPT: True, climb_eks.OUT_EC2_ALB: fleet.endpoint})
            outputs.update(template_versions(fleet))
    else:
        if cfg.phase == 1 or cfg.climb.keep_single_host:
            # Phase 1's VM; in phase 2 with climb.keepSingleHost the same resource (same URN, the same
            # user data: phases 1-2 share the direct database route) keeps serving beside the fleet, on
            # the type it was deployed with (EC2 changes a type only by stopping the instance): the
            # recorded singleHostType, else what phase 1 resolves from the stack's keys.
            vm_type: pulumi.Input[str] = cfg.app_tier.instance_type if cfg.phase == 1 else \
                previous.get_output(climb.OUT_SINGLE_HOST_TYPE).apply(lambda t: str(t or cfg.phase1_instance_type))
            host = SingleHost("app", SingleHostArgs(
                # The AMI of the architecture the VM really runs (its recorded type; review cost-aws 12).
                ami=ami_for(ami, cfg.app_tier.instance_type) if cfg.phase == 1 else
                pulumi.Output.from_input(vm_type).apply(lambda t: ami_for(ami, t)),
                subnet_id=net.public_subnet_ids[0], security_group_id=sg["app"], instance_type=vm_type,
                instance_profile=role.profile.name,  # type: ignore[union-attr]  # phases 1-5 always build the role
                # The VM faces clients in both phases: phase 1's trusted proxies and rate limit.
                user_data=user_data(dataclasses.replace(app, trusted_proxies=trusted_proxies(1, cfg.network.cidr)),
                                    ends, roles=("api", "worker"), rate_limit=edge.rate_limit(cfg).template_data(),
                                    image_parameter=image_parameter),
                tags={**tags, "role": "app"}))
            outputs[climb.OUT_SINGLE_HOST] = host.public_ip
            outputs[climb.OUT_SINGLE_HOST_TYPE] = vm_type
        if cfg.phase == 1:
            specs += host_alarms("InstanceId", host.instance_id, "app") + app_metric_alarms(stack)
            # The app's metrics go quiet when it dies: the VM's status checks and the API's answer say so.
            specs += [status_alarm(host.instance_id, "app", "the app VM"), api_answers_alarm(stack)]
            outputs["url"] = host.public_ip.apply(lambda ip: f"http://{ip}")
        else:
            fleet = build_fleet(cfg, net, sg, role, app, ends, prefix, stack, tags,
                                image_parameter if cfg.load_balancer == "nginx" else None, ami,
                                after=[pgb.group] if pgb is not None and ends.db_via_pgbouncer else [],
                                origin_verify=verify if edge.origin_verified(cfg) else None,
                                # plain HTTP forwarded only for the 4 <-> 5 climb's clients; the cdn.apiPath switch's are on HTTPS
                                serve_direct_clients=cfg.climb.keep_alb_open and not cfg.api_direct,
                                security_headers=cfg.api_direct)
            specs += fleet_alarms(fleet, stack)
            outputs.update(template_versions(fleet))
            outputs["url"] = pulumi.Output.concat(scheme, fleet.endpoint)
            outputs[climb.OUT_FLEET_SERVED] = fleet.served
            if cfg.phase == 5:
                outputs[climb.OUT_ALB_OPEN] = edge.alb_faces_clients(cfg)
            origin = fleet.endpoint

    if cfg.phase >= 5:
        cdn_acl = build_edge_firewall(cfg, prefix, tags, scope="CLOUDFRONT")
        # The origin moves only in an `up` the 5 <-> 6 rules allow, and (phase 6) once the app
        # Deployment is ready behind the Ingress's load balancer.
        cdn = build_cdn(cfg, origin if edge.api_via_cloudfront(cfg) else None, prefix, tags,
                        web_acl_arn=cdn_acl.acl.arn, allowed=eks_step, origin_verify=verify,
                        origin_ready=[work.app] if eks is not None else fleet.serving)
        outputs["originUrl"] = outputs["url"]
        # The API's address: the distribution's, or (cdn.apiPath loadBalancer) the load balancer's name.
        api_url = cdn.url if edge.api_via_cloudfront(cfg) else f"https://{cfg.cdn.origin_domain}"
        outputs[climb.OUT_API_PATH] = edge.api_path_state(cfg)
        outputs.update({"url": api_url, "cdnDomain": cdn.domain_name, "cdnDistributionArn": cdn.distribution.arn,
                        "staticBucket": cdn.bucket_name, "staticUrl": cdn.static_url})
        if eks is not None:  # resolved only after the distribution update, which waited for the app
            outputs[climb_eks.OUT_EKS_SERVED] = pulumi.Output.all(cdn.distribution.id, work.ingress_hostname).apply(
                lambda v: v[1])

    specs += database_alarms(db.identifier, db.max_connections, db.replica_identifiers)
    r = cfg.redis
    nodes = (r.shards if r.cluster_mode == "enabled" else 1) * (1 + r.replicas_per_shard)
    specs += redis_alarms(redis_node_ids(redis.group.member_clusters, nodes))
    alarms = Alarms("alarms", AlarmsArgs(specs, cfg.alarms.email, tags, dashboard_name=prefix, region=cfg.region))
    if edge.alb_faces_clients(cfg) and cfg.phase <= 5:  # phase 6: the Ingress's ALB (ingress_acl above)
        # While CloudFront also carries the API here (ladder.edge.api_path_state "both"), its requests
        # (X-Origin-Verify) arrive from CloudFront's addresses: the rate rule counts only the others.
        build_edge_firewall(cfg, prefix, tags, scope="REGIONAL", protect=fleet.alb.arn,  # type: ignore[union-attr]  # phases 2-5 with an ALB
                            topic=alarms.topic.arn, trusted_header=(ORIGIN_VERIFY_HEADER, verify)
                            if verify is not None and edge.api_via_cloudfront(cfg) else None)
    if ingress_acl is not None:
        ingress_acl.alarm_to(alarms.topic.arn)

    outputs.update({
        "vpcId": net.vpc_id,
        "dbAddress": db.address,
        "dbReplicaAddresses": db.replica_addresses,  # ansible/configure.yml renders pgbouncer.ini from these
        "dbSecretArns": db.secret_arns,
        "dbEngineVersion": db.engine_version,
        "dbStorageGb": db.storage_gb,
        "redisEndpoint": redis.endpoint,
        "redisClusterMode": redis.cluster_mode,
        "redisEngineVersion": redis.engine_version,
        "redisEngine": redis.engine,  # components/deployed.py: the engine a later up keeps unless redis.engine says
        "redisSecretArn": redis.secret.arn,
        # what components/deployed.py reads from AWS on the next `up`
        REDIS_GROUP_ID_OUTPUT: redis.group.id,
        DB_IDENTIFIER_OUTPUT: db.identifier,
        DB_LOG_GROUPS_OUTPUT: db.log_group_names,
        "alarmTopicArn": alarms.topic.arn,
    })
    return outputs


def host_amis(cfg: StackConfig, previous: pulumi.StackReference, gate: pulumi.Output[Any]) -> dict[str, pulumi.Output[str]]:
    """One AMI per CPU architecture the stack's Ubuntu hosts run (StackConfig.ec2_hosts), each kept
    from the output the last `up` recorded for that architecture (climb.AMI_OUTPUTS), so an AMI kept
    for x86_64 hosts never reaches an arm64 host. `hosts.ami` pins the one architecture the config
    allows it with. Every AMI waits on `gate` (the climb checks): no host changes before they pass."""
    archs = sorted({aws_facts.ec2_architecture(t) for t in cfg.ec2_hosts.values()})
    explicit = cfg.hosts.ami if len(archs) == 1 else None  # the config refuses hosts.ami over two
    return {arch: pulumi.Output.all(gate, hosts_ami(explicit, previous.get_output(climb.AMI_OUTPUTS[arch]), arch)
                                    ).apply(lambda v: str(v[1]))
            for arch in archs}


def _check_vm_architecture(cfg: StackConfig, recorded_type: Any, recorded_phase: Any) -> bool:
    found = vm_architecture_problems(cfg.phase, cfg.app_tier.instance_type, str(recorded_type or "") or None,
                                     int(recorded_phase) if recorded_phase not in (None, "") else None,
                                     catalog().instance_types(cfg.region, "ec2_instance_hour"))
    if found:
        raise ConfigError(found)
    return True


def build_pgbouncer(cfg: StackConfig, net: Network, sg: dict, db: Database, tags: dict, prefix: str,
                    ami: AmiByArchitecture) -> PgBouncer:
    role = HostRole("pgbouncer-host", HostRoleArgs(db_secrets_for("pgbouncer", db.secret_arns, bootstraps=True), tags))
    p = cfg.pgbouncer
    return PgBouncer("pgbouncer", PgBouncerArgs(
        vpc_id=net.vpc_id, subnet_ids=net.private_subnet_ids, nlb_security_group_id=sg["pgbouncer-nlb"],
        security_group_id=sg["pgbouncer"], instance_profile_arn=role.profile.arn, instances=p.instances,
        instance_type=p.instance_type, version=p.version, pool_mode=p.pool_mode, max_client_conn=p.max_client_conn,
        default_pool_size=p.default_pool_size, reserve_pool_size=p.reserve_pool_size,
        db_secret_arns=db.secret_arns, primary_host=db.address, replica_hosts=db.replica_addresses, region=cfg.region,
        group_name=f"{prefix}-pgbouncer", tags=tags, ami=ami, egress=net.private_egress))


def build_eks(cfg: StackConfig, net: Network, tags: dict, prefix: str,
              node_type: pulumi.Input[str] | None = None) -> EksCluster:
    e = cfg.eks
    return EksCluster("eks", EksClusterArgs(
        name_prefix=prefix, version=e.version, vpc_id=net.vpc_id, subnet_ids=net.private_subnet_ids,
        node_instance_type=e.node_instance_type if node_type is None else node_type,
        nodes_min=e.nodes_min, nodes_max=e.nodes_max, region=cfg.region,
        public_access_cidrs=e.public_access_cidrs if e.endpoint_access == "public" else None,
        admin_principal_arns=e.admin_principal_arns, log_retention_days=cfg.logs.retention_days, tags=tags))


def build_workloads(cfg: StackConfig, app: AppSpec, eks: EksCluster, db: Database, redis: Cache,
                    static_url: pulumi.Input[str] | None, origin_verify: pulumi.Input[str] | None = None,
                    web_acl_arn: pulumi.Input[str] | None = None) -> Workloads:
    a, h, w, p = cfg.app, cfg.eks.hpa, cfg.workers, cfg.pgbouncer
    return Workloads("apps", WorkloadsArgs(
        namespace="scaleladder", app=app, app_scale=Scale(h.min_replicas, h.max_replicas), cpu_percent=h.cpu_percent,
        memory_percent=h.memory_percent, worker_scale=Scale(w.min, w.max), queue_depth_target=w.queue_depth_target,
        certificate_arn=a.certificate_arn, db_secret_arns=db.secret_arns, db_primary_host=db.address,
        db_replica_hosts=db.replica_addresses, db_port=DB_PORT, db_engine_version=cfg.database.engine_version,
        redis_host=redis.endpoint, redis_port=redis.port, redis_cluster=cfg.redis.cluster_mode == "enabled",
        redis_secret_arn=redis.secret.arn, external_secrets_role=eks.external_secrets_role.name,
        pgbouncer=PgBouncerSpec(replicas=p.instances, version=p.version, pool_mode=p.pool_mode,
                                max_client_conn=p.max_client_conn, default_pool_size=p.default_pool_size,
                                reserve_pool_size=p.reserve_pool_size),
        static_url=static_url, origin_verify=origin_verify, web_acl_arn=web_acl_arn, vpc_cidr=cfg.network.cidr,
        after=list(eks.releases.values())),
        opts=pulumi.ResourceOptions(providers=[eks.provider]))


def stable_static_url(cfg: StackConfig, previous: pulumi.StackReference) -> pulumi.Input[str]:
    """STATIC_URL from phase 5 on, known before the distribution is touched (the distribution waits
    for the app, so the app must not wait for it): `https://<first alias>/static` (what the CDN
    itself reports), else the `staticUrl` the last `up` recorded, else - the first `up` with a
    CDN - `/static`, which CloudFront serves on the page's own host (the next `up` makes it
    absolute: one rolling update of the app hosts or pods)."""
    if cfg.cdn.aliases:
        return f"https://{cfg.cdn.aliases[0]}/static"
    return previous.get_output("staticUrl").apply(lambda url: url or "/static")


def with_ec2_tier(eks_plan: FirewallPlan, ec2_plan: FirewallPlan) -> FirewallPlan:
    """Phase 6's groups and rules plus the phase-5 tier's (climb.keepEc2Tier), each once."""
    def union(a: tuple, b: tuple) -> tuple:
        return a + tuple(x for x in b if x not in a)
    return FirewallPlan(union(ec2_plan.tiers, eks_plan.tiers), union(ec2_plan.rules, eks_plan.rules),
                        union(ec2_plan.outbound, eks_plan.outbound), external=eks_plan.external)


def build_cdn(cfg: StackConfig, origin: pulumi.Input[str] | None, prefix: str, tags: dict,
              web_acl_arn: pulumi.Input[str] | None = None, origin_ready: Sequence[pulumi.Resource] = (),
              allowed: pulumi.Input[bool] = True, origin_verify: pulumi.Input[str] | None = None) -> Cdn:
    """The same `cdn` component (same URNs) in phases 5 and 6; only its app origin moves, and only
    once `allowed` resolved (ladder.climb_eks.check raises instead, naming the key). `origin` None
    (cdn.apiPath loadBalancer): no app origin, the distribution serves the bucket only."""
    c = cfg.cdn
    https = cfg.app.certificate_arn is not None
    domain = c.origin_domain if https and c.origin_domain else origin
    return Cdn("cdn", CdnArgs(
        origin_domain=None if origin is None else pulumi.Output.all(domain, allowed).apply(lambda v: v[0]),
        origin_https=https, gate=allowed,
        price_class=c.price_class, name_prefix=prefix, tags=tags, aliases=c.aliases, certificate_arn=c.certificate_arn,
        web_acl_arn=web_acl_arn, origin_ready=origin_ready, origin_verify=origin_verify))


def build_edge_firewall(cfg: StackConfig, prefix: str, tags: dict, *, scope: Literal["REGIONAL", "CLOUDFRONT"],
                        protect: pulumi.Input[str] | None = None, topic: pulumi.Input[str] | None = None,
                        trusted_header: tuple[str, pulumi.Input[str]] | None = None,
                        alarm_later: bool = False) -> EdgeFirewall:
    """The web ACL where clients enter (ladder.edge): on the ALB, or on CloudFront from us-east-1."""
    e = cfg.edge
    opts = pulumi.ResourceOptions(providers=[cloudfront_provider()]) if scope == "CLOUDFRONT" else None
    kind = "cdn" if scope == "CLOUDFRONT" else "alb"  # both exist in phase 5's first up with climb.keepAlbOpen
    return EdgeFirewall(f"edge-{kind}", EdgeFirewallArgs(
        scope=scope, name=f"{prefix}-edge-{kind}", rate_limit_per_minute=e.rate_limit_per_minute,
        managed_rule_groups=e.managed_rule_groups, blocked_alarm_percent=e.blocked_alarm_percent, tags=tags,
        alarm_topic_arn=topic, alarm_email=cfg.alarms.email, region=cfg.region, associate_arn=protect,
        trusted_header=trusted_header, alarm_later=alarm_later), opts=opts)


def template_versions(fleet: Fleet) -> dict[str, Any]:
    """The launch template versions this `up` wrote, which its instance refresh rolls the hosts onto
    (not awaited): the next `up` that removes an old path wants them confirmed (climb.refreshedTemplates)."""
    out: dict[str, Any] = {climb.OUT_WORKER_TEMPLATE: fleet.worker_template.latest_version}
    if fleet.app_template is not None:
        out[climb.OUT_APP_TEMPLATE] = fleet.app_template.latest_version
    return out


def build_fleet(cfg: StackConfig, net: Network, sg: dict, role: HostRole | None, app: AppSpec, ends: AppEndpoints,
                prefix: str, stack: str, tags: dict, image_parameter: str | None, ami: AmiByArchitecture,
                after: list[pulumi.Resource], origin_verify: pulumi.Input[str] | None = None,
                serve_direct_clients: bool = False, security_headers: bool = False) -> Fleet:
    assert role is not None
    # The internet-facing nginx host gets its own role: Session Manager and its metrics only, no
    # secret (the app role reads the database and Redis secrets).
    lb_role = HostRole("lb-host", HostRoleArgs([], tags)) if cfg.load_balancer == "nginx" else None
    t, w = cfg.app_tier, cfg.workers
    return Fleet("fleet", FleetArgs(
        vpc_id=net.vpc_id, public_subnet_ids=net.public_subnet_ids, private_subnet_ids=net.private_subnet_ids,
        lb_security_group_id=sg["lb"], app_security_group_id=sg["app"], workers_security_group_id=sg["workers"],
        instance_profile_arn=role.profile.arn, instance_profile_name=role.profile.name,
        lb_instance_profile_name=lb_role.profile.name if lb_role is not None else None,
        # Hosts publish MemoryUtilization by group only when they are in one: nginx mode runs fixed
        # instances whose memory alarms use InstanceId, so those hosts must publish by instance id.
        app_user_data=user_data(app, ends, roles=("api",),
                                asg_name=f"{prefix}-app" if cfg.load_balancer == "alb" else "",
                                image_parameter=image_parameter),
        worker_user_data=user_data(app, ends, roles=("worker",), asg_name=f"{prefix}-workers"),
        app=GroupSize(t.instance_type, t.min, t.desired, t.max), workers=GroupSize(w.instance_type, w.min, w.min, w.max),
        cpu_target=t.cpu_target, queue_depth_target=w.queue_depth_target, load_balancer=cfg.load_balancer,
        health_path=cfg.app.health_path, certificate_arn=cfg.app.certificate_arn, name_prefix=prefix, stack=stack,
        origin_verify=origin_verify, serve_direct_clients=serve_direct_clients, security_headers=security_headers,
        lb_rate_limit=edge.nginx_rate_limit(cfg, "lb"), tags=tags, ami=ami, egress=net.private_egress,
        templates_after=after))


def fleet_alarms(fleet: Fleet, stack: str) -> list[AlarmSpec]:
    """The ALB measures latency and errors; behind nginx the app's own metrics do."""
    if fleet.alb is not None:
        specs = alb_alarms(fleet.alb.arn_suffix, fleet.target_group.arn_suffix)  # type: ignore[union-attr]  # set with the alb
        specs += host_alarms("AutoScalingGroupName", fleet.app_group_name, "app")
    else:
        specs = app_metric_alarms(stack) + nginx_lb_alarms(fleet.nginx_lb.id)
        for i, inst in enumerate(fleet.app_instances):
            specs += host_alarms("InstanceId", inst.id, f"app-{i}")
            specs.append(status_alarm(inst.id, f"app-{i}", f"app host {i}"))
    # Every API host probes its own health path (ApiAnswers): a dead API alarms in both modes.
    return specs + [api_answers_alarm(stack)] + host_alarms("AutoScalingGroupName", fleet.worker_group_name, "workers")
