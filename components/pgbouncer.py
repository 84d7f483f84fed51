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
from typing import Any

import pulumi
import pulumi_aws as aws

from ladder import credentials, metrics, pgbouncer, userdata
from ladder.templates import render

from .app_host import AmiByArchitecture, ami_for, host_template
from .base import Tags, Tier
from .fleet import BOOT_SECONDS, rolling_refresh

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
    ami: pulumi.Input[str] | AmiByArchitecture = ""  # hosts_ami() per architecture (components/app_host.py)
    egress: Sequence[pulumi.Resource] = ()  # the NAT route tables the hosts' apt and snap need at boot


DRAIN_SECONDS = 30
"""NLB deregistration delay. Auto Scaling deregisters a host from its target groups and waits for
the delay before terminating it (instance refresh and scale-in alike); then systemd stops PgBouncer
with SIGINT (pgbouncer.service drop-in, cloudinit/pgbouncer.yaml.j2), which lets running
transactions finish before closing client connections."""

STOP_TIMEOUT_SECONDS = 60
"""systemd's TimeoutStopSec for PgBouncer: how long SIGINT's safe shutdown may wait for running
transactions before systemd escalates to SIGKILL."""

def host_ini_data(*, version: str, pool_mode: str, max_client_conn: int, default_pool_size: int,
                  reserve_pool_size: int, primary: str, replicas: list[str], **host_layout: Any) -> dict[str, Any]:
    """pgbouncer.ini's data on a PgBouncer host (the host's paths); also what ansible/configure.yml
    renders onto running hosts (`ladder ansible-vars`). `host_layout`: other paths/ports for a
    sandbox (the tests), never set by the program."""
    return pgbouncer.ini_data(**{
        "version": version, "pool_mode": pool_mode, "max_client_conn": max_client_conn,
        "default_pool_size": default_pool_size, "reserve_pool_size": reserve_pool_size,
        "primary_host": primary, "replica_hosts": replicas, "server_tls_sslmode": "verify-full",
        "server_tls_ca_file": CA_FILE, "auth_file": AUTH_FILE, "client_tls_key_file": TLS_KEY,
        "client_tls_cert_file": TLS_CERT, **host_layout})


def user_data(args: PgBouncerArgs, primary: str, replicas: list[str], secret_arns: Mapping[str, str]) -> str:
    ini = pgbouncer.render_ini(host_ini_data(
        version=args.version, pool_mode=args.pool_mode, max_client_conn=args.max_client_conn,
        default_pool_size=args.default_pool_size, reserve_pool_size=args.reserve_pool_size,
        primary=primary, replicas=replicas))
    return render("cloudinit/pgbouncer.yaml.j2", {
        "pgbouncer_version": args.version, "pgbouncer_ini": ini, "region": args.region, "ca_file": CA_FILE,
        "auth_file": AUTH_FILE, "tls_key": TLS_KEY, "tls_cert": TLS_CERT, "nofile": NOFILE,
        "stop_timeout_s": STOP_TIMEOUT_SECONDS,
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
        template = host_template(name, parent=self, ami=ami_for(args.ami, args.instance_type, self),
                                 instance_type=args.instance_type,
                                 security_group_id=args.security_group_id,
                                 instance_profile_arn=args.instance_profile_arn, user_data=self.user_data,
                                 tags={**args.tags, "role": "pgbouncer"})  # ansible/'s inventory group
        self.nlb = aws.lb.LoadBalancer(
            f"{name}-nlb", load_balancer_type="network", internal=True, subnets=list(args.subnet_ids),
            security_groups=[args.nlb_security_group_id], enable_cross_zone_load_balancing=True, tags=args.tags,
            opts=self.child())
        target_group = aws.lb.TargetGroup(
            name, port=PGBOUNCER_PORT, protocol="TCP", vpc_id=args.vpc_id, target_type="instance",
            deregistration_delay=DRAIN_SECONDS,
            health_check=aws.lb.TargetGroupHealthCheckArgs(protocol="TCP", port=str(PGBOUNCER_PORT), interval=10,
                                                           healthy_threshold=2, unhealthy_threshold=2),
            tags=args.tags, opts=self.child())
        aws.lb.Listener(f"{name}-6432", load_balancer_arn=self.nlb.arn, port=PGBOUNCER_PORT, protocol="TCP",
                        default_actions=[aws.lb.ListenerDefaultActionArgs(type="forward",
                                                                          target_group_arn=target_group.arn)],
                        tags=args.tags, opts=self.child())
        # Fixed size (self-healing, not autoscaled): pool limits are per host, so the host
        # count is part of the sizing guard against RDS max_connections. max_size leaves room for
        # the one extra host a refresh launches before it terminates an old one.
        self.group = aws.autoscaling.Group(
            name, name=args.group_name, vpc_zone_identifiers=list(args.subnet_ids), min_size=args.instances,
            max_size=args.instances + 1, desired_capacity=args.instances,
            launch_template=aws.autoscaling.GroupLaunchTemplateArgs(id=template.id,
                                                                    version=template.latest_version.apply(str)),
            target_group_arns=[target_group.arn], health_check_type="ELB", health_check_grace_period=BOOT_SECONDS,
            # Create AND update return only once exactly `instances` hosts are healthy NLB targets
            # (terraform-provider-aws internal/service/autoscaling/group_waiting.go: wait_for_elb_capacity
            # is "at least" on create, "exactly" on update; exact fits a fixed-size group). Whatever
            # depends on this group (the app's launch templates) waits for PgBouncer to serve.
            wait_for_elb_capacity=args.instances,
            # The roles bootstrap may wait up to 15 min for RDS (scaleladder-db bootstrap --wait 900).
            wait_for_capacity_timeout="30m",
            # One host at a time, launched before the old one goes (peak server connections: one
            # host's pool above the sizing guard's figure). No auto_rollback: the previous template
            # may name replicas or a TLS setup this `up` removed.
            instance_refresh=rolling_refresh(auto_rollback=False,
                                             max_healthy=100 + -(-100 // args.instances)),
            tags=[aws.autoscaling.GroupTagArgs(key=k, value=v, propagate_at_launch=True) for k, v in args.tags.items()],
            opts=self.child(depends_on=list(args.egress)))
        self.target_group = target_group  # its arn_suffix: the unhealthy-targets alarm (components/alarms.py)
        self.endpoint = self.nlb.dns_name
        self.port = PGBOUNCER_PORT
        self.register_outputs({"endpoint": self.endpoint, "port": PGBOUNCER_PORT})
