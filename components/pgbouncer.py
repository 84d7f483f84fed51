"""PgBouncer (phases 3-5): a small fixed-size Auto Scaling group behind an internal
NLB on 6432, with a read-write pool on the primary (`app`) and a read-only pool
round-robin over the replicas (`app_ro`). The config is rendered from
`pgbouncer/pgbouncer.ini.j2` (the same template phase 6's ConfigMap uses).

Credentials (ladder/credentials.py): before PgBouncer starts, a oneshot unit runs the roles
bootstrap as the master (only these hosts may read db-master from phase 3 on) and writes
the auth file from db-pgbouncer (PgBouncer's own users only; app logins are looked up with
auth_query). A timer re-reads db-pgbouncer and rewrites the auth file and reloads when it
changed. Passwords are fetched on the host, never in user data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from ladder import credentials, metrics, pgbouncer, userdata
from ladder.templates import render

from .app_host import host_template, ubuntu_ami
from .base import Tags, Tier

PGBOUNCER_PORT = 6432
CA_FILE = "/etc/pgbouncer/rds-ca.pem"
AUTH_FILE = "/etc/pgbouncer/userlist.txt"
TLS_KEY = "/etc/pgbouncer/client-tls.key"
TLS_CERT = "/etc/pgbouncer/client-tls.crt"
NOFILE = 65536
"""LimitNOFILE for pgbouncer.service: Ubuntu's unit leaves it at the 1024 soft limit, below
max_client_conn plus server connections (review aws-phases-1-4 finding 14)."""


@dataclass(frozen=True)
class PgBouncerArgs:
    vpc_id: pulumi.Input[str]
    subnet_ids: Sequence[pulumi.Input[str]]
    nlb_security_group_id: pulumi.Input[str]
    security_group_id: pulumi.Input[str]
    instance_profile_arn: pulumi.Input[str]
    instances: int
    instance_type: str
    version: str
    pool_mode: str
    max_client_conn: int
    default_pool_size: int
    reserve_pool_size: int
    db_secret_arns: Mapping[str, pulumi.Input[str]]  # credentials.SECRET_* -> ARN
    primary_host: pulumi.Input[str]
    replica_hosts: Sequence[pulumi.Input[str]]
    region: str
    group_name: str
    tags: Tags


def user_data(args: PgBouncerArgs, primary: str, replicas: list[str], secret_arns: Mapping[str, str]) -> str:
    ini = pgbouncer.render_ini(pgbouncer.ini_data(
        version=args.version, pool_mode=args.pool_mode, max_client_conn=args.max_client_conn,
        default_pool_size=args.default_pool_size, reserve_pool_size=args.reserve_pool_size,
        primary_host=primary, replica_hosts=replicas, server_tls_sslmode="verify-full",
        server_tls_ca_file=CA_FILE, auth_file=AUTH_FILE, client_tls_key_file=TLS_KEY,
        client_tls_cert_file=TLS_CERT))
    return render("cloudinit/pgbouncer.yaml.j2", {
        "pgbouncer_version": args.version, "pgbouncer_ini": ini, "region": args.region, "ca_file": CA_FILE,
        "auth_file": AUTH_FILE, "tls_key": TLS_KEY, "tls_cert": TLS_CERT, "nofile": NOFILE,
        "primary_host": primary, "db_name": credentials.DB_NAME,
        "secrets": {k.replace("-", "_"): v for k, v in secret_arns.items()},
        "db_script": userdata.shipped_script(), "db_script_path": credentials.HOST_SCRIPT_HOST_PATH,
        "bootstrap_sql": userdata.shipped_sql(),
        "bootstrap_sql_path": credentials.BOOTSTRAP_SQL_HOST_PATH,
        # Pool saturation and client waits for the alarms (ladder/metrics.py, components/alarms.py).
        "metrics_config": metrics.pgbouncer_publisher_config(args.region, args.group_name, args.default_pool_size,
                                                             secret_arns[credentials.SECRET_PGBOUNCER], PGBOUNCER_PORT),
        "metrics_publisher": userdata.CLOUDINIT.joinpath("scaleladder-pgbouncer-metrics").read_text()})


class PgBouncer(Tier):
    TOKEN = "scaleladder:data:PgBouncer"

    def __init__(self, name: str, args: PgBouncerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(name, opts)
        self.user_data = pulumi.Output.all(args.primary_host, pulumi.Output.all(**args.db_secret_arns),
                                           *args.replica_hosts).apply(
            lambda v: user_data(args, v[0], list(v[2:]), v[1]))
        template = host_template(name, parent=self, ami=ubuntu_ami(self), instance_type=args.instance_type,
                                 security_group_id=args.security_group_id,
                                 instance_profile_arn=args.instance_profile_arn, user_data=self.user_data,
                                 tags=args.tags)
        self.nlb = aws.lb.LoadBalancer(
            f"{name}-nlb", load_balancer_type="network", internal=True, subnets=list(args.subnet_ids),
            security_groups=[args.nlb_security_group_id], enable_cross_zone_load_balancing=True, tags=args.tags,
            opts=self.child())
        target_group = aws.lb.TargetGroup(
            name, port=PGBOUNCER_PORT, protocol="TCP", vpc_id=args.vpc_id, target_type="instance",
            deregistration_delay=30,
            health_check=aws.lb.TargetGroupHealthCheckArgs(protocol="TCP", port=str(PGBOUNCER_PORT), interval=10,
                                                           healthy_threshold=2, unhealthy_threshold=2),
            tags=args.tags, opts=self.child())
        aws.lb.Listener(f"{name}-6432", load_balancer_arn=self.nlb.arn, port=PGBOUNCER_PORT, protocol="TCP",
                        default_actions=[aws.lb.ListenerDefaultActionArgs(type="forward",
                                                                          target_group_arn=target_group.arn)],
                        tags=args.tags, opts=self.child())
        # Fixed size (self-healing, not autoscaled): pool limits are per host, so the host
        # count is part of the sizing guard against RDS max_connections.
        self.group = aws.autoscaling.Group(
            name, name=args.group_name, vpc_zone_identifiers=list(args.subnet_ids), min_size=args.instances,
            max_size=args.instances, desired_capacity=args.instances,
            launch_template=aws.autoscaling.GroupLaunchTemplateArgs(id=template.id,
                                                                    version=template.latest_version.apply(str)),
            target_group_arns=[target_group.arn], health_check_type="ELB", health_check_grace_period=180,
            instance_refresh=aws.autoscaling.GroupInstanceRefreshArgs(
                strategy="Rolling",
                preferences=aws.autoscaling.GroupInstanceRefreshPreferencesArgs(min_healthy_percentage=50,
                                                                                 instance_warmup="60")),
            tags=[aws.autoscaling.GroupTagArgs(key=k, value=v, propagate_at_launch=True) for k, v in args.tags.items()],
            opts=self.child())
        self.target_group = target_group  # its arn_suffix: the unhealthy-targets alarm (components/alarms.py)
        self.endpoint = self.nlb.dns_name
        self.port = PGBOUNCER_PORT
        self.register_outputs({"endpoint": self.endpoint, "port": PGBOUNCER_PORT})
