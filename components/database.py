"""Database: the RDS PostgreSQL primary (the one thing a climb must never lose)
and, from phase 3, its read replicas; plus the credentials the tiers use.

The primary keeps the logical name `db` and the same replace-forcing inputs in
every phase; it is protected, retained on delete, deletion-protected and leaves
a final snapshot.

Credentials (DESIGN.md "Credentials", ladder/credentials.py): the master password is
ours, not RDS-managed, because RDS refuses read replicas of a source whose master
password it manages ("Limitations for Secrets Manager integration with Amazon RDS") and
rotates that secret every 7 days where no tier would follow. The program generates
every password (RandomPassword results are Pulumi secrets) and stores each credential
in its own Secrets Manager secret; only ARNs leave this component. The bootstrap
(`scaleladder-db bootstrap`) creates the app's roles from those secrets.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from ladder import credentials, inplace
from ladder.aws_facts import rds_max_connections
from ladder.config import ConfigError

from .base import Tags, Tier, tagged

DB_NAME = credentials.DB_NAME
DB_PORT = 5432
# The logs the primary exports to CloudWatch Logs, each into /aws/rds/instance/<id>/<log>.
LOG_EXPORTS = ("postgresql", "upgrade")

# RDS API Reference, CreateDBInstance `MasterUserPassword`: "Can include any printable
# ASCII character except "/", """, or "@"" (and no spaces: RDS console); RDS for
# PostgreSQL "Must contain from 8 to 128 characters". We use letters, digits and URL
# unreserved punctuation only, so a password is also safe unquoted in a URL, a shell
# word and PgBouncer's auth file (its quoting is '"').
PASSWORD_LENGTH = 40
PASSWORD_SPECIAL = "-_.~"

# Parameters we set per family. PostgreSQL 14 made scram-sha-256 the default
# password_encryption (PostgreSQL 14 release notes; AWS Database Blog "SCRAM Authentication
# in RDS for PostgreSQL 13", 2023 update: "PostgreSQL 14 changes the default value for
# password_encryption to scram-sha-256"), so no supported family (14+) needs it. rds.force_ssl
# defaults to 1 from postgres15 (RDS User Guide, "Updating applications to connect to
# PostgreSQL DB instances using new SSL/TLS certificates": "By default, the rds.force_ssl
# parameter is set to 1 (on) for RDS for PostgreSQL version 15 and later"); setting defaults
# makes AWS read them back as pending-reboot, a diff on every preview
# (hashicorp/terraform-provider-aws#39252). On postgres14 it is static, 0 by default, and AWS
# refuses apply method `immediate` for it (ministryofjustice/cloud-platform#1197;
# codeforamerica/asap_pdf#571): pending-reboot, which takes effect at the next reboot (a new
# instance boots with it; an existing one needs `aws rds reboot-db-instance`).
FORCE_SSL_DEFAULT_FROM = 15


def parameters(major: int) -> list[aws.rds.ParameterGroupParameterArgs]:
    """The parameter group's parameters for PostgreSQL `major` (only what differs from RDS's defaults)."""
    params = [aws.rds.ParameterGroupParameterArgs(name="log_min_duration_statement", value="1000")]
    if major < FORCE_SSL_DEFAULT_FROM:
        params.insert(0, aws.rds.ParameterGroupParameterArgs(name="rds.force_ssl", value="1",
                                                             apply_method="pending-reboot"))
    return params


@dataclass(frozen=True)
class DatabaseArgs:
    subnet_ids: Sequence[pulumi.Input[str]]
    security_group_id: pulumi.Input[str]
    instance_class: str
    engine_version: str
    storage_gb: int
    max_storage_gb: int
    multi_az: bool
    replicas: int
    backup_retention_days: int
    final_snapshot_name: str
    tags: Tags
    # Fixed (not auto-named), so the primary's log groups can exist, with retention, before it.
    identifier: pulumi.Input[str] | None = None
    log_retention_days: int = 30
    # Whether the program owns the log groups (components/signals.py rds_log_groups): not for a
    # primary deployed before it made them, whose groups RDS made.
    manage_log_groups: pulumi.Input[bool] = True
    # The deployed primary in its input names (components/deployed.py: from AWS, else the last
    # outputs); empty when nothing is deployed. Checked with ladder/inplace.py before the primary.
    deployed: pulumi.Input[dict[str, Any]] = field(default_factory=dict)


class Database(Tier):
    TOKEN = "scaleladder:data:Database"

    def __init__(self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(name, opts)
        self._name, self._tags = name, args.tags
        major = args.engine_version.split(".")[0]
        subnets = aws.rds.SubnetGroup(f"{name}-subnets", subnet_ids=list(args.subnet_ids), tags=args.tags,
                                      opts=self.child())
        # The family follows the major version; a major upgrade brings a new group (not stateful).
        params = aws.rds.ParameterGroup(
            f"{name}-params-pg{major}", family=f"postgres{major}",
            description="scaleladder: TLS only, slow-query log",
            parameters=parameters(int(major)), tags=args.tags, opts=self.child())
        self._passwords: dict[str, pulumi.Output[str]] = {}
        master_password = self._password("master")
        self.secret_arns: dict[str, pulumi.Output[str]] = {}
        self._secret(credentials.SECRET_MASTER, "RDS master (bootstrap and rotation only)",
                     {"username": credentials.MASTER_USER, "password": master_password})
        self._secret(credentials.SECRET_APP, "app read-write login",
                     {"username": credentials.INITIAL_APP_RW_LOGIN, "password": self._password("app")})
        self._secret(credentials.SECRET_APP_RO, "app read-only login",
                     {"username": credentials.INITIAL_APP_RO_LOGIN, "password": self._password("app-ro")})
        self._secret(credentials.SECRET_PGBOUNCER, "PgBouncer auth_query, admin and stats users", {
            "auth_user": credentials.PGBOUNCER_AUTH_USER, "auth_password": self._password("pgbouncer-auth"),
            "admin_user": credentials.PGBOUNCER_ADMIN_USER, "admin_password": self._password("pgbouncer-admin"),
            "stats_user": credentials.PGBOUNCER_STATS_USER, "stats_password": self._password("pgbouncer-stats")})
        small = args.instance_class.endswith((".micro", ".small"))
        wanted = {"engineVersion": args.engine_version, "allocatedStorage": args.storage_gb,
                  "maxAllocatedStorage": args.max_storage_gb, "storageEncrypted": True, "engine": "postgres",
                  "dbName": DB_NAME, "username": credentials.MASTER_USER}
        deployed = pulumi.Output.from_input(args.deployed).apply(lambda d: _refuse(name, d, wanted))
        # RDS creates /aws/rds/instance/<id>/<log> itself on the first export, kept forever (RDS
        # User Guide, "Publishing PostgreSQL logs to Amazon CloudWatch Logs"; retention "Never
        # expire" until set): the program makes them first, with retention, and the primary waits.
        log_groups = pulumi.Output.from_input(args.manage_log_groups).apply(lambda manage: [aws.cloudwatch.LogGroup(
            f"{name}-{log}-log", name=pulumi.Output.concat("/aws/rds/instance/", args.identifier, f"/{log}"),
            retention_in_days=args.log_retention_days, tags=args.tags, opts=self.child())
            for log in LOG_EXPORTS] if manage and args.identifier is not None else [])
        self.log_group_names: pulumi.Output[list[str]] = log_groups.apply(
            lambda groups: pulumi.Output.all(*(g.name for g in groups)))
        self.primary = aws.rds.Instance(
            name,
            identifier=args.identifier,
            engine="postgres",
            engine_version=args.engine_version,
            # A major change needs the flag (RDS API, ModifyDBInstance AllowMajorVersionUpgrade); a
            # downgrade is refused here, before AWS would refuse it.
            allow_major_version_upgrade=deployed.apply(
                lambda d: major_upgrade(d.get("engineVersion"), args.engine_version)),
            auto_minor_version_upgrade=True,
            instance_class=args.instance_class,
            allocated_storage=deployed.apply(lambda _: args.storage_gb),
            max_allocated_storage=args.max_storage_gb,
            storage_type="gp3",
            storage_encrypted=True,
            db_name=DB_NAME,
            # Was "app_admin" with an RDS-managed password; no stack was ever deployable with it
            # (phases 1-2 would have been, but the first preview failed on every phase), so the
            # replace this username change forces costs nothing.
            username=credentials.MASTER_USER,
            password=master_password,
            db_subnet_group_name=subnets.name,
            vpc_security_group_ids=[args.security_group_id],
            parameter_group_name=params.name,
            publicly_accessible=False,
            multi_az=args.multi_az,
            backup_retention_period=args.backup_retention_days,
            backup_window="03:00-04:00",
            maintenance_window="sun:04:30-sun:05:30",
            copy_tags_to_snapshot=True,
            deletion_protection=True,
            skip_final_snapshot=False,
            final_snapshot_identifier=args.final_snapshot_name,
            ca_cert_identifier="rds-ca-rsa2048-g1",
            enabled_cloudwatch_logs_exports=list(LOG_EXPORTS),
            performance_insights_enabled=not small,
            tags=tagged(args.tags, role="primary"),
            # Never deleted by Pulumi, and kept in AWS even if removed from the program. The
            # password is set at creation; `scaleladder-db rotate-master` changes it afterwards
            # (and the db-master secret), which `pulumi up` must not revert.
            opts=self.child(protect=True, retain_on_delete=True, ignore_changes=["password"], depends_on=log_groups),
        )
        # Replicas copy the primary's data and roles; they carry no password (AWS rejects one) and
        # depend on the primary's backups being on, which replicate_source_db implies.
        self.replicas = [
            aws.rds.Instance(
                f"{name}-replica-{i}",
                replicate_source_db=self.primary.identifier,
                instance_class=args.instance_class,
                storage_type="gp3",
                storage_encrypted=True,
                # Grows with the primary's configured size (a replica never has less than its source).
                allocated_storage=args.storage_gb,
                max_allocated_storage=args.max_storage_gb,
                vpc_security_group_ids=[args.security_group_id],
                parameter_group_name=params.name,
                publicly_accessible=False,
                auto_minor_version_upgrade=True,
                backup_retention_period=0,
                skip_final_snapshot=True,
                ca_cert_identifier="rds-ca-rsa2048-g1",
                performance_insights_enabled=not small,
                tags=tagged(args.tags, role="replica"),
                opts=self.child(depends_on=[self.primary]),
            )
            for i in range(args.replicas)
        ]
        self.address = self.primary.address
        self.port = self.primary.port
        self.identifier = self.primary.identifier
        self.engine_version = args.engine_version
        self.replica_addresses = [r.address for r in self.replicas]
        self.replica_identifiers = [r.identifier for r in self.replicas]
        self.max_connections = rds_max_connections(args.instance_class)
        # The configured size, not the live one: storage autoscaling may grow the disk past it,
        # and that must not make the configured value look like a shrink on the next `up`.
        self.storage_gb = args.storage_gb
        self.register_outputs({
            "dbAddress": self.address,
            "dbSecretArns": self.secret_arns,
            "dbReplicaAddresses": self.replica_addresses,
            "dbEngineVersion": self.engine_version,
        })

    def _password(self, purpose: str) -> pulumi.Output[str]:
        pw = random.RandomPassword(f"{self._name}-{purpose}-password", length=PASSWORD_LENGTH, special=True,
                                   override_special=PASSWORD_SPECIAL, min_lower=1, min_upper=1, min_numeric=1,
                                   opts=self.child())
        return pulumi.Output.secret(pw.result)

    def _secret(self, logical: str, description: str, value: Mapping[str, pulumi.Input[str]]) -> None:
        """One Secrets Manager secret holding `value` as JSON (keys per credentials.SECRET_KEYS)."""
        assert tuple(value) == credentials.SECRET_KEYS[logical], logical
        secret = aws.secretsmanager.Secret(logical, description=f"scaleladder database: {description}",
                                           recovery_window_in_days=7, tags=self._tags, opts=self.child())
        aws.secretsmanager.SecretVersion(
            logical, secret_id=secret.id,
            secret_string=pulumi.Output.secret(pulumi.Output.all(**value).apply(_json)),  # type: ignore[arg-type]  # pulumi stubs: Input/Output types the SDK accepts at runtime
            # The project's rotation (`scaleladder-db rotate`) publishes new versions; `pulumi up`
            # must not put the initial value back.
            opts=self.child(ignore_changes=["secretString"]))
        self.secret_arns[logical] = secret.arn


def _json(value: dict[str, Any]) -> str:
    return json.dumps(value, sort_keys=False)


def _refuse(name: str, deployed: dict[str, Any] | None, wanted: dict[str, Any]) -> dict[str, Any]:
    """The deployed state when AWS can apply `wanted` to it in place; else ConfigError naming each
    config key (ladder/inplace.py: no storage shrink, no engine downgrade, no replace-forcing change)."""
    found = inplace.refusals(inplace.RDS_INSTANCE, name, deployed or {}, wanted)
    if found:
        raise ConfigError([r.message() for r in found])
    return deployed or {}


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in str(text).split("."))


def major_upgrade(previous: str | None, wanted: str) -> bool | None:
    """`True` when `wanted`'s major differs from the deployed `previous` (RDS needs
    AllowMajorVersionUpgrade then; a downgrade was refused before, by ladder/inplace.py).
    `None` (unset) otherwise, so a stack that never upgrades shows no diff."""
    if previous is None or previous == "":
        return None
    return True if _version(wanted)[0] != _version(previous)[0] else None
