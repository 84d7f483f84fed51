"""Database: the RDS PostgreSQL primary (the one thing a climb must never lose)
and, from phase 3, its read replicas.

The primary keeps the logical name `db` and the same replace-forcing inputs in
every phase; it is protected, retained on delete, deletion-protected and leaves
a final snapshot. Its master password is generated and rotated by RDS in Secrets
Manager (`manage_master_user_password`), so no password passes through Pulumi.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import pulumi
import pulumi_aws as aws

from ladder.aws_facts import rds_max_connections
from ladder.config import ConfigError

from .base import Tags, Tier, tagged

DB_NAME = "app"
DB_USER = "app_admin"
DB_PORT = 5432


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
    previous_storage_gb: pulumi.Input[int | None] = None  # last deployed size (a stack output), None when new


class Database(Tier):
    TOKEN = "scaleladder:data:Database"

    def __init__(self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(name, opts)
        major = args.engine_version.split(".")[0]
        subnets = aws.rds.SubnetGroup(f"{name}-subnets", subnet_ids=list(args.subnet_ids), tags=args.tags,
                                      opts=self.child())
        # The family follows the major version; a major upgrade brings a new group (not stateful).
        params = aws.rds.ParameterGroup(
            f"{name}-params-pg{major}", family=f"postgres{major}",
            description="scaleladder: TLS only, slow-query log",
            parameters=[
                aws.rds.ParameterGroupParameterArgs(name="rds.force_ssl", value="1"),
                aws.rds.ParameterGroupParameterArgs(name="password_encryption", value="scram-sha-256"),
                aws.rds.ParameterGroupParameterArgs(name="log_min_duration_statement", value="1000"),
            ],
            tags=args.tags, opts=self.child())
        small = args.instance_class.endswith((".micro", ".small"))
        self.primary = aws.rds.Instance(
            name,
            engine="postgres",
            engine_version=args.engine_version,
            auto_minor_version_upgrade=True,
            instance_class=args.instance_class,
            allocated_storage=pulumi.Output.from_input(args.previous_storage_gb).apply(
                lambda previous: _refuse_shrinking(previous, args.storage_gb)),
            max_allocated_storage=args.max_storage_gb,
            storage_type="gp3",
            storage_encrypted=True,
            db_name=DB_NAME,
            username=DB_USER,
            manage_master_user_password=True,
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
            enabled_cloudwatch_logs_exports=["postgresql", "upgrade"],
            performance_insights_enabled=not small,
            tags=tagged(args.tags, role="primary"),
            # Never deleted by Pulumi, and kept in AWS even if removed from the program.
            opts=self.child(protect=True, retain_on_delete=True),
        )
        # Replicas copy the primary's data; they carry no password (AWS rejects one) and
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
        self.secret_arn = self.primary.master_user_secrets.apply(lambda s: s[0].secret_arn)
        self.replica_addresses = [r.address for r in self.replicas]
        self.replica_identifiers = [r.identifier for r in self.replicas]
        self.max_connections = rds_max_connections(args.instance_class)
        # The configured size, not the live one: storage autoscaling may grow the disk past it,
        # and that must not make the configured value look like a shrink on the next `up`.
        self.storage_gb = args.storage_gb
        self.register_outputs({
            "dbAddress": self.address,
            "dbSecretArn": self.secret_arn,
            "dbReplicaAddresses": self.replica_addresses,
        })


def _refuse_shrinking(previous: int | None, wanted: int) -> int:
    if previous is not None and wanted < int(previous):
        raise ConfigError([
            f"scaleladder:database.storageGb: the database has {int(previous)} GB and AWS cannot reduce allocated "
            f"storage (got {wanted}); allowed: {int(previous)} or more"])
    return wanted
