"""Pulumi mocks that answer like AWS would: plausible ids, ARNs and endpoints.

Calls (invokes) the program makes must be known here; an unknown one fails loudly
(`Mock not implemented: <token>`) so a new lookup cannot slip through as an empty
answer. Resource types get generic ids/ARNs plus the computed outputs the program
reads from them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import pulumi

from .aws_facts import CLOUDFRONT_LOG_DELIVERY_CANONICAL_ID, CLOUDFRONT_MANAGED_POLICIES
from .credentials import INITIAL_APP_RW_LOGIN

ACCOUNT_ID = "123456789012"
CANONICAL_USER_ID = hashlib.sha256(ACCOUNT_ID.encode()).hexdigest()
# What the mocked Secrets Manager answers for a database login: tests look for it in every
# recorded input, rendered file and output to prove it never appears in the clear.
MOCK_DB_PASSWORD = "MockDbPassword-" + hashlib.sha256(b"rds").hexdigest()[:20]
# Every RandomPassword result starts with this (the master, app and PgBouncer passwords, the
# Redis token): a scan for it finds any generated password that reached a plain-text input.
MOCK_PASSWORD_PREFIX = "MockPw"


def _short(seed: str, n: int = 17) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[:n]


def _cloudfront_policy(args: dict[str, Any], prefix: str) -> dict[str, Any]:
    """Managed policies answer with their real ids; an unknown Managed-* name fails as AWS would."""
    name = args.get("name") or ""
    if name in CLOUDFRONT_MANAGED_POLICIES:
        return {"id": CLOUDFRONT_MANAGED_POLICIES[name], "name": name}
    if name.startswith("Managed-"):
        raise ValueError(f"no CloudFront managed policy named {name!r}")
    return {"id": prefix + _short(name), "name": name}


def _session_context(arn: str) -> dict[str, Any]:
    """An assumed-role session ARN -> the role's ARN (what access entries take); others as is."""
    issuer = arn
    if ":assumed-role/" in arn:
        account = arn.split(":")[4]
        role = arn.split(":assumed-role/")[1].split("/")[0]
        issuer = f"arn:aws:iam::{account}:role/{role}"
    return {"arn": arn, "issuerArn": issuer, "issuerId": "AROAEXAMPLE", "issuerName": issuer.rsplit("/", 1)[-1],
            "sessionName": "", "id": arn}


def _managed_prefix_list(region: str, name: str) -> dict[str, Any]:
    """An AWS-managed prefix list (e.g. com.amazonaws.global.cloudfront.origin-facing): a pl- id per region."""
    pl = "pl-" + _short(f"{region}:{name}", 8)
    return {"id": pl, "name": name, "addressFamily": "IPv4", "arn": f"arn:aws:ec2:{region}:aws:prefix-list/{pl}",
            "entries": [], "maxEntries": 55, "ownerId": "AWS", "version": 1, "tags": {}}


def k8s_autoname(name: str) -> str:
    """metadata.name the Kubernetes provider gives an object that sets none (logical name + suffix)."""
    return f"{name}-{_short('k8s' + name, 8)}"


# id prefixes AWS uses, by resource type.
_ID_PREFIX = {
    "aws:ec2/vpc:Vpc": "vpc-",
    "aws:ec2/subnet:Subnet": "subnet-",
    "aws:ec2/securityGroup:SecurityGroup": "sg-",
    "aws:ec2/internetGateway:InternetGateway": "igw-",
    "aws:ec2/natGateway:NatGateway": "nat-",
    "aws:ec2/eip:Eip": "eipalloc-",
    "aws:ec2/routeTable:RouteTable": "rtb-",
    "aws:ec2/instance:Instance": "i-",
    "aws:ec2/launchTemplate:LaunchTemplate": "lt-",
    "aws:ec2/vpcEndpoint:VpcEndpoint": "vpce-",
}


def deployed_from_outputs(previous_outputs: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """What AWS reports for the stateful resources the last outputs name, when a test gives no
    `deployed` state of its own: the outputs' values (AWS and the outputs agree)."""
    out: dict[str, dict[str, Any]] = {}
    group, ident = previous_outputs.get("redisGroupId"), previous_outputs.get("dbIdentifier")
    if group:
        out["redis"] = {k: v for k, v in (("clusterMode", previous_outputs.get("redisClusterMode")),
                                          ("engineVersion", previous_outputs.get("redisEngineVersion")),
                                          ("engine", previous_outputs.get("redisEngine"))) if v}
    if ident:
        out["db"] = {k: v for k, v in (("allocatedStorage", previous_outputs.get("dbStorageGb")),
                                       ("engineVersion", previous_outputs.get("dbEngineVersion"))) if v}
    return out


class AwsMocks(pulumi.runtime.Mocks):
    """`previous_outputs` answer the stack's StackReference to itself; `deployed` is what AWS
    reports for the resources those outputs name (`redisGroupId`, `dbIdentifier`), by kind:
    {"redis": {clusterMode, engineVersion, nodeType, numNodeGroups, replicasPerNodeGroup,
    numCacheClusters ...}, "db": {allocatedStorage, engineVersion, storageEncrypted ...}}.
    A test makes AWS and the outputs disagree (an `up` that failed half-way) by giving both."""

    def __init__(self, region: str, previous_outputs: dict[str, Any] | None = None,
                 deployed: dict[str, dict[str, Any]] | None = None):
        self.region = region
        self.previous_outputs = previous_outputs or {}
        known = deployed_from_outputs(self.previous_outputs)
        self.deployed = {kind: {**known.get(kind, {}), **state} for kind, state in {**known, **(deployed or {})}.items()}

    def _deployed(self, kind: str, ident: str, what: str) -> dict[str, Any]:
        if kind not in self.deployed:  # AWS answers "not found", and the provider fails the invoke
            raise ValueError(f"{what} {ident!r} not found")
        return self.deployed[kind]

    def _replication_group(self, a: dict[str, Any]) -> dict[str, Any]:
        gid = a["replicationGroupId"]
        state = {"clusterMode": "disabled", "numCacheClusters": 1, **self._deployed("redis", gid, "replication group")}
        enabled = state["clusterMode"] == "enabled"
        shards = int(state.get("numNodeGroups", 1))
        replicas = int(state.get("replicasPerNodeGroup", int(state["numCacheClusters"]) - 1))
        members = ([f"{gid}-{s:04d}-{n:03d}" for s in range(1, shards + 1) for n in range(1, replicas + 2)] if enabled
                   else [f"{gid}-{n:03d}" for n in range(1, replicas + 2)])
        return {"id": gid, "replicationGroupId": gid, "arn": f"arn:aws:elasticache:{self.region}:{ACCOUNT_ID}:"
                f"replicationgroup:{gid}", "nodeType": "cache.m6g.large", "automaticFailoverEnabled": replicas > 0,
                "multiAzEnabled": replicas > 0, "numNodeGroups": shards, "replicasPerNodeGroup": replicas,
                "numCacheClusters": len(members), "memberClusters": members, "port": 6379, **state}

    def _cache_cluster(self, a: dict[str, Any]) -> dict[str, Any]:
        cid = a["clusterId"]
        state = self._deployed("redis", cid, "cache cluster")
        return {"id": cid, "clusterId": cid, "engine": "redis",
                **{k: v for k, v in state.items() if k in ("engineVersion", "engine")}}

    def _db_instance(self, a: dict[str, Any]) -> dict[str, Any]:
        ident = a["dbInstanceIdentifier"]
        state = self._deployed("db", ident, "DB instance")
        return {"id": ident, "dbInstanceIdentifier": ident, "engine": "postgres", "storageEncrypted": True, **state}

    # -- invokes -------------------------------------------------------------
    def call(self, args: pulumi.runtime.MockCallArgs):
        handler = self._calls().get(args.token)
        if handler is None:
            raise NotImplementedError(f"Mock not implemented: {args.token}")
        return handler(args.args)

    def _calls(self) -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
        r = self.region
        return {
            "aws:index/getAvailabilityZones:getAvailabilityZones": lambda a: {
                "names": [f"{r}a", f"{r}b", f"{r}c"],
                "zoneIds": [f"use1-az{i}" for i in (1, 2, 4)],
                "id": r,
            },
            "aws:ssm/getParameter:getParameter": lambda a: {
                "name": a["name"],
                "type": "String",
                "value": "ami-0" + _short(a["name"], 16),
                "arn": f"arn:aws:ssm:{r}::parameter{a['name']}",
                "id": a["name"],
            },
            "aws:index/getCallerIdentity:getCallerIdentity": lambda a: {
                "accountId": ACCOUNT_ID,
                "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/ci",
                "userId": "AIDAEXAMPLE",
                "id": ACCOUNT_ID,
            },
            "aws:index/getPartition:getPartition": lambda a: {
                "partition": "aws",
                "dnsSuffix": "amazonaws.com",
                "id": "aws",
            },
            "aws:index/getRegion:getRegion": lambda a: {"name": r, "region": r, "id": r},
            "aws:cloudfront/getCachePolicy:getCachePolicy": lambda a: _cloudfront_policy(a, "cp-"),
            "aws:cloudfront/getOriginRequestPolicy:getOriginRequestPolicy": lambda a: _cloudfront_policy(a, "orp-"),
            "aws:cloudfront/getResponseHeadersPolicy:getResponseHeadersPolicy": lambda a: _cloudfront_policy(a, "rhp-"),
            "aws:cloudfront/getLogDeliveryCanonicalUserId:getLogDeliveryCanonicalUserId": lambda a: {
                "id": CLOUDFRONT_LOG_DELIVERY_CANONICAL_ID,
            },
            "aws:s3/getCanonicalUserId:getCanonicalUserId": lambda a: {"id": CANONICAL_USER_ID, "displayName": ""},
            "aws:ec2/getManagedPrefixList:getManagedPrefixList": lambda a: _managed_prefix_list(r, a.get("name") or ""),
            "aws:iam/getSessionContext:getSessionContext": lambda a: _session_context(a["arn"]),
            # The deployed stateful resources (components/deployed.py), as AWS reports them.
            "aws:elasticache/getReplicationGroup:getReplicationGroup": self._replication_group,
            "aws:elasticache/getCluster:getCluster": self._cache_cluster,
            "aws:rds/getInstance:getInstance": self._db_instance,
            # A database login secret ({"username", "password"}, ladder/credentials.py layouts).
            "aws:secretsmanager/getSecretVersion:getSecretVersion": lambda a: {
                "arn": a["secretId"], "id": f"{a['secretId']}|AWSCURRENT", "secretId": a["secretId"],
                "secretString": json.dumps({"username": INITIAL_APP_RW_LOGIN, "password": MOCK_DB_PASSWORD}),
                "versionId": "v-" + _short(a["secretId"], 12), "versionStage": "AWSCURRENT",
                "versionStages": ["AWSCURRENT"], "createdDate": "2026-01-01T00:00:00Z",
            },
        }

    # -- resources -----------------------------------------------------------
    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        typ, name, inputs = args.typ, args.name, dict(args.inputs)
        if typ == "pulumi:pulumi:StackReference":
            return f"{name}", {"name": name, "outputs": self.previous_outputs, "secretOutputNames": []}
        rid = _ID_PREFIX.get(typ, "") + _short(f"{typ}:{name}")
        service = typ.split(":")[1].split("/")[0] if ":" in typ else "x"
        state: dict[str, Any] = {
            **inputs,
            "arn": f"arn:aws:{service}:{self.region}:{ACCOUNT_ID}:{name}",
            "tagsAll": inputs.get("tags", {}),
        }
        if "name" not in inputs:  # Pulumi auto-names: logical name plus a random suffix
            state["name"] = f"{name}-{_short('n' + name, 7)}"
        extra = self._computed(typ, name, inputs)
        state.update(extra)
        return rid, state

    def _computed(self, typ: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        r, h = self.region, _short(name, 12)
        if typ == "aws:rds/instance:Instance":
            ident = inputs.get("identifier") or f"{name}-{h[:7]}"
            address = f"{ident}.c{h}.{r}.rds.amazonaws.com"
            port = inputs.get("port", 5432)
            secrets = []
            if inputs.get("manageMasterUserPassword"):
                secrets = [{
                    "secretArn": f"arn:aws:secretsmanager:{r}:{ACCOUNT_ID}:secret:rds!db-{h}-AbCdEf",
                    "kmsKeyId": f"arn:aws:kms:{r}:{ACCOUNT_ID}:key/{h}",
                    "secretStatus": "active",
                }]
            return {
                "identifier": ident,
                "address": address,
                "endpoint": f"{address}:{port}",
                "port": port,
                "resourceId": f"db-{h.upper()}",
                "arn": f"arn:aws:rds:{r}:{ACCOUNT_ID}:db:{ident}",
                "masterUserSecrets": secrets,
            }
        if typ == "aws:elasticache/replicationGroup:ReplicationGroup":
            rg = inputs.get("replicationGroupId") or name
            if inputs.get("numNodeGroups"):  # AWS's node names: <group>-SSSS-NNN / <group>-NNN
                members = [f"{rg}-{s:04d}-{n:03d}" for s in range(1, int(inputs["numNodeGroups"]) + 1)
                           for n in range(1, int(inputs.get("replicasPerNodeGroup", 0)) + 2)]
            else:
                members = [f"{rg}-{n:03d}" for n in range(1, int(inputs.get("numCacheClusters", 1)) + 1)]
            return {
                "memberClusters": members,
                "primaryEndpointAddress": f"master.{rg}.{h[:6]}.{r}.cache.amazonaws.com",
                "readerEndpointAddress": f"replica.{rg}.{h[:6]}.{r}.cache.amazonaws.com",
                "configurationEndpointAddress": f"clustercfg.{rg}.{h[:6]}.{r}.cache.amazonaws.com",
                "arn": f"arn:aws:elasticache:{r}:{ACCOUNT_ID}:replicationgroup:{rg}",
            }
        if typ == "aws:lb/loadBalancer:LoadBalancer":
            kind = "app" if inputs.get("loadBalancerType", "application") == "application" else "net"
            return {
                "dnsName": f"{name}-{h[:8]}.{r}.elb.amazonaws.com",
                "arnSuffix": f"{kind}/{name}/{h}",
                "zoneId": "Z35SXDOTRQ7X7K",
                "arn": f"arn:aws:elasticloadbalancing:{r}:{ACCOUNT_ID}:loadbalancer/{kind}/{name}/{h}",
            }
        if typ == "aws:lb/targetGroup:TargetGroup":
            return {
                "arnSuffix": f"targetgroup/{name}/{h}",
                "arn": f"arn:aws:elasticloadbalancing:{r}:{ACCOUNT_ID}:targetgroup/{name}/{h}",
            }
        if typ == "aws:ec2/instance:Instance":
            n = int(h[:4], 16)
            return {"privateIp": f"10.0.{n % 200 + 10}.{n % 250 + 4}", "publicIp": "", "primaryNetworkInterfaceId": "eni-" + h}
        if typ == "aws:ec2/eip:Eip":
            n = int(h[:4], 16)
            ip = f"203.0.113.{n % 250 + 1}"
            return {"publicIp": ip, "allocationId": "eipalloc-" + h,
                    "publicDns": f"ec2-{ip.replace('.', '-')}.compute-1.amazonaws.com"}
        if typ == "aws:ec2/launchTemplate:LaunchTemplate":
            return {"latestVersion": 1, "defaultVersion": 1}
        if typ == "aws:autoscaling/group:Group":
            return {"name": inputs.get("name") or f"{name}-{h[:7]}"}
        if typ in ("aws:iam/role:Role", "aws:iam/instanceProfile:InstanceProfile", "aws:iam/policy:Policy"):
            kind = typ.split(":")[-1].lower().replace("instanceprofile", "instance-profile")
            return {"name": f"{name}-{h[:7]}", "arn": f"arn:aws:iam::{ACCOUNT_ID}:{kind}/{name}-{h[:7]}"}
        if typ == "aws:secretsmanager/secret:Secret":
            return {"arn": f"arn:aws:secretsmanager:{r}:{ACCOUNT_ID}:secret:{name}-{h[:6]}"}
        if typ == "aws:ssm/parameter:Parameter":
            return {"arn": f"arn:aws:ssm:{r}:{ACCOUNT_ID}:parameter{inputs.get('name') or '/' + name}"}
        if typ == "aws:cloudwatch/logGroup:LogGroup":  # the provider strips the API's trailing ":*"
            group = inputs.get("name") or f"{name}-{h[:7]}"
            return {"name": group, "arn": f"arn:aws:logs:{r}:{ACCOUNT_ID}:log-group:{group}"}
        if typ == "aws:wafv2/webAcl:WebAcl":  # <regional|global>/webacl/<name>/<id> (aws-load-balancer-controller
            # docs/guide/ingress/annotations.md, wafv2-acl-arn example); CLOUDFRONT scope lives in us-east-1
            cloudfront = inputs.get("scope") == "CLOUDFRONT"
            return {"arn": f"arn:aws:wafv2:{'us-east-1' if cloudfront else r}:{ACCOUNT_ID}:"
                           f"{'global' if cloudfront else 'regional'}/webacl/{inputs.get('name') or name}/{h[:8]}"}
        if typ == "aws:sns/topic:Topic":
            return {"arn": f"arn:aws:sns:{r}:{ACCOUNT_ID}:{name}-{h[:7]}"}
        if typ == "aws:kms/key:Key":
            return {"arn": f"arn:aws:kms:{r}:{ACCOUNT_ID}:key/{h}", "keyId": h}
        if typ == "random:index/randomString:RandomString":
            return {"result": _short("rs" + name, int(inputs.get("length", 8))).lower()}
        if typ == "random:index/randomPassword:RandomPassword":
            length = max(int(inputs.get("length", 32)), len(MOCK_PASSWORD_PREFIX) + 8)
            return {"result": MOCK_PASSWORD_PREFIX + _short("pw" + name, length - len(MOCK_PASSWORD_PREFIX)),
                    "bcryptHash": "$2a$10$" + _short(name, 53)}
        if typ in ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2"):
            bucket = inputs.get("bucket") or f"{name}-{h[:8]}"
            return {
                "bucket": bucket,
                "arn": f"arn:aws:s3:::{bucket}",
                "bucketRegionalDomainName": f"{bucket}.s3.{r}.amazonaws.com",
                "bucketDomainName": f"{bucket}.s3.amazonaws.com",
            }
        if typ == "aws:cloudfront/distribution:Distribution":
            return {"domainName": f"d{h[:12]}.cloudfront.net", "hostedZoneId": "Z2FDTNDATAQYW2",
                    "arn": f"arn:aws:cloudfront::{ACCOUNT_ID}:distribution/E{h[:12].upper()}"}
        if typ == "aws:cloudfront/originAccessControl:OriginAccessControl":
            return {"etag": h}
        if typ == "aws:eks/cluster:Cluster":
            return {
                "endpoint": f"https://{h.upper()}.gr7.{r}.eks.amazonaws.com",
                "certificateAuthority": {"data": "TU9DSy1DQQ=="},
                "identities": [{"oidcs": [{"issuer": f"https://oidc.eks.{r}.amazonaws.com/id/{h.upper()}"}]}],
                "arn": f"arn:aws:eks:{r}:{ACCOUNT_ID}:cluster/{inputs.get('name', name)}",
                "name": inputs.get("name") or f"{name}-{h[:7]}",
                "vpcConfig": {**inputs.get("vpcConfig", {}), "clusterSecurityGroupId": "sg-" + h},
            }
        if typ == "aws:eks/nodeGroup:NodeGroup":
            return {"resources": [{"autoscalingGroups": [{"name": f"eks-{name}-{h[:8]}"}]}]}
        if typ.startswith("kubernetes:") and typ != "kubernetes:helm.sh/v3:Release":
            metadata = dict(inputs.get("metadata") or {})
            metadata.setdefault("name", k8s_autoname(name))
            out: dict[str, Any] = {"metadata": metadata}
            if typ == "kubernetes:networking.k8s.io/v1:Ingress":
                # The AWS Load Balancer Controller writes the ALB's DNS name into the status.
                alb = f"k8s-{metadata.get('namespace', 'default')[:8]}-{metadata['name'][:8]}-{h[:10]}"
                out["status"] = {"loadBalancer": {"ingress": [{"hostname": f"{alb}-{int(h[:6], 16)}.{r}.elb.amazonaws.com"}]}}
            return out
        if typ == "kubernetes:helm.sh/v3:Release":
            return {"status": {"name": inputs.get("name") or name, "namespace": inputs.get("namespace", "default"),
                               "status": "deployed", "version": inputs.get("version", "")}}
        if typ == "aws:iam/openIdConnectProvider:OpenIdConnectProvider":
            return {"arn": f"arn:aws:iam::{ACCOUNT_ID}:oidc-provider/{inputs.get('url', '').removeprefix('https://')}"}
        return {}
