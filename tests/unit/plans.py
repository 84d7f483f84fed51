"""Plans of the preset stacks (and variations) for the unit tests, cached per run.

A plan takes seconds (phase 6: ~8 s on CI's cores) and many tests read the same one. Each
process keeps its plans in memory; under pytest-xdist the workers also share them through a
directory the controller makes for the run (tests/conftest.py sets PLAN_CACHE_ENV), so a
plan is computed once per run. The file's name carries a digest of every program source
(source_digest), so a plan from code that has since changed is never read.
"""

from __future__ import annotations

import copy
import fcntl
import hashlib
import json
import os
import pickle
import sys
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from ladder import engine, userdata
from ladder.phases import deep_merge

STATEFUL = {"aws:rds/instance:Instance", "aws:elasticache/replicationGroup:ReplicationGroup",
            "aws:s3/bucket:Bucket"}


def stack_values(stack: str, **overrides: Any) -> dict[str, Any]:
    """The preset stack's config with `scaleladder:<key>` overrides deep-merged in."""
    values = copy.deepcopy(engine.read_stack(stack))
    for key, value in overrides.items():
        full = f"scaleladder:{key}"
        if isinstance(value, dict) and isinstance(values.get(full), dict):
            values[full] = deep_merge(values[full], value)
        else:
            values[full] = value
    return values


PLAN_CACHE_ENV = "SCALELADDER_PLAN_CACHE"  # the run's shared plan directory (set by tests/conftest.py)
_run = engine.run  # the real engine, as imported: a test that monkeypatches engine.run must not fill the cache
# What a plan is made from: everything in the repository but these (tests, docs, tools' caches);
# a new top-level folder counts until it is listed here, so a missed input cannot make a stale plan.
_NOT_PROGRAM = {"tests", "docs", "bench", "node_modules", "__pycache__"}


# The installed packages a plan is made from (requirements.txt pins them): they live in .venv, which
# the walk below skips, and a provider upgrade can change the inputs a resource gets by default.
PROGRAM_PACKAGES = ("pulumi", "pulumi-aws", "pulumi-kubernetes", "pulumi-random")


def installed_versions() -> str:
    """`name==version` of each PROGRAM_PACKAGES entry as installed (importlib.metadata)."""
    return "\n".join(f"{name}=={metadata.version(name)}" for name in PROGRAM_PACKAGES)


@cache
def source_digest(root: Path = engine.REPO) -> str:
    """sha256 over the program's files (path and content), this helper, the Python version and the
    installed Pulumi packages' versions, so a kept cache directory never serves a plan made by other
    code or another provider. Rule: no plan() under a monkeypatch of module state (it would be stored
    for every worker); a monkeypatched engine.run is safe (_run is the engine as imported)."""
    h = hashlib.sha256(sys.version.encode() + Path(__file__).read_bytes() + installed_versions().encode())
    files: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in _NOT_PROGRAM)
        files += [Path(dirpath, f) for f in sorted(filenames) if not f.endswith(".pyc")]
    for path in files:
        h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:20]


def _shared(stack: str, overrides_json: str) -> engine.Plan:
    """The plan from the run's directory, computing and storing it under a lock if no worker has."""
    directory = Path(os.environ[PLAN_CACHE_ENV])
    key = hashlib.sha256(f"{source_digest()}\0{stack}\0{overrides_json}".encode()).hexdigest()[:32]
    path = directory / f"{stack}-{key}.pickle"
    with open(directory / f"{stack}-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one worker computes; the others wait, then read its file
        if path.exists():
            return pickle.loads(path.read_bytes())
        p = _run(stack, values=stack_values(stack, **json.loads(overrides_json)))  # a refusal raises: not stored
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(pickle.dumps(p, protocol=pickle.HIGHEST_PROTOCOL))
        tmp.replace(path)
        return p


@cache
def _cached(stack: str, overrides_json: str) -> engine.Plan:
    if os.environ.get(PLAN_CACHE_ENV):
        return _shared(stack, overrides_json)
    return _run(stack, values=stack_values(stack, **json.loads(overrides_json)))


def plan(stack: str, **overrides: Any) -> engine.Plan:
    return _cached(stack, json.dumps(overrides, sort_keys=True))


def plan_json(stack: str, **overrides: Any) -> dict[str, Any]:
    """The plan as `ladder.diff.load(stack)` reads it (`plan --json`: the same resources, their
    order aside), from the shared cache instead of a fresh run per process."""
    return json.loads(json.dumps(plan(stack, **overrides).to_json()))


@cache
def _after(stack: str, previous_json: str, overrides_json: str) -> engine.Plan:
    return engine.run(stack, values=stack_values(stack, **json.loads(overrides_json)),
                      previous_outputs=json.loads(previous_json))


def plan_after(stack: str, previous: dict[str, Any], **overrides: Any) -> engine.Plan:
    """The plan of an `up` on a stack whose last `up` recorded `previous` (its outputs), cached per process."""
    return _after(stack, json.dumps(previous, sort_keys=True, default=str), json.dumps(overrides, sort_keys=True))


def existing_stacks() -> list[str]:
    return engine.stack_names()


def user_data_texts(p: engine.Plan) -> dict[str, str]:
    """Every host's user data as cloud-init reads it, by resource name (instances carry it gzip
    in `userDataBase64`, launch templates in `userData`, both base64: ladder.userdata.encode)."""
    return {name: userdata.decode(v) for name, v in user_data_encoded(p).items()}


def user_data_encoded(p: engine.Plan) -> dict[str, str]:
    """Every host's user data as the plan hands it to EC2 (base64), by resource name."""
    out = {}
    for r in p.resources:
        if r.type == "aws:ec2/instance:Instance":
            assert "userData" not in r.inputs, f"{r.name}: plain userData cannot carry gzip (use userDataBase64)"
            if "userDataBase64" in r.inputs:
                out[r.name] = r.inputs["userDataBase64"]
        elif r.type == "aws:ec2/launchTemplate:LaunchTemplate" and "userData" in r.inputs:
            out[r.name] = r.inputs["userData"]
    return out


def sg_tiers(p: engine.Plan) -> dict[str, str]:
    """security group id -> tier name (from the Firewall's `<tier>-sg` groups, and "eks" for
    the EKS cluster security group, the external tier phase 6's pods run in)."""
    tiers = {r.id: r.name.removesuffix("-sg") for r in p.of_type("aws:ec2/securityGroup:SecurityGroup")}
    for cluster in p.of_type("aws:eks/cluster:Cluster"):
        tiers[cluster.state["vpcConfig"]["clusterSecurityGroupId"]] = "eks"
    return tiers


def ingress(p: engine.Plan) -> set[tuple[str, int, str]]:
    """(receiving tier, port, source tier or CIDR) for every ingress rule in the plan."""
    tiers = sg_tiers(p)
    rules = set()
    for r in p.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"):
        i = r.inputs
        assert i["fromPort"] == i["toPort"], f"{r.name} opens a port range"
        source = i.get("cidrIpv4") or tiers.get(i.get("referencedSecurityGroupId"), i.get("referencedSecurityGroupId"))
        rules.add((tiers.get(i["securityGroupId"], i["securityGroupId"]), int(i["fromPort"]), source))
    return rules


scan_strings = engine.strings


# Where a secret-marked value may go: the RDS master password, the Redis AUTH token, their
# Secrets Manager copies. Never user data, tags, a Kubernetes object or an output.
SECRET_HOLDERS = {("aws:rds/instance:Instance", "password"),
                  ("aws:secretsmanager/secretVersion:SecretVersion", "secretString"),
                  ("aws:elasticache/replicationGroup:ReplicationGroup", "authToken"),
                  # The origin header CloudFront sends and the load balancer checks (components/cdn.py
                  # OriginVerify): a secret input, so encrypted in the state. The Ingress annotation is a
                  # plain field in the cluster (see README, security decisions).
                  ("aws:cloudfront/distribution:Distribution", "origins[1].customHeaders[0].value"),
                  ("aws:lb/listenerRule:ListenerRule", "conditions[0].httpHeader.values[0]"),
                  ("kubernetes:networking.k8s.io/v1:Ingress",
                   "metadata.annotations.alb.ingress.kubernetes.io/conditions.app")}


def secret_paths(value: Any, path: str = "") -> Any:
    """The input paths (`a.b[0]`) of every secret-marked value inside `value`."""
    if isinstance(value, engine.Secret):
        yield path
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from secret_paths(v, f"{path}.{k}" if path else k)
    elif isinstance(value, list):
        for n, v in enumerate(value):
            yield from secret_paths(v, f"{path}[{n}]")
