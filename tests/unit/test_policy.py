"""The policy pack: every rule catches a violating resource and passes a compliant one;
every preset stack passes; the CrossGuard pack the Pulumi CLI loads serves the same rules.

One implementation per rule (policy/rules.py), two runners: the pack (policy/__main__.py)
and the offline plan (ladder/policy.py). The table below gives, per rule, minimal
violating and compliant resources; `test_mutated_plan_resources_are_caught` does the same
starting from real plan resources, so the rules read the property names the program sends.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import importlib
import inspect
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from ladder import cli
from ladder import policy as offline
from policy import rules
from policy.rules import (
    BUCKET_ACLS,
    BUCKET_PAB,
    BUCKET_POLICY,
    BUCKET_SSE,
    BUCKETS,
    CONFIG_MAP,
    DEPLOYMENT,
    DISTRIBUTION,
    EIP,
    EKS_CLUSTER,
    EKS_NODES,
    HPAS,
    IGW,
    INSTANCE,
    LAUNCH_TEMPLATE,
    LB,
    LISTENER,
    PDB,
    RDS_INSTANCE,
    RDS_PARAMS,
    RDS_SUBNETS,
    REDIS_GROUP,
    REDIS_PARAMS,
    REDIS_SUBNETS,
    ROUTE_ASSOC,
    ROUTE_TABLE,
    SCALED_OBJECT,
    SG,
    SG_EGRESS,
    SG_INGRESS,
    SUBNET,
    VOLUME,
)

from .plans import existing_stacks, plan

REPO = Path(__file__).resolve().parents[2]
TAGS = {"project": "scaleladder", "stack": "test", "phase": "2"}
BUCKET = BUCKETS[0]
HPA = HPAS[0]


# ---------------------------------------------------------------------------
# Building resources as the runners present them


def urn(name: str) -> str:
    return f"urn:pulumi:test::scaleladder::test::{name}"


def res(type_: str, name: str = "r", /, *, refs: dict[str, list[str]] | None = None, protect: bool = False,
        retain: bool | None = False, **props: Any) -> rules.Resource:
    """A resource; `refs` name the resources a property refers to."""
    return rules.Resource(type_, name, urn(name), props, protect, retain,
                          {k: tuple(urn(n) for n in v) for k, v in (refs or {}).items()})


def with_props(base: dict[str, Any], **over: Any) -> dict[str, Any]:
    """`base` with `over` applied; a None value removes the key."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = v
    return out


RDS_OK = dict(engine="postgres", publiclyAccessible=False, storageEncrypted=True, backupRetentionPeriod=7.0,
              deletionProtection=True, skipFinalSnapshot=False, finalSnapshotIdentifier="scaleladder-test-db-final",
              password="generated-secret-password", autoMinorVersionUpgrade=True, dbSubnetGroupName="db-subnets-1a2b3c",
              vpcSecurityGroupIds=["sg-db"], tags=TAGS)


def rds(**over: Any) -> rules.Resource:
    return res(RDS_INSTANCE, "db", protect=True, retain=True, **with_props(RDS_OK, **over))


def replica(**over: Any) -> rules.Resource:
    props = with_props(RDS_OK, replicateSourceDb="db-1a2b3c", backupRetentionPeriod=0.0, skipFinalSnapshot=True,
                       deletionProtection=None, finalSnapshotIdentifier=None, password=None,
                       dbSubnetGroupName=None)
    return res(RDS_INSTANCE, "db-replica-0", **with_props(props, **over))


REDIS_OK = dict(engine="redis", atRestEncryptionEnabled=True, transitEncryptionEnabled=True, authToken="t" * 48,
                snapshotRetentionLimit=7.0, subnetGroupName="redis-subnets-1a2b", securityGroupIds=["sg-redis"],
                tags=TAGS)


def redis(**over: Any) -> rules.Resource:
    return res(REDIS_GROUP, "redis", protect=True, retain=True, **with_props(REDIS_OK, **over))


def redis_params(policy: str) -> rules.Resource:
    return res(REDIS_PARAMS, "redis-params", family="redis7", tags=TAGS,
               parameters=[{"name": "maxmemory-policy", "value": policy}, {"name": "cluster-enabled", "value": "no"}])


def network() -> list[rules.Resource]:
    """A VPC's public and private halves: the public route table routes to the internet gateway."""
    return [
        res(IGW, "igw", tags=TAGS),
        res(ROUTE_TABLE, "rt-public", refs={"routes": ["igw"]},
            routes=[{"cidrBlock": "0.0.0.0/0", "gatewayId": "igw-1"}], tags=TAGS),
        res(ROUTE_TABLE, "rt-private", routes=[], tags=TAGS),
        res(SUBNET, "public-0", mapPublicIpOnLaunch=False, tags=TAGS),
        res(SUBNET, "private-0", mapPublicIpOnLaunch=False, tags=TAGS),
        res(ROUTE_ASSOC, "assoc-public", refs={"subnetId": ["public-0"], "routeTableId": ["rt-public"]}),
        res(ROUTE_ASSOC, "assoc-private", refs={"subnetId": ["private-0"], "routeTableId": ["rt-private"]}),
    ]


def data_tier(*subnets: str) -> list[rules.Resource]:
    return [*network(),
            res(RDS_SUBNETS, "db-subnets", refs={"subnetIds": list(subnets)}, subnetIds=list(subnets), tags=TAGS),
            res(REDIS_SUBNETS, "redis-subnets", refs={"subnetIds": ["private-0"]}, subnetIds=["private-0"], tags=TAGS),
            rds(), redis()]


TLS_ONLY = {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
            "Resource": ["arn:aws:s3:::assets", "arn:aws:s3:::assets/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
OAC_READ = {"Sid": "AllowCloudFrontReadThroughOAC", "Effect": "Allow",
            "Principal": {"Service": "cloudfront.amazonaws.com"}, "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::assets/*",
            "Condition": {"StringEquals": {"AWS:SourceArn": "arn:aws:cloudfront::1:distribution/E1"}}}


def policy_doc(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def bucket_set(*, block: dict[str, bool] | None = None, sse: bool = True,
               statements: tuple[dict, ...] = (TLS_ONLY, OAC_READ), guards_retained: bool = True) -> list[rules.Resource]:
    """A bucket with its guards, as the CDN tier builds it; `block=None` drops the public access block."""
    keep = guards_retained
    out = [res(BUCKET, "assets", retain=True, tags=TAGS)]
    if block is not None:
        out.append(res(BUCKET_PAB, "assets-pab", refs={"bucket": ["assets"]}, retain=keep, bucket="assets", **block))
    if sse:
        out.append(res(BUCKET_SSE[0], "assets-sse", refs={"bucket": ["assets"]}, retain=keep, bucket="assets", rules=[
            {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]))
    out.append(res(BUCKET_POLICY, "assets-policy", refs={"bucket": ["assets"]}, retain=keep, bucket="assets",
                   policy=policy_doc(*statements)))
    return out


ALL_BLOCKED = dict(blockPublicAcls=True, blockPublicPolicy=True, ignorePublicAcls=True, restrictPublicBuckets=True)

IMDSV2 = {"httpEndpoint": "enabled", "httpTokens": "required", "httpPutResponseHopLimit": 1.0}
USER_DATA = ('#cloud-config\nwrite_files:\n  - path: /etc/scaleladder/env\n    content: |\n'
             '      DB_SECRET_ARN=arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-1-AbCdEf\n'
             '      DB_SECRET="$(secret "$DB_SECRET_ARN")"\n'
             '      print(f"DATABASE_URL=postgres://{user}:{password}@{host}:5432/app")\n')


def instance(**over: Any) -> rules.Resource:
    props = dict(ami="ami-1", instanceType="t3.medium", metadataOptions=IMDSV2, userData=USER_DATA,
                 rootBlockDevice={"volumeType": "gp3", "volumeSize": 30.0, "encrypted": True},
                 vpcSecurityGroupIds=["sg-app"], tags=TAGS)
    return res(INSTANCE, "app", **with_props(props, **over))


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def launch_template(**over: Any) -> rules.Resource:
    props = dict(imageId="ami-1", instanceType="t3.large", metadataOptions=IMDSV2, userData=b64(USER_DATA),
                 blockDeviceMappings=[{"deviceName": "/dev/sda1",
                                       "ebs": {"volumeType": "gp3", "volumeSize": 30.0, "encrypted": "true"}}],
                 tags=TAGS)
    return res(LAUNCH_TEMPLATE, "fleet-app", **with_props(props, **over))


def node_group(**over: Any) -> rules.Resource:
    props = dict(clusterName="scaleladder-test", instanceTypes=["m6i.large"],
                 launchTemplate={"id": "lt-1", "version": "1"},
                 scalingConfig={"minSize": 2.0, "maxSize": 10.0, "desiredSize": 2.0}, tags=TAGS)
    return res(EKS_NODES, "eks-nodes", **with_props(props, **over))


def ingress(name: str, port: int | None, *, cidr: str | None = None, source: str | None = None,
            group: str = "sg-lb", protocol: str = "tcp", to_port: int | None = None) -> rules.Resource:
    props: dict[str, Any] = {"ipProtocol": protocol, "tags": TAGS}
    if port is not None:
        props |= {"fromPort": float(port), "toPort": float(to_port if to_port is not None else port)}
    refs = {"securityGroupId": [group]}
    if cidr:
        props["cidrIpv4"] = cidr
    if source:
        props["referencedSecurityGroupId"] = source
        refs["referencedSecurityGroupId"] = [source]
    return res(SG_INGRESS, name, refs=refs, securityGroupId=group, **props)


def alb(name: str = "alb", *, internal: bool = False, group: str = "sg-lb", **over: Any) -> rules.Resource:
    props = dict(loadBalancerType="application", internal=internal, securityGroups=[group],
                 dropInvalidHeaderFields=True, tags=TAGS)
    return res(LB, name, refs={"securityGroups": [group]}, **with_props(props, **over))


def edge(*rules_: rules.Resource, internal: bool = False) -> list[rules.Resource]:
    """Phases 2-5: a load balancer group in front of an app group."""
    return [res(SG, "sg-lb", tags={**TAGS, "tier": "lb"}), res(SG, "sg-app", tags={**TAGS, "tier": "app"}),
            alb(internal=internal), *rules_]


def single_vm(*rules_: rules.Resource) -> list[rules.Resource]:
    """Phase 1: one VM with an Elastic IP is its own edge."""
    vm = dataclasses.replace(instance(), refs={"vpcSecurityGroupIds": (urn("sg-app"),)})
    return [res(SG, "sg-app", tags=TAGS), vm,
            res(EIP, "app-ip", refs={"instance": ["app"]}, instance="i-1", domain="vpc", tags=TAGS),
            *rules_]


S3_ORIGIN = {"originId": "static-assets", "domainName": "assets.s3.us-east-1.amazonaws.com",
             "originAccessControlId": "E2OAC"}
APP_ORIGIN = {"originId": "app", "domainName": "origin.example.com",
              "customOriginConfig": {"originProtocolPolicy": "https-only", "httpPort": 80.0, "httpsPort": 443.0,
                                     "originSslProtocols": ["TLSv1.2"]},
              "customHeaders": [{"name": "X-Origin-Verify", "value": "generated-secret-value"}]}
DIST_OK = dict(enabled=True, origins=[S3_ORIGIN, APP_ORIGIN],
               defaultCacheBehavior={"targetOriginId": "app", "viewerProtocolPolicy": "redirect-to-https"},
               orderedCacheBehaviors=[{"pathPattern": "/static/*", "targetOriginId": "static-assets",
                                       "viewerProtocolPolicy": "redirect-to-https"}],
               viewerCertificate={"cloudfrontDefaultCertificate": True}, tags=TAGS)


def distribution(**over: Any) -> rules.Resource:
    return res(DISTRIBUTION, "cdn", **with_props(DIST_OK, **over))


EKS_OK = dict(name="scaleladder-test", version="1.33", tags=TAGS,
              vpcConfig={"endpointPrivateAccess": True, "endpointPublicAccess": True,
                         "publicAccessCidrs": ["203.0.113.0/24"], "subnetIds": ["subnet-1", "subnet-2"]},
              encryptionConfig={"resources": ["secrets"], "provider": {"keyArn": "arn:aws:kms:us-east-1:1:key/k"}},
              enabledClusterLogTypes=["api", "audit", "authenticator", "controllerManager", "scheduler"])


def eks(**over: Any) -> rules.Resource:
    return res(EKS_CLUSTER, "eks", **with_props(EKS_OK, **over))


def container(name: str = "app", **over: Any) -> dict[str, Any]:
    c = dict(name=name, image="ghcr.io/your-org/your-api:1.0.0",
             resources={"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
             securityContext={"runAsNonRoot": True, "runAsUser": 1000.0, "allowPrivilegeEscalation": False,
                              "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}},
             env=[{"name": "NODE_ENV", "value": "production"},
                  {"name": "DB_SECRET_ARN", "value": "arn:aws:secretsmanager:us-east-1:1:secret:db"},
                  {"name": "REDIS_TOKEN", "valueFrom": {"secretKeyRef": {"name": "redis", "key": "token"}}}])
    return with_props(c, **over)


LABELS = {"app.kubernetes.io/name": "app", "app.kubernetes.io/part-of": "scaleladder"}


def deployment(name: str = "app", *, replicas: float | None = 2.0, containers: list[dict] | None = None,
               pod_security: dict | None = None, namespace: str = "scaleladder") -> rules.Resource:
    spec: dict[str, Any] = {"selector": {"matchLabels": LABELS}, "template": {
        "metadata": {"labels": LABELS},
        "spec": {"containers": containers if containers is not None else [container()]}}}
    if replicas is not None:
        spec["replicas"] = replicas
    if pod_security is not None:
        spec["template"]["spec"]["securityContext"] = pod_security
    return res(DEPLOYMENT, f"apps-{name}", metadata={"name": name, "namespace": namespace, "labels": LABELS},
               spec=spec)


def hpa(min_replicas: float | None = 2.0, target: str = "app") -> rules.Resource:
    spec: dict[str, Any] = {"maxReplicas": 10.0, "scaleTargetRef": {"kind": "Deployment", "apiVersion": "apps/v1",
                                                                     "name": target}}
    if min_replicas is not None:
        spec["minReplicas"] = min_replicas
    return res(HPA, f"hpa-{target}", metadata={"name": target, "namespace": "scaleladder"}, spec=spec)


def pdb(namespace: str = "scaleladder", labels: dict | None = None) -> rules.Resource:
    return res(PDB, f"pdb-{namespace}", metadata={"name": "app", "namespace": namespace},
               spec={"maxUnavailable": 1.0, "selector": {"matchLabels": labels or LABELS}})


def config_map(**data: str) -> rules.Resource:
    return res(CONFIG_MAP, "pgbouncer-config", metadata={"name": "pgbouncer", "namespace": "scaleladder"}, data=data)


def pod(name: str = "app", **spec: Any) -> rules.Resource:
    """A Deployment whose pod spec carries `spec` (host namespaces, volumes ...) beside a compliant container."""
    return res(DEPLOYMENT, f"apps-{name}", metadata={"name": name, "namespace": "scaleladder"},
               spec={"template": {"spec": {"containers": [container()], **spec}}})


def data_groups(*rules_: rules.Resource) -> list[rules.Resource]:
    """The tier security groups of phases 2-5 (tagged as components/firewall.py tags them), the database
    and Redis sitting in theirs, the internet-facing ALB in the lb group, and the EKS cluster."""
    groups = [res(SG, f"sg-{t}", tags={**TAGS, "tier": t}) for t in ("lb", "app", "workers", "pgbouncer", "db", "redis")]
    db = dataclasses.replace(rds(), refs={"vpcSecurityGroupIds": (urn("sg-db"),)})
    cache = dataclasses.replace(redis(), refs={"securityGroupIds": (urn("sg-redis"),)})
    return [*groups, db, cache, alb(), eks(), *rules_]


def egress(name: str, group: str, protocol: str = "-1", cidr: str = "0.0.0.0/0") -> rules.Resource:
    return res(SG_EGRESS, name, refs={"securityGroupId": [group]}, securityGroupId=group, ipProtocol=protocol,
               cidrIpv4=cidr, tags=TAGS)


RDS_HOST = "db-1a2b3c.c9akciq32.us-east-1.rds.amazonaws.com"
PGB_HOST = "pgbouncer.scaleladder.svc.cluster.local"


def external_secret(url: str) -> rules.Resource:
    return res(rules.EXTERNAL_SECRET, "apps-app-credentials", metadata={"name": "app-credentials"},
               spec={"target": {"name": "app-credentials", "template": {"data": {"DATABASE_URL": url}}}})


def job(conninfo: str) -> rules.Resource:
    return res(rules.JOBS[0], "apps-bootstrap", spec={"template": {"spec": {"containers": [
        container("psql", env=[{"name": "CONNINFO", "value": conninfo}])]}}})


PGBOUNCER_INI = (f"[databases]\napp = host={RDS_HOST} port=5432 dbname=app\n[pgbouncer]\n"
                 "client_tls_sslmode = require\nserver_tls_sslmode = {mode}\n")
BOOT = ('#cloud-config\nwrite_files:\n  - path: /etc/scaleladder/boot.env\n    content: |\n'
        '      DB_VIA_PGBOUNCER=false\n  - path: /usr/local/sbin/scaleladder-boot\n    content: |\n'
        '      #!/bin/bash\n      tls = "sslmode={mode}&sslrootcert=/etc/ssl/rds-ca.pem"\n'
        '      print(f"postgres://{{user}}:{{password}}@{{host}}:5432/{{name}}?{{tls}}")\n')


# ---------------------------------------------------------------------------
# The table: per rule, resources that violate it and resources that comply.

CASES: list[tuple[str, str, list[rules.Resource], list[rules.Resource]]] = [
    # (rule, scenario, violating, compliant)
    ("rds-not-public", "public", [rds(publiclyAccessible=True)], [rds(), replica()]),
    ("rds-storage-encrypted", "unencrypted", [rds(storageEncrypted=False)], [rds(), replica(storageEncrypted=None)]),
    ("rds-storage-encrypted", "replica-set-false", [replica(storageEncrypted=False)], [replica()]),
    ("rds-backup-retention", "one-day", [rds(backupRetentionPeriod=1.0)], [rds(), replica()]),
    ("rds-deletion-protection", "off", [rds(deletionProtection=False)], [rds(), replica()]),
    ("rds-final-snapshot", "skipped", [rds(skipFinalSnapshot=True)], [rds(), replica()]),
    ("rds-final-snapshot", "unnamed", [rds(finalSnapshotIdentifier=None)], [rds()]),
    ("rds-own-master-password", "managed-by-rds",
     [rds(manageMasterUserPassword=True, password=None), replica(manageMasterUserPassword=True)],
     [rds(), rds(password=None, passwordWo="generated"), replica()]),
    ("rds-own-master-password", "no-password", [rds(password=None)], [rds()]),
    ("rds-auto-minor-upgrade", "off", [rds(autoMinorVersionUpgrade=False)], [rds(), rds(autoMinorVersionUpgrade=None)]),
    ("rds-tls-required", "no-force-ssl",
     [res(RDS_PARAMS, "db-params", family="postgres16", parameters=[{"name": "rds.force_ssl", "value": "0"}])],
     [res(RDS_PARAMS, "db-params", family="postgres16", parameters=[{"name": "rds.force_ssl", "value": "1"}]),
      res(RDS_PARAMS, "db-params", family="postgres16", parameters=[])]),
    ("rds-tls-required", "14-needs-force-ssl",
     [res(RDS_PARAMS, "db-params", family="postgres14", parameters=[])],
     [res(RDS_PARAMS, "db-params", family="postgres14", parameters=[{"name": "rds.force_ssl", "value": "1"}])]),
    ("elasticache-at-rest-encryption", "off", [redis(atRestEncryptionEnabled=False)], [redis()]),
    ("elasticache-in-transit-encryption", "off", [redis(transitEncryptionEnabled=None)], [redis()]),
    ("elasticache-in-transit-encryption", "preferred", [redis(transitEncryptionMode="preferred")],
     [redis(transitEncryptionMode="required")]),
    ("elasticache-auth", "open", [redis(authToken=None)], [redis(), redis(authToken=None, userGroupIds=["ug-app"])]),
    ("elasticache-noeviction", "evicts", [redis_params("allkeys-lru")], [redis_params("noeviction")]),
    ("elasticache-noeviction", "default", [res(REDIS_PARAMS, "p", family="redis7", parameters=[])],
     [redis_params("noeviction")]),
    ("elasticache-snapshots", "none", [redis(snapshotRetentionLimit=0.0)], [redis()]),
    ("data-tier-private", "public-subnet", data_tier("private-0", "public-0"), data_tier("private-0")),
    ("data-tier-private", "default-vpc", [rds(dbSubnetGroupName=None), redis(securityGroupIds=None)],
     data_tier("private-0")),
    ("s3-public-access-blocked", "missing", bucket_set(block=None), bucket_set(block=ALL_BLOCKED)),
    ("s3-public-access-blocked", "policy-allowed", bucket_set(block={**ALL_BLOCKED, "blockPublicPolicy": False}),
     bucket_set(block=ALL_BLOCKED)),
    ("s3-no-public-acl", "canned", [res(BUCKET_ACLS[0], "acl", acl="public-read")],
     [res(BUCKET_ACLS[0], "acl", accessControlPolicy={"grants": [
         {"permission": "FULL_CONTROL", "grantee": {"type": "CanonicalUser", "id": "c4ca4238"}}]})]),
    ("s3-no-public-acl", "all-users-grant", [res(BUCKET_ACLS[0], "acl", accessControlPolicy={"grants": [
        {"permission": "READ",
         "grantee": {"type": "Group", "uri": "http://acs.amazonaws.com/groups/global/AllUsers"}}]})],
     [res(BUCKET, "assets", retain=True, tags=TAGS)]),
    ("s3-no-public-policy", "everyone",
     [res(BUCKET_POLICY, "p", policy=policy_doc({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                                                 "Resource": "arn:aws:s3:::assets/*"}))],
     [res(BUCKET_POLICY, "p", policy=policy_doc(TLS_ONLY, OAC_READ))]),
    ("s3-no-public-policy", "any-aws-account",
     [res(BUCKET_POLICY, "p", policy={"Statement": [{"Effect": "Allow", "Principal": {"AWS": ["*"]},
                                                     "Action": "s3:*", "Resource": "*"}]})],
     [res(BUCKET_POLICY, "p", policy=policy_doc(OAC_READ))]),
    ("s3-encrypted", "no-sse", bucket_set(block=ALL_BLOCKED, sse=False), bucket_set(block=ALL_BLOCKED)),
    ("s3-tls-only", "no-deny", bucket_set(block=ALL_BLOCKED, statements=(OAC_READ,)), bucket_set(block=ALL_BLOCKED)),
    ("ebs-encrypted", "instance-root", [instance(rootBlockDevice={"volumeSize": 30.0})], [instance()]),
    ("ebs-encrypted", "launch-template", [launch_template(blockDeviceMappings=[
        {"deviceName": "/dev/sda1", "ebs": {"volumeSize": 30.0, "encrypted": "false"}}])], [launch_template()]),
    ("ebs-encrypted", "ami-default-root", [launch_template(blockDeviceMappings=None)], [launch_template()]),
    ("ebs-encrypted", "volume", [res(VOLUME, "data", size=10.0, tags=TAGS)],
     [res(VOLUME, "data", size=10.0, encrypted=True, tags=TAGS)]),
    ("ebs-encrypted", "eks-default-template", [node_group(launchTemplate=None)], [node_group()]),
    ("imdsv2-required", "instance-optional", [instance(metadataOptions={"httpTokens": "optional"})], [instance()]),
    ("imdsv2-required", "template-default", [launch_template(metadataOptions=None)],
     [launch_template(), launch_template(metadataOptions={"httpEndpoint": "disabled"})]),
    ("imdsv2-required", "eks-default-template", [node_group(launchTemplate=None)], [node_group()]),
    ("no-ssh-keys", "key-pair", [instance(keyName="deployer")], [instance(), launch_template()]),
    ("no-ssh-keys", "node-remote-access", [node_group(remoteAccess={"ec2SshKey": "deployer"})], [node_group()]),
    ("no-ssh-ingress", "port-22", [ingress("ssh", 22, source="sg-bastion", group="sg-app")],
     [ingress("web", 80, cidr="0.0.0.0/0"), ingress("pg", 5432, source="sg-app", group="sg-db")]),
    ("no-ssh-ingress", "port-range", [ingress("range", 0, cidr="10.0.0.0/16", to_port=1024)],
     [ingress("high", 1024, cidr="10.0.0.0/16", to_port=2048)]),
    ("no-ssh-ingress", "all-from-cidr", [ingress("all", None, cidr="10.0.0.0/8", protocol="-1")],
     [ingress("all-from-group", None, source="sg-eks", group="sg-db", protocol="-1")]),
    ("no-ssh-ingress", "inline", [res(SG, "sg-app", ingress=[{"protocol": "tcp", "fromPort": 22.0, "toPort": 22.0,
                                                               "cidrBlocks": ["0.0.0.0/0"]}], tags=TAGS)],
     [res(SG, "sg-app", ingress=[], tags=TAGS)]),
    ("world-ingress-web-edge-only", "app-behind-lb",
     edge(ingress("app-world", 80, cidr="0.0.0.0/0", group="sg-app")),
     edge(ingress("lb-80", 80, cidr="0.0.0.0/0"), ingress("lb-443", 443, cidr="::/0"),
          ingress("app-from-lb", 80, source="sg-lb", group="sg-app"))),
    ("world-ingress-web-edge-only", "non-web-port", edge(ingress("lb-8080", 8080, cidr="0.0.0.0/0")),
     edge(ingress("lb-443", 443, cidr="0.0.0.0/0"))),
    ("world-ingress-web-edge-only", "internal-lb", edge(ingress("lb-80", 80, cidr="0.0.0.0/0"), internal=True),
     edge(ingress("lb-80", 80, cidr="0.0.0.0/0"))),
    ("world-ingress-web-edge-only", "phase-1-vm", [res(SG, "sg-app", tags=TAGS), instance(),
                                                   ingress("app-80", 80, cidr="0.0.0.0/0", group="sg-app")],
     single_vm(ingress("app-80", 80, cidr="0.0.0.0/0", group="sg-app"))),
    ("public-alb-behind-waf", "open-alb",
     edge(ingress("lb-443", 443, cidr="0.0.0.0/0")),
     edge(ingress("lb-443", 443, cidr="0.0.0.0/0"),
          res("aws:wafv2/webAclAssociation:WebAclAssociation", "edge-alb", refs={"resourceArn": ["alb"]},
              resourceArn="arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/alb/1",
              webAclArn="arn:aws:wafv2:us-east-1:123456789012:regional/webacl/edge/1"))),
    ("public-alb-behind-waf", "cloudfront-only-alb-needs-none",
     edge(ingress("lb-443", 443, cidr="::/0")), edge(ingress("lb-443", 443, group="sg-lb"))),
    ("public-alb-behind-waf", "open-ingress",
     [res(rules.INGRESS, "app", metadata={"annotations": {"alb.ingress.kubernetes.io/scheme": "internet-facing",
                                                          "alb.ingress.kubernetes.io/inbound-cidrs": "0.0.0.0/0"}})],
     [res(rules.INGRESS, "app", metadata={"annotations": {
         "alb.ingress.kubernetes.io/scheme": "internet-facing",
         "alb.ingress.kubernetes.io/wafv2-acl-arn": "arn:aws:wafv2:us-east-1:123456789012:regional/webacl/edge/1"}}),
      res(rules.INGRESS, "behind-cloudfront", metadata={"annotations": {
          "alb.ingress.kubernetes.io/scheme": "internet-facing",
          "alb.ingress.kubernetes.io/security-group-prefix-lists": "pl-3b927c52"}})]),
    ("nlb-internal", "public-nlb", [alb("nlb", loadBalancerType="network", dropInvalidHeaderFields=None)],
     [alb("nlb", internal=True, loadBalancerType="network", dropInvalidHeaderFields=None), alb()]),
    ("alb-drop-invalid-headers", "kept", [alb(dropInvalidHeaderFields=None)], [alb()]),
    ("lb-listener-modern-tls", "old-policy",
     [res(LISTENER, "https", protocol="HTTPS", port=443.0, sslPolicy="ELBSecurityPolicy-2016-08", tags=TAGS),
      res(LISTENER, "tls", protocol="TLS", port=6432.0, tags=TAGS)],
     [res(LISTENER, "https", protocol="HTTPS", port=443.0, sslPolicy="ELBSecurityPolicy-TLS13-1-2-2021-06",
          tags=TAGS), res(LISTENER, "http", protocol="HTTP", port=80.0, tags=TAGS)]),
    ("cloudfront-oac", "legacy-oai", [distribution(origins=[
        {"originId": "static-assets", "domainName": "assets.s3.amazonaws.com",
         "s3OriginConfig": {"originAccessIdentity": "origin-access-identity/cloudfront/E1"}}, APP_ORIGIN])],
     [distribution()]),
    ("cloudfront-oac", "no-oac", [distribution(origins=[{**S3_ORIGIN, "originAccessControlId": ""}, APP_ORIGIN])],
     [distribution()]),
    ("cloudfront-https-only", "allow-all", [distribution(defaultCacheBehavior={"targetOriginId": "app",
                                                                               "viewerProtocolPolicy": "allow-all"})],
     [distribution(), distribution(defaultCacheBehavior={"viewerProtocolPolicy": "https-only"})]),
    ("cloudfront-https-only", "old-tls", [distribution(viewerCertificate={
        "acmCertificateArn": "arn:aws:acm:us-east-1:1:certificate/c", "minimumProtocolVersion": "TLSv1"})],
     [distribution(viewerCertificate={"acmCertificateArn": "arn:aws:acm:us-east-1:1:certificate/c",
                                      "minimumProtocolVersion": "TLSv1.2_2021", "sslSupportMethod": "sni-only"})]),
    ("eks-endpoint-private", "public-only", [eks(vpcConfig={"endpointPrivateAccess": False, "subnetIds": ["s"]})],
     [eks()]),
    ("eks-public-endpoint-restricted", "open", [eks(vpcConfig={"endpointPrivateAccess": True, "subnetIds": ["s"]})],
     [eks(), eks(vpcConfig={"endpointPrivateAccess": True, "endpointPublicAccess": False, "subnetIds": ["s"]})]),
    ("eks-secrets-encryption", "none", [eks(encryptionConfig=None)], [eks()]),
    ("eks-secrets-encryption", "no-key", [eks(encryptionConfig={"resources": ["secrets"], "provider": {}})], [eks()]),
    ("eks-control-plane-logging", "api-only", [eks(enabledClusterLogTypes=["api"])], [eks()]),
    ("k8s-container-resources", "no-limits",
     [deployment(containers=[container(resources={"requests": {"cpu": "250m", "memory": "512Mi"}})])],
     [deployment()]),
    ("k8s-container-resources", "init-container",
     [res(DEPLOYMENT, "apps-app", metadata={"name": "app"}, spec={"template": {"spec": {
         "initContainers": [container("migrate", resources=None)], "containers": [container()]}}})],
     [deployment()]),
    ("k8s-run-as-non-root", "unset", [deployment(containers=[container(securityContext={
        "allowPrivilegeEscalation": False})])],
     [deployment(), deployment(containers=[container(securityContext={"allowPrivilegeEscalation": False})],
                               pod_security={"runAsNonRoot": True})]),
    ("k8s-run-as-non-root", "root-user", [deployment(containers=[container(securityContext={
        "runAsNonRoot": True, "runAsUser": 0.0, "allowPrivilegeEscalation": False})])], [deployment()]),
    ("k8s-no-privilege-escalation", "privileged", [deployment(containers=[container(securityContext={
        "runAsNonRoot": True, "privileged": True, "allowPrivilegeEscalation": False})])], [deployment()]),
    ("k8s-no-privilege-escalation", "unset", [deployment(containers=[container(securityContext={
        "runAsNonRoot": True})])], [deployment()]),
    ("hpa-min-replicas", "one", [hpa(1.0)], [hpa(2.0)]),
    ("hpa-min-replicas", "default", [hpa(None)], [hpa(3.0)]),
    ("pdb-for-replicated-deployments", "replicas", [deployment(replicas=2.0)],
     [deployment(replicas=2.0), pdb(), deployment("migrate-once", replicas=1.0)]),
    ("pdb-for-replicated-deployments", "autoscaled", [deployment(replicas=None), hpa()],
     [deployment(replicas=None), hpa(), pdb()]),
    ("pdb-for-replicated-deployments", "keda", [deployment("workers", replicas=None),
                                                res(SCALED_OBJECT, "so", metadata={"name": "workers",
                                                                                   "namespace": "scaleladder"},
                                                    spec={"scaleTargetRef": {"name": "workers"},
                                                          "minReplicaCount": 1.0, "maxReplicaCount": 10.0})],
     [deployment("workers", replicas=None), pdb()]),
    ("pdb-for-replicated-deployments", "other-namespace", [deployment(replicas=2.0), pdb(namespace="default")],
     [deployment(replicas=2.0), pdb()]),
    ("tags-required", "missing-phase", [res("aws:ec2/vpc:Vpc", "vpc", tags={"project": "scaleladder", "stack": "t"})],
     [res("aws:ec2/vpc:Vpc", "vpc", tags=TAGS), res("aws:iam/rolePolicy:RolePolicy", "untaggable")]),
    ("tags-required", "asg-list", [res("aws:autoscaling/group:Group", "asg", tags=[
        {"key": "project", "value": "scaleladder", "propagateAtLaunch": True}])],
     [res("aws:autoscaling/group:Group", "asg", tags=[{"key": k, "value": v, "propagateAtLaunch": True}
                                                      for k, v in TAGS.items()])]),
    ("stateful-protected", "unprotected",
     [dataclasses.replace(rds(), protect=False), dataclasses.replace(redis(), protect=False),
      res(BUCKET, "assets", retain=False, tags=TAGS)],
     [rds(), redis(), replica(), res(BUCKET, "assets", retain=True, tags=TAGS),
      res(BUCKET, "assets", protect=True, retain=False, tags=TAGS)]),
    ("imdsv2-required", "hop-limit-2",
     [instance(metadataOptions={**IMDSV2, "httpPutResponseHopLimit": 2.0}),
      launch_template(metadataOptions={**IMDSV2, "httpPutResponseHopLimit": 64.0})],
     [instance(), launch_template()]),
    ("imdsv2-required", "hop-limit-unset-on-al2023",
     [launch_template(metadataOptions={"httpEndpoint": "enabled", "httpTokens": "required"})], [launch_template()]),
    ("s3-no-public-policy", "condition-pins-no-source",
     [res(BUCKET_POLICY, "p", policy=policy_doc({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                                                 "Resource": "arn:aws:s3:::assets/*",
                                                 "Condition": {"Bool": {"aws:SecureTransport": "true"}}})),
      res(BUCKET_POLICY, "p", policy=policy_doc({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                                                 "Resource": "arn:aws:s3:::assets/*",
                                                 "Condition": {"ArnLike": {"aws:SourceArn": "arn:aws:cloudfront::*"}}})),
      res(BUCKET_POLICY, "p", policy=policy_doc({"Effect": "Allow", "NotPrincipal": {"AWS": "arn:aws:iam::1:root"},
                                                 "Action": "s3:*", "Resource": "*"}))],
     [res(BUCKET_POLICY, "p", policy=policy_doc({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                                                 "Resource": "arn:aws:s3:::assets/*",
                                                 "Condition": {"StringEquals": {"aws:SourceVpce": "vpce-1a2b3c4d"}}})),
      res(BUCKET_POLICY, "p", policy=policy_doc(TLS_ONLY, OAC_READ))]),
    ("k8s-no-privilege-escalation", "host-namespaces",
     [pod(hostPID=True), pod(hostNetwork=True), pod(hostIPC=True)], [pod(), deployment()]),
    ("k8s-no-privilege-escalation", "sys-admin",
     [deployment(containers=[container(securityContext={
         "runAsNonRoot": True, "allowPrivilegeEscalation": False,
         "capabilities": {"drop": ["ALL"], "add": ["SYS_ADMIN"]}})])],
     [deployment(containers=[container(securityContext={
         "runAsNonRoot": True, "allowPrivilegeEscalation": False,
         "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}})])]),
    ("k8s-no-privilege-escalation", "host-path-and-port",
     [pod(volumes=[{"name": "docker", "hostPath": {"path": "/var/run/docker.sock"}}]),
      deployment(containers=[container(ports=[{"containerPort": 3000.0, "hostPort": 3000.0}])])],
     [pod(volumes=[{"name": "tmp", "emptyDir": {"medium": "Memory"}}])]),
    ("cloudfront-https-only", "http-only-origin",
     [distribution(origins=[S3_ORIGIN, {**APP_ORIGIN, "customOriginConfig": {
         **APP_ORIGIN["customOriginConfig"], "originProtocolPolicy": "http-only"}}]),
      distribution(origins=[S3_ORIGIN, {**APP_ORIGIN, "customOriginConfig": {
          **APP_ORIGIN["customOriginConfig"], "originSslProtocols": ["TLSv1", "TLSv1.2"]}}])],
     [distribution()]),
    ("stateful-retained", "not-retained",
     [res(RDS_INSTANCE, "db", protect=True, retain=False, **RDS_OK),
      res(REDIS_GROUP, "redis", protect=True, retain=False, **REDIS_OK), res(BUCKET, "assets", protect=True, tags=TAGS)],
     [rds(), redis(), replica(), res(BUCKET, "assets", retain=True, tags=TAGS),
      res(BUCKET, "ssm-transfer", retain=False, forceDestroy=True, tags=TAGS)]),
    ("bucket-guards-retained", "step-back-deletes-guards", bucket_set(block=ALL_BLOCKED, guards_retained=False),
     [*bucket_set(block=ALL_BLOCKED), res(BUCKET, "scratch", retain=False, tags=TAGS),
      res(BUCKET_PAB, "scratch-pab", refs={"bucket": ["scratch"]}, bucket="scratch", **ALL_BLOCKED)]),
    ("data-tier-sources", "lb-into-redis",
     data_groups(ingress("redis-from-lb", 6379, source="sg-lb", group="sg-redis")),
     data_groups(ingress("redis-from-app", 6379, source="sg-app", group="sg-redis"),
                 ingress("redis-from-workers", 6379, source="sg-workers", group="sg-redis"),
                 ingress("db-from-pgbouncer", 5432, source="sg-pgbouncer", group="sg-db"),
                 ingress("app-from-lb", 80, source="sg-lb", group="sg-app"))),
    ("data-tier-sources", "address-range",
     data_groups(ingress("db-from-vpc", 5432, cidr="10.0.0.0/16", group="sg-db")),
     data_groups(res(SG_INGRESS, "db-from-eks", refs={"securityGroupId": ["sg-db"], "referencedSecurityGroupId": ["eks"]},
                     securityGroupId="sg-db", ipProtocol="tcp", fromPort=5432.0, toPort=5432.0,
                     referencedSecurityGroupId="sg-cluster", tags=TAGS))),
    ("data-tier-egress", "all-to-internet",
     data_groups(egress("db-egress", "sg-db"), egress("redis-egress", "sg-redis", protocol="tcp")),
     data_groups(egress("app-egress", "sg-app"), egress("pgbouncer-egress", "sg-pgbouncer"))),
    ("database-tls-mode", "rds-require",
     [config_map(**{"app.env": f"DATABASE_URL=postgres://app@{RDS_HOST}:5432/app?sslmode=require"}),
      job(f"host={RDS_HOST} port=5432 dbname=app sslmode=require"),
      config_map(**{"pgbouncer.ini": PGBOUNCER_INI.format(mode="require")})],
     [config_map(**{"app.env": f"DATABASE_URL=postgres://app@{RDS_HOST}:5432/app?sslmode=verify-full"}),
      job(f"host={RDS_HOST} port=5432 dbname=app sslmode=verify-full sslrootcert=/etc/rds-ca/rds-ca.pem"),
      config_map(**{"pgbouncer.ini": PGBOUNCER_INI.format(mode="verify-full")})]),
    ("database-tls-mode", "pgbouncer-prefer",
     [external_secret("postgres://{{ .u | urlquery }}:{{ .p | urlquery }}@" + PGB_HOST + ":6432/app?sslmode=prefer"),
      external_secret("postgres://{{ .u | urlquery }}:{{ .p | urlquery }}@" + PGB_HOST + ":6432/app")],
     [external_secret("postgres://{{ .u | urlquery }}:{{ .p | urlquery }}@" + PGB_HOST
                      + ":6432/app?sslmode=require&uselibpqcompat=true")]),
    ("database-tls-mode", "hosts-direct-require",
     [instance(userData=BOOT.format(mode="require")), launch_template(userData=b64(BOOT.format(mode="disable")))],
     [instance(userData=BOOT.format(mode="verify-full")), launch_template(userData=b64(BOOT.format(mode="verify-full")))]),
    ("no-plaintext-secrets", "user-data", [instance(userData=USER_DATA + "      DB_PASSWORD=hunter2hunter2\n")],
     [instance()]),
    ("no-plaintext-secrets", "launch-template-key",
     [launch_template(userData=b64(USER_DATA + "export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\n"))],
     [launch_template()]),
    ("no-plaintext-secrets", "container-env", [deployment(containers=[container(env=[
        {"name": "DB_PASSWORD", "value": "hunter2hunter2"}])])], [deployment()]),
    ("no-plaintext-secrets", "config-map",
     [config_map(**{"app.env": "DATABASE_URL=postgres://app:s3cr3tpw@db:5432/app"})],
     [config_map(**{"pgbouncer.ini": "[pgbouncer]\nauth_file = /etc/pgbouncer/auth/userlist.txt\n"})]),
]


def findings(rule_name: str, resources: list[rules.Resource]) -> list[str]:
    return [f"{r.name}: {m}" for r, m in rules.apply(rules.by_name(rule_name), resources)]


@pytest.mark.parametrize("rule_name,scenario,violating,compliant",
                         [pytest.param(*case, id=f"{case[0]}/{case[1]}") for case in CASES])
def test_rule_catches_the_violation_and_passes_the_compliant(rule_name, scenario, violating, compliant):
    assert findings(rule_name, violating), f"{rule_name} missed {scenario}"
    assert findings(rule_name, compliant) == []


def test_every_rule_has_a_case_and_reads_like_a_policy():
    names = [r.name for r in rules.RULES]
    assert len(names) >= 25 and len(set(names)) == len(names)
    assert {case[0] for case in CASES} == set(names), "every rule needs a violating and a compliant example"
    for r in rules.RULES:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", r.name)
        assert r.description.endswith(".") and r.remediation, r.name
        assert r.stack or r.types, f"{r.name} checks no resource type"
    advisory = [r.name for r in rules.RULES if r.level != "mandatory"]
    assert advisory == [], "mandatory is the default; advisory needs a reason"


# ---------------------------------------------------------------------------
# The preset stacks


@pytest.mark.parametrize("stack", existing_stacks())
def test_preset_stack_has_no_mandatory_violation(stack):
    violations = offline.mandatory(offline.check(plan(stack)))
    assert violations == [], "\n".join(f"[{v.rule}] {v.type} {v.name}: {v.message}" for v in violations)


def set_path(props: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of props with `a.b.0.c` set to value (None removes it)."""
    out = copy.deepcopy(props)
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    node: Any = out
    for p in parents:
        node = node[p]
    if value is None:
        node.pop(last, None) if isinstance(node, dict) else node.pop(last)
    else:
        node[last] = value
    return out


# (stack, rule, resource type, resource name, input path or option, new value or a function of
# the plan giving it); `None` as the path removes the resource from the plan.
MUTATIONS = [
    ("phase2", "rds-not-public", RDS_INSTANCE, "db", "publiclyAccessible", True),
    ("phase3", "rds-backup-retention", RDS_INSTANCE, "db", "backupRetentionPeriod", 1.0),
    ("phase3", "rds-tls-required", RDS_PARAMS, None, "parameters", [{"name": "rds.force_ssl", "value": "0"}]),
    ("phase1", "elasticache-in-transit-encryption", REDIS_GROUP, "redis", "transitEncryptionEnabled", False),
    ("phase4", "elasticache-noeviction", REDIS_PARAMS, "redis-params-on", "parameters.0.value", "allkeys-lru"),
    ("phase4", "stateful-protected", REDIS_GROUP, "redis", "option:protect", False),
    ("phase2", "imdsv2-required", LAUNCH_TEMPLATE, "fleet-app", "metadataOptions.httpTokens", "optional"),
    ("phase2", "ebs-encrypted", LAUNCH_TEMPLATE, "fleet-workers", "blockDeviceMappings.0.ebs.encrypted", "false"),
    ("phase1", "ebs-encrypted", INSTANCE, "app", "rootBlockDevice.encrypted", False),
    ("phase3", "world-ingress-web-edge-only", SG_INGRESS, "app-from-lb-80", "cidrIpv4", "0.0.0.0/0"),
    ("phase3", "no-ssh-ingress", SG_INGRESS, "db-from-pgbouncer-5432", "fromPort", 22.0),
    ("phase2", "alb-drop-invalid-headers", LB, None, "dropInvalidHeaderFields", False),
    ("phase3", "nlb-internal", LB, "pgbouncer-nlb", "internal", False),
    ("phase2", "data-tier-private", RDS_SUBNETS, None, "subnetIds.0",
     lambda p: p.one(SUBNET, "network-public-0").id),
    ("phase2", "tags-required", "aws:ec2/vpc:Vpc", None, "tags.phase", None),
    ("phase5", "s3-public-access-blocked", BUCKET_PAB, "static-assets", "blockPublicPolicy", False),
    ("phase4", "public-alb-behind-waf", "aws:wafv2/webAclAssociation:WebAclAssociation", "edge-alb-alb", None, None),
    ("phase5", "s3-tls-only", BUCKET_POLICY, "cdn-logs", None, None),
    ("phase5", "s3-encrypted", BUCKET_SSE[0], "static-assets", None, None),
    ("phase5", "stateful-protected", BUCKET, "static-assets", "option:retain", False),
    ("phase5", "cloudfront-oac", DISTRIBUTION, "cdn", "origins.0.originAccessControlId", None),
    ("phase5", "cloudfront-https-only", DISTRIBUTION, "cdn", "orderedCacheBehaviors.0.viewerProtocolPolicy",
     "allow-all"),
    ("phase6", "eks-secrets-encryption", EKS_CLUSTER, None, "encryptionConfig", None),
    ("phase6", "hpa-min-replicas", HPA, None, "spec.minReplicas", 1.0),
    ("phase6", "pdb-for-replicated-deployments", PDB, "apps-app", None, None),
    ("phase6", "k8s-container-resources", DEPLOYMENT, "apps-app",
     "spec.template.spec.containers.0.resources.limits", None),
    ("phase6", "k8s-run-as-non-root", DEPLOYMENT, "apps-workers",
     "spec.template.spec.containers.0.securityContext.runAsNonRoot", False),
    # Issue 15: the paths the program closes, reopened one input at a time.
    ("phase6", "imdsv2-required", LAUNCH_TEMPLATE, "eks-nodes", "metadataOptions.httpPutResponseHopLimit", 2.0),
    ("phase2", "imdsv2-required", LAUNCH_TEMPLATE, "fleet-app", "metadataOptions.httpPutResponseHopLimit", None),
    ("phase5", "cloudfront-https-only", DISTRIBUTION, "cdn", "origins.1.customOriginConfig.originProtocolPolicy",
     "http-only"),
    ("phase6", "eks-public-endpoint-restricted", EKS_CLUSTER, None, "vpcConfig.publicAccessCidrs", ["0.0.0.0/0"]),
    ("phase6", "k8s-no-privilege-escalation", DEPLOYMENT, "apps-pgbouncer", "spec.template.spec.hostPID", True),
    ("phase3", "data-tier-sources", SG_INGRESS, "redis-from-app-6379", "referencedSecurityGroupId",
     lambda p: p.one(SG, "lb-sg").id),
    ("phase3", "data-tier-egress", SG_EGRESS, "app-egress", "securityGroupId", lambda p: p.one(SG, "db-sg").id),
    ("phase4", "stateful-retained", REDIS_GROUP, "redis", "option:retain", False),
    ("phase5", "bucket-guards-retained", BUCKET_PAB, "static-assets", "option:retain", False),
    ("phase6", "database-tls-mode", rules.EXTERNAL_SECRET, "apps-app-credentials",
     "spec.target.template.data.DATABASE_URL",
     lambda p: p.one(rules.EXTERNAL_SECRET, "apps-app-credentials").inputs["spec"]["target"]["template"]["data"][
         "DATABASE_URL"].replace("sslmode=require", "sslmode=prefer")),
]


@pytest.mark.parametrize("stack,rule_name,type_,name,path,value",
                         [pytest.param(*m, id=f"{m[0]}-{m[1]}") for m in MUTATIONS])
def test_mutated_plan_resources_are_caught(stack, rule_name, type_, name, path, value):
    """The plan passes the rule; the same plan with one input or option changed fails it."""
    if stack not in existing_stacks():
        pytest.skip(f"no preset {stack}")
    original = plan(stack)
    rule = rules.by_name(rule_name)
    target = next((r for r in original.resources if r.type == type_ and (name is None or r.name == name)), None)
    assert target is not None, f"{stack} has no {type_} {name or ''}: the table needs updating"
    assert rules.apply(rule, offline.views(original)) == []
    value = value(original) if callable(value) else value
    if path is None:
        resources = [r for r in original.resources if r is not target]
    else:
        if path == "option:protect":
            changed = dataclasses.replace(target, options={**target.options, "protect": value})
        elif path == "option:retain":
            changed = dataclasses.replace(target, options={**target.options, "retainOnDelete": value,
                                                           "protect": False})
        else:
            changed = dataclasses.replace(target, inputs=set_path(target.inputs, path, value))
        resources = [changed if r is target else r for r in original.resources]
    found = rules.apply(rule, offline.views(dataclasses.replace(original, resources=resources)))
    assert found, f"{rule_name} missed the change to {target.name} {path}"


def test_offline_runner_resolves_references_like_property_dependencies():
    stack = rules.Stack(offline.views(plan("phase3")))
    one = {(v.type, v.name): v for v in stack.resources}
    rule = one[SG_INGRESS, "app-from-lb-80"]
    assert stack.refs(rule, "securityGroupId") == [one[SG, "app-sg"]]
    assert stack.refs(rule, "referencedSecurityGroupId") == [one[SG, "lb-sg"]]
    subnets = stack.refs(one[RDS_SUBNETS, "db-subnets"], "subnetIds", SUBNET)
    assert sorted(s.name for s in subnets) == ["network-private-0", "network-private-1"]
    assert one[RDS_INSTANCE, "db"].protect and one[RDS_INSTANCE, "db"].retain_on_delete
    redis_group = next(v for v in stack.resources if v.type == REDIS_GROUP)
    assert isinstance(redis_group.props["authToken"], str), "secrets are unwrapped, as CrossGuard sees them"


# ---------------------------------------------------------------------------
# The CrossGuard pack, served the way the Pulumi CLI runs it


def sdk_accepts_tags(type_: str) -> bool:
    """Whether pulumi-aws's resource class for `type_` takes `tags`."""
    module, cls = type_.split(":")[1].split("/")[0], type_.split(":")[2]
    args = getattr(importlib.import_module(f"pulumi_aws.{module}"), f"{cls}Args")
    return "tags" in inspect.signature(args.__init__).parameters


def test_taggable_types_follow_the_pulumi_aws_schema():
    seen = {r.type for s in existing_stacks() for r in plan(s).resources if r.type.startswith("aws:")}
    for type_ in sorted(seen | rules.TAGGABLE):
        assert sdk_accepts_tags(type_) == (type_ in rules.TAGGABLE), type_


def test_pack_files_use_the_repo_pins():
    pack = yaml.safe_load((REPO / "policy" / "PulumiPolicy.yaml").read_text())
    project = yaml.safe_load((REPO / "Pulumi.yaml").read_text())
    assert pack["runtime"]["name"] == "python"
    assert (REPO / "policy" / pack["runtime"]["options"]["virtualenv"]).resolve() == \
        (REPO / project["runtime"]["options"]["virtualenv"]).resolve(), "the pack runs in the project's venv"
    pins = {line.split("==")[0].lower() for line in (REPO / "requirements.txt").read_text().splitlines()
            if "==" in line and not line.startswith("#")}
    lines = [line.strip() for line in (REPO / "policy" / "requirements.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert "-c ../requirements.txt" in lines, "versions come from the repo's requirements.txt"
    names = [line for line in lines if not line.startswith("-")]
    assert names and all(n.lower() in pins and "=" not in n for n in names), names


@pytest.fixture(scope="module")
def pack():
    """The pack started as the CLI starts it: `python -m pulumi.policy ENGINE .` in policy/."""
    import grpc
    from pulumi.runtime.proto import analyzer_pb2_grpc

    proc = subprocess.Popen([sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:1", "."],
                            cwd=REPO / "policy", stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = proc.stdout.readline().strip()
        assert port.isdigit(), proc.stderr.read() if proc.poll() is not None else f"no port: {port!r}"
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(channel).result(timeout=20)
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
        channel.close()
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_pack_module_builds_one_policy_per_rule():
    module = importlib.import_module("policy.__main__")  # not "__main__": the pack is not started
    assert [p.name for p in module.policies()] == [r.name for r in rules.RULES]


def _struct(props: dict[str, Any]):
    from google.protobuf import struct_pb2

    s = struct_pb2.Struct()
    s.update(props)
    return s


def test_pack_serves_every_rule_with_its_level(pack):
    from google.protobuf import empty_pb2
    from pulumi.runtime.proto import analyzer_pb2

    info = pack.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == "scaleladder"
    served = {p.name: p for p in info.policies}
    assert list(served) == [r.name for r in rules.RULES]
    for r in rules.RULES:
        p = served[r.name]
        assert p.description == r.description and p.remediation_steps == r.remediation
        assert p.enforcementLevel == (analyzer_pb2.MANDATORY if r.level == "mandatory" else analyzer_pb2.ADVISORY)
        assert p.policy_type == (analyzer_pb2.POLICY_TYPE_STACK if r.stack else analyzer_pb2.POLICY_TYPE_RESOURCE)


def test_pack_reports_a_violating_resource_and_passes_a_compliant_one(pack):
    from pulumi.runtime.proto import analyzer_pb2

    def analyze(r: rules.Resource, protect: bool = False):
        return pack.Analyze(analyzer_pb2.AnalyzeRequest(
            type=r.type, name=r.name, urn=r.urn, properties=_struct(dict(r.props)),
            options=analyzer_pb2.AnalyzerResourceOptions(protect=protect)))

    bad = analyze(rds(publiclyAccessible=True, storageEncrypted=False), protect=True)
    assert {d.policyName for d in bad.diagnostics} == {"rds-not-public", "rds-storage-encrypted"}
    assert all(d.enforcementLevel == analyzer_pb2.MANDATORY for d in bad.diagnostics)
    assert not analyze(rds(), protect=True).diagnostics
    assert {d.policyName for d in analyze(rds()).diagnostics} == {"stateful-protected"}, "protect reaches the rules"


def test_pack_in_preview_treats_unknown_values_as_pulumi_does(pack):
    """An unknown (computed) token is 'set'; a rule that must read an unknown value is
    reported as not runnable during preview (advisory), not as a violation."""
    from pulumi.runtime.proto import analyzer_pb2

    unknown = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # the engine's unknown-string sentinel
    group = redis(authToken=unknown)
    resp = pack.Analyze(analyzer_pb2.AnalyzeRequest(type=group.type, name=group.name, urn=group.urn,
                                                    properties=_struct(dict(group.props)),
                                                    options=analyzer_pb2.AnalyzerResourceOptions(protect=True)))
    assert not resp.diagnostics
    lt = launch_template(userData=unknown)
    resp = pack.Analyze(analyzer_pb2.AnalyzeRequest(type=lt.type, name=lt.name, urn=lt.urn,
                                                    properties=_struct(dict(lt.props))))
    # both rules that read user data (secrets, database TLS mode) say they cannot run yet
    assert sorted((d.policyName, d.enforcementLevel) for d in resp.diagnostics) == [
        ("database-tls-mode", analyzer_pb2.ADVISORY), ("no-plaintext-secrets", analyzer_pb2.ADVISORY)]
    assert all("during preview" in d.message for d in resp.diagnostics)


def test_pack_stack_policies_join_resources_by_property_dependencies(pack):
    from pulumi.runtime.proto import analyzer_pb2

    def stack_request(resources: list[rules.Resource]):
        return analyzer_pb2.AnalyzeStackRequest(resources=[analyzer_pb2.AnalyzerResource(
            type=r.type, name=r.name, urn=r.urn, properties=_struct(dict(r.props)),
            options=analyzer_pb2.AnalyzerResourceOptions(protect=r.protect),
            propertyDependencies={k: analyzer_pb2.AnalyzerPropertyDependencies(urns=list(v))
                                  for k, v in r.refs.items()}) for r in resources])

    ok = pack.AnalyzeStack(stack_request(bucket_set(block=ALL_BLOCKED)))
    assert not ok.diagnostics
    bad = pack.AnalyzeStack(stack_request(bucket_set(block=None, sse=False)))
    assert {(d.policyName, d.urn) for d in bad.diagnostics} == {
        ("s3-public-access-blocked", urn("assets")), ("s3-encrypted", urn("assets"))}


def test_retain_on_delete_is_checked_offline_because_crossguard_cannot_see_it(pack):
    from pulumi.runtime.proto import analyzer_pb2

    bucket = res(BUCKET, "assets", retain=None, tags=TAGS)
    resp = pack.Analyze(analyzer_pb2.AnalyzeRequest(type=bucket.type, name=bucket.name, urn=bucket.urn,
                                                    properties=_struct(dict(bucket.props))))
    assert not resp.diagnostics
    assert "stateful-protected" in {n.policy_name for n in resp.not_applicable}
    assert findings("stateful-protected", [res(BUCKET, "assets", retain=False, tags=TAGS)])


# ---------------------------------------------------------------------------
# The CLI


def test_cli_policy_command(capsys):
    assert cli.main(["policy", "phase1"]) == 0
    assert "phase1:" in capsys.readouterr().out
    assert cli.main(["policy", "--rules"]) == 0
    out = capsys.readouterr().out
    assert all(f"{r.name}" in out for r in rules.RULES) and f"{len(rules.RULES)} rules" in out
