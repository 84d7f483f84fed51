"""`python -m ladder diff A B`: two offline plans compared resource by resource.

A and B are plan sources (see `load`): a preset stack (`phase2`), a stack at a git
revision (`phase3@origin/main`) or a plan file written by `plan --json`. Resources are
matched by URN; each is added, removed, updated (inputs old -> new, secrets masked) or
replaced (a replace-forcing input changed). Two different stacks are compared as if one
stack climbed: the stack name is normalised to `{stack}`, so only what the phase changes
shows.

What AWS cannot apply in place comes first: the rules of `ladder/inplace.py` (the same the
program checks against the deployed stack) run on every resource both plans have, e.g.
Redis cluster mode `enabled -> disabled` or RDS storage `200 -> 100`; any refusal exits 3
unless `--allow-destroy`.

Stateful resources come next, loudly. A resource is stateful when losing it loses data:
an RDS instance that is not a read replica (a replica holds no data of its own), an
ElastiCache replication group, an S3 bucket, or anything carrying `protect` or
`retainOnDelete`. Outcomes:
- replaced, or removed without `retainOnDelete`: a LOSS. The command exits 3 unless
  `--allow-destroy`. (A replacement is a loss even with `retainOnDelete`: the old copy
  stays in AWS but the stack moves to a new, empty resource.)
- removed with `retainOnDelete`: "removed from the stack, retained in AWS": a warning (the
  data survives, the stack stops managing it), exit 0.
- `protect`/`retainOnDelete` dropped on a stateful resource: a warning.
Values the offline engine cannot know ("<unknown>") never count as a change. Replacement
is decided from the provider's replace-forcing inputs (aws_facts.STATEFUL_REPLACE_FORCING
plus a table for common non-stateful types below) and the resource's `replaceOnChanges`;
the real `pulumi preview --diff` remains the authority on what the provider will do.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from . import engine, inplace, stackconfig
from .aws_facts import STATEFUL_REPLACE_FORCING, STATEFUL_TYPES
from .cli import COMMANDS
from .inplace import Refusal

UNKNOWN = "<unknown>"
STACK_TOKEN = "{stack}"
EXIT_STATEFUL_LOSS = 3  # a stateful resource lost, or a change AWS cannot apply in place

# Inputs whose change makes the AWS provider replace a (non-stateful) resource
# ("Changing this forces a new resource" in the provider docs). Launch templates never are:
# a change makes a new version.
NON_STATEFUL_REPLACE_FORCING: dict[str, frozenset[str]] = {
    "aws:ec2/instance:Instance": frozenset({"ami", "availabilityZone", "subnetId", "keyName", "privateIp", "tenancy",
                                            "placementGroup", "ebsBlockDevices", "networkInterfaces"}),
    "aws:ec2/vpc:Vpc": frozenset({"cidrBlock", "instanceTenancy"}),
    "aws:ec2/subnet:Subnet": frozenset({"vpcId", "cidrBlock", "availabilityZone", "availabilityZoneId"}),
    "aws:ec2/securityGroup:SecurityGroup": frozenset({"name", "namePrefix", "vpcId", "description"}),
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": frozenset({"securityGroupId"}),
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": frozenset({"securityGroupId"}),
    "aws:ec2/natGateway:NatGateway": frozenset({"subnetId", "allocationId", "connectivityType", "privateIp"}),
    "aws:ec2/eip:Eip": frozenset({"address", "publicIpv4Pool", "networkBorderGroup"}),
    "aws:ec2/launchTemplate:LaunchTemplate": frozenset({"name", "namePrefix"}),
    "aws:lb/loadBalancer:LoadBalancer": frozenset({"name", "namePrefix", "internal", "loadBalancerType"}),
    "aws:lb/targetGroup:TargetGroup": frozenset({"name", "namePrefix", "port", "protocol", "vpcId", "targetType",
                                                 "protocolVersion", "ipAddressType"}),
    "aws:autoscaling/group:Group": frozenset({"name", "namePrefix"}),
    "aws:rds/parameterGroup:ParameterGroup": frozenset({"name", "namePrefix", "family", "description"}),
    "aws:rds/subnetGroup:SubnetGroup": frozenset({"name", "namePrefix"}),
    "aws:elasticache/parameterGroup:ParameterGroup": frozenset({"name", "family", "description"}),
    "aws:elasticache/subnetGroup:SubnetGroup": frozenset({"name"}),
    "aws:secretsmanager/secret:Secret": frozenset({"name", "namePrefix"}),
    "aws:cloudwatch/logGroup:LogGroup": frozenset({"name", "namePrefix"}),
    "aws:sns/topic:Topic": frozenset({"name", "namePrefix", "fifoTopic"}),
    "aws:iam/role:Role": frozenset({"name", "namePrefix"}),
    "aws:iam/instanceProfile:InstanceProfile": frozenset({"name", "namePrefix"}),
    "aws:eks/cluster:Cluster": frozenset({"name", "kubernetesNetworkConfig", "bootstrapSelfManagedAddons"}),
    "aws:eks/nodeGroup:NodeGroup": frozenset({"clusterName", "nodeGroupName", "nodeGroupNamePrefix", "nodeRoleArn",
                                              "subnetIds", "instanceTypes", "amiType", "capacityType", "diskSize"}),
}
REPLACE_FORCING = {**NON_STATEFUL_REPLACE_FORCING, **STATEFUL_REPLACE_FORCING}
# Non-stateful replacements that take serving capacity away while they run: named as capacity
# events (a warning, not a loss). An auto-named node group is created anew at its minimum size
# (components/eks.py: desired = min = eks.nodesMin), then the old one is deleted, which EKS drains.
CAPACITY_REPLACE = {
    "aws:eks/nodeGroup:NodeGroup": (
        "node group REPLACED: the new group starts at scalingConfig.minSize nodes, then the old one is drained "
        "and its pods wait Pending while Cluster Autoscaler adds nodes (raise eks.nodesMin for that `up` and "
        "confirm with eks.replaceNodeGroupFrom: ladder/climb_eks.py)"),
}
# Inputs that force replacement only when another input says so.
CONDITIONAL_REPLACE_FORCING = {
    "aws:ec2/instance:Instance": {"userData": "userDataReplaceOnChange", "userDataBase64": "userDataReplaceOnChange"},
}
# Changed inputs a resource's ignoreChanges keeps `pulumi up` from applying, which something else
# applies instead: `ladder diff` names them so the drift is not silent (components/app_host.py
# host_instance: hosts outside Auto Scaling groups never take new user data from an `up`).
APPLIED_ELSEWHERE = {
    ("aws:ec2/instance:Instance", "userDataBase64"):
        "user data not applied by `pulumi up` (ignoreChanges: a host outside an Auto Scaling group is never "
        "replaced for it); Ansible applies what it owns to the running host: ansible/configure.yml (nginx: rate "
        "limit, trusted proxies, the LB's upstreams), deploy.yml (the image), refresh-credentials.yml (credentials); "
        "anything else in the user data (endpoints, STATIC_URL, boot scripts) reaches only a new host",
}


# ---------------------------------------------------------------------------
# Plan sources


class PlanUnavailable(Exception):
    """A plan source could not be evaluated (unknown revision, a plan that fails there ...)."""


class StackMissing(PlanUnavailable):
    """The revision has no file for the stack: the stack is new on the other side, not broken."""


def load(spec: str, root: Path = engine.REPO) -> dict[str, Any]:
    """The JSON plan of `spec`: `STACK`, `STACK@GITREV` or a `plan --json` file."""
    path = Path(spec)
    if spec.endswith(".json") and path.is_file():
        return json.loads(path.read_text())
    stack, _, rev = spec.partition("@")
    return json.loads(plan_at(stack, rev, root) if rev else _working_plan(stack, str(root)))


@cache
def _working_plan(stack: str, root: str) -> str:
    """The working tree's plan, run in-process (the same engine `plan --json` runs)."""
    return json.dumps(engine.run(stack, root=Path(root)).to_json())


def plan_at(stack: str, rev: str, root: Path = engine.REPO) -> str:
    """`plan STACK --json` run in a subprocess on revision `rev`'s tree, as JSON text."""
    tree = _revision_tree(rev, str(root))
    if not _stack_file(stack, Path(tree)).is_file():
        raise StackMissing(f"{stack}@{rev}: no stack file {_stack_file(stack, Path(tree)).relative_to(tree)} there")
    proc = subprocess.run([sys.executable, "-m", "ladder", "plan", stack, "--json"], cwd=tree,
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines() or ["(no output)"]
        tail = "\n".join(lines[-ERROR_LINES:])
        raise PlanUnavailable(f"{stack}@{rev}: `plan {stack}` failed there (exit {proc.returncode}):\n{tail}")
    return proc.stdout


ERROR_LINES = 25  # of a failed plan's stderr: enough for a traceback's last frames and every preflight line


def _stack_file(stack: str, tree: Path) -> Path:
    """Where `tree` keeps `stack`'s file (its own Pulumi.yaml's stackConfigDir; the top when unreadable)."""
    try:
        return stackconfig.stack_file_path(stack, tree)
    except Exception:  # a Pulumi.yaml that does not parse: the plan itself reports it
        return tree / f"Pulumi.{stack}.yaml"


def plans_at(stacks: Iterable[str], rev: str, root: Path = engine.REPO) -> dict[str, dict[str, Any] | PlanUnavailable]:
    """Plans of several stacks at one revision, in parallel; a failure is returned, not raised."""
    def one(stack: str) -> dict[str, Any] | PlanUnavailable:
        try:
            return json.loads(plan_at(stack, rev, root))
        except PlanUnavailable as err:
            return err

    stacks = list(stacks)
    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(stacks, pool.map(one, stacks)))


@cache
def _revision_tree(rev: str, root: str) -> str:
    """Revision `rev`'s tree extracted with `git archive` into a temporary directory.

    A throw-away copy of the tree rather than `git worktree add`: the repository's
    worktree list, index and refs are never touched, and nothing is left behind if the
    run is killed (the directory lives under the system temp dir, removed at exit).
    """
    proc = subprocess.run(["git", "-C", root, "archive", "--format=tar", rev], capture_output=True)
    if proc.returncode != 0:
        raise PlanUnavailable(f"git revision {rev!r}: {proc.stderr.decode().strip()}")
    holder = tempfile.TemporaryDirectory(prefix="scaleladder-rev-")
    _TREES.append(holder)  # keeps the directory alive until the interpreter exits
    with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as tar:
        tar.extractall(holder.name, filter="data")
    return holder.name


_TREES: list[tempfile.TemporaryDirectory] = []


# ---------------------------------------------------------------------------
# Comparison


@dataclass
class Change:
    path: str
    old: Any
    new: Any
    forces_replace: bool = False


@dataclass
class ResourceDiff:
    urn: str
    type: str
    name: str
    action: str  # add | remove | update | replace
    stateful: bool = False
    changes: list[Change] = field(default_factory=list)
    option_changes: list[Change] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # changed paths the resource's ignoreChanges hides


@dataclass
class Finding:
    """A stateful resource's fate: `loss` (replaced/deleted), `retained` or `unprotected`."""

    kind: str
    urn: str
    type: str
    name: str
    reason: str


@dataclass
class Held:
    """A changed input `pulumi up` ignores (ignoreChanges) and who applies it instead."""

    name: str
    type: str
    input: str
    note: str


@dataclass
class Diff:
    a: dict[str, Any]
    b: dict[str, Any]
    resources: list[ResourceDiff]
    findings: list[Finding]
    unchanged: int
    refusals: list[Refusal] = field(default_factory=list)  # changes AWS cannot apply in place (ladder/inplace.py)
    held: list[Held] = field(default_factory=list)  # ignored changes applied outside `pulumi up` (APPLIED_ELSEWHERE)

    def of(self, action: str) -> list[ResourceDiff]:
        return [r for r in self.resources if r.action == action]

    @property
    def losses(self) -> list[Finding]:
        return [f for f in self.findings if f.kind == "loss"]

    @property
    def capacity_events(self) -> list[Finding]:
        """Replacements of non-stateful resources that take serving capacity away (CAPACITY_REPLACE)."""
        return [Finding("capacity", r.urn, r.type, r.name, f"{CAPACITY_REPLACE[r.type]}; "
                        + ", ".join(c.path for c in r.changes if c.forces_replace) + " changed")
                for r in self.resources if r.action == "replace" and r.type in CAPACITY_REPLACE]

    def summary(self) -> dict[str, int]:
        out = {a: len(self.of(a)) for a in ("add", "update", "replace", "remove")}
        return {**out, "unchanged": self.unchanged, "stateful_losses": len(self.losses),
                "stateful_warnings": len(self.findings) - len(self.losses), "refusals": len(self.refusals)}

    def exit_code(self, allow_destroy: bool) -> int:
        """3 when a stateful resource is lost or AWS cannot apply a change in place, unless allowed."""
        return EXIT_STATEFUL_LOSS if (self.losses or self.refusals) and not allow_destroy else 0

    def to_json(self) -> dict[str, Any]:
        return {"a": _describe(self.a), "b": _describe(self.b), "summary": self.summary(),
                "refusals": [asdict(r) for r in self.refusals], "held": [asdict(h) for h in self.held],
                "stateful": [asdict(f) for f in self.findings],
                "capacity": [asdict(f) for f in self.capacity_events],
                "resources": [asdict(r) for r in self.resources]}


def _describe(plan: dict[str, Any]) -> dict[str, Any]:
    return {k: plan.get(k) for k in ("stack", "phase", "region", "resourceCount", "source")}


class _Missing:
    def __repr__(self) -> str:
        return "(none)"


MISSING = _Missing()


def is_stateful(res: dict[str, Any]) -> bool:
    opts = res.get("options") or {}
    if opts.get("protect") or opts.get("retainOnDelete"):
        return True
    if res["type"] == "aws:rds/instance:Instance":
        return not (res.get("inputs") or {}).get("replicateSourceDb")
    return res["type"] in STATEFUL_TYPES


def _unknown(value: Any) -> bool:
    return value == UNKNOWN


def _changes(old: Any, new: Any, path: str = "") -> list[Change]:
    """Leaf-level changes between two input values; unknowns compare equal to anything."""
    if _unknown(old) or _unknown(new):
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[Change] = []
        for key in sorted(set(old) | set(new)):
            out += _changes(old.get(key, MISSING), new.get(key, MISSING), f"{path}.{key}" if path else key)
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        if any(isinstance(v, (dict, list)) or _unknown(v) for v in old + new):
            return [c for i, (x, y) in enumerate(zip(old, new)) for c in _changes(x, y, f"{path}[{i}]")]
    return [] if old == new else [Change(path, old, new)]


def _top(path: str) -> str:
    return re.split(r"[.\[]", path, maxsplit=1)[0]


def _under(path: str, prefixes: Iterable[str]) -> bool:
    return any(path == p or path.startswith(p + ".") or path.startswith(p + "[") or p == "*" for p in prefixes)


def _forcing(res: dict[str, Any]) -> set[str]:
    inputs = res.get("inputs") or {}
    keys = set(REPLACE_FORCING.get(res["type"], ()))
    keys |= {k for k, flag in CONDITIONAL_REPLACE_FORCING.get(res["type"], {}).items() if inputs.get(flag)}
    return keys | set((res.get("options") or {}).get("replaceOnChanges") or ())


_OPTIONS = ("protect", "retainOnDelete", "ignoreChanges", "replaceOnChanges", "deleteBeforeReplace",
            "additionalSecretOutputs", "provider")  # dependsOn follows the inputs: not compared


def _compare_one(old: dict[str, Any], new: dict[str, Any]) -> ResourceDiff:
    """The resource's changes; `changes` and `option_changes` both empty when nothing but ignored
    inputs (`ignored`) differ."""
    ignore = (new.get("options") or {}).get("ignoreChanges") or []
    forcing = _forcing(new) | _forcing(old) | inplace.conditional_replace_inputs(
        new["type"], old.get("inputs") or {}, new.get("inputs") or {})
    diff = ResourceDiff(new["urn"], new["type"], new["name"], "update", is_stateful(old) or is_stateful(new))
    for change in _changes(old.get("inputs") or {}, new.get("inputs") or {}):
        if _under(change.path, ignore):
            diff.ignored.append(change.path)
            continue
        change.forces_replace = _top(change.path) in forcing or "*" in forcing
        diff.changes.append(change)
    old_opts, new_opts = old.get("options") or {}, new.get("options") or {}
    diff.option_changes = [Change(k, old_opts.get(k), new_opts.get(k)) for k in _OPTIONS
                           if old_opts.get(k) != new_opts.get(k)]
    if any(c.forces_replace for c in diff.changes):
        diff.action = "replace"
    return diff


def _normalise(plan: dict[str, Any]) -> dict[str, Any]:
    """The plan with its stack name replaced by `{stack}` in URNs and values."""
    pattern = re.compile(rf"(?<![A-Za-z0-9]){re.escape(plan['stack'])}(?![A-Za-z0-9])")

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            return pattern.sub(STACK_TOKEN, value)
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    return {**plan, "resources": walk(plan.get("resources") or [])}


def compare(a: dict[str, Any], b: dict[str, Any]) -> Diff:
    if a.get("stack") != b.get("stack"):
        a, b = _normalise(a), _normalise(b)
    old = {r["urn"]: r for r in a.get("resources") or []}
    new = {r["urn"]: r for r in b.get("resources") or []}
    out: list[ResourceDiff] = []
    unchanged = 0
    held: list[Held] = []
    for urn in sorted(set(old) | set(new)):
        if urn not in old:
            r = new[urn]
            out.append(ResourceDiff(urn, r["type"], r["name"], "add", is_stateful(r)))
        elif urn not in new:
            r = old[urn]
            out.append(ResourceDiff(urn, r["type"], r["name"], "remove", is_stateful(r)))
        else:
            d = _compare_one(old[urn], new[urn])
            held += [Held(d.name, d.type, path, APPLIED_ELSEWHERE[(d.type, _top(path))]) for path in d.ignored
                     if (d.type, _top(path)) in APPLIED_ELSEWHERE]
            if d.changes or d.option_changes:
                out.append(d)
            else:
                unchanged += 1
    return Diff(a, b, out, _findings(out, old, new), unchanged, inplace.plan_refusals(a, b), held)


def _findings(diffs: list[ResourceDiff], old: dict[str, Any], new: dict[str, Any]) -> list[Finding]:
    found: list[Finding] = []
    for d in diffs:
        if not d.stateful:
            continue
        before = (old.get(d.urn) or {}).get("options") or {}
        if d.action == "replace":
            inputs = ", ".join(c.path for c in d.changes if c.forces_replace)
            found.append(Finding("loss", d.urn, d.type, d.name, f"REPLACED (new, empty resource): {inputs} changed"))
        elif d.action == "remove" and before.get("retainOnDelete"):
            found.append(Finding("retained", d.urn, d.type, d.name, "removed from the stack, retained in AWS "
                                 "(retainOnDelete): data kept, no longer managed"))
        elif d.action == "remove":
            blocked = " (protected: `pulumi up` refuses until unprotected)" if before.get("protect") else ""
            found.append(Finding("loss", d.urn, d.type, d.name, f"DELETED with its data{blocked}"))
        elif d.action == "update":
            dropped = [c.path for c in d.option_changes
                       if c.path in ("protect", "retainOnDelete") and c.old and not c.new]
            if dropped:
                found.append(Finding("unprotected", d.urn, d.type, d.name, f"{' and '.join(dropped)} removed"))
    return sorted(found, key=lambda f: (f.kind != "loss", f.urn))


# ---------------------------------------------------------------------------
# Rendering


def show(value: Any, width: int = 80) -> str:
    """A short, safe rendering of one value (secrets are already "[secret]" in plans)."""
    if value is MISSING:
        return "(none)"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    if len(text) > width:
        digest = hashlib.sha256(text.encode()).hexdigest()[:10]
        return f"<{len(text)} chars, sha256 {digest}>"
    return json.dumps(value) if isinstance(value, str) else text


def common_changes(diff: Diff, at_least: int = 5) -> dict[tuple[str, str, str], int]:
    """Identical changes (same path, old, new) seen on many resources, e.g. a phase tag."""
    seen: dict[tuple[str, str, str], int] = {}
    for r in diff.of("update") + diff.of("replace"):
        for c in r.changes:
            key = (c.path, show(c.old), show(c.new))
            seen[key] = seen.get(key, 0) + 1
    return {k: n for k, n in seen.items() if n >= at_least}


def change_lines(r: ResourceDiff, common: dict[tuple[str, str, str], int], limit: int = 8) -> list[str]:
    """One line per change; shared changes are left out except on stateful resources."""
    common = {} if r.stateful else common
    lines = [f"{c.path}: {show(c.old)} -> {show(c.new)}" + (" [forces replacement]" if c.forces_replace else "")
             for c in r.changes if c.forces_replace or (c.path, show(c.old), show(c.new)) not in common]
    lines += [f"option {c.path}: {show(c.old)} -> {show(c.new)}" for c in r.option_changes]
    if len(lines) > limit:
        lines = lines[:limit] + [f"... {len(lines) - limit} more"]
    return lines


def title(diff: Diff) -> str:
    a, b = diff.a, diff.b
    label = lambda p: p.get("source") or p.get("stack")  # noqa: E731
    return f"{label(a)} (phase {a.get('phase')}) -> {label(b)} (phase {b.get('phase')})"


def summary_line(diff: Diff) -> str:
    s = diff.summary()
    return (f"{s['add']} to add, {s['update']} to update, {s['replace']} to replace, {s['remove']} to remove, "
            f"{s['unchanged']} unchanged")


_ORDER = {"replace": 0, "remove": 1, "add": 2, "update": 3}
_MARK = {"add": "+", "remove": "-", "update": "~", "replace": "+-"}


def ordered(diff: Diff) -> list[ResourceDiff]:
    return sorted(diff.resources, key=lambda r: (not r.stateful, _ORDER[r.action], r.type, r.name))


def listed(diff: Diff, common: dict[tuple[str, str, str], int]) -> tuple[list[ResourceDiff], int]:
    """Resources to list one by one, and how many updates only carry the shared changes."""
    shown = [r for r in ordered(diff) if r.action != "update" or r.stateful or change_lines(r, common)]
    return shown, len(diff.resources) - len(shown)


def markdown_blocks(diff: Diff, heading: str = "###") -> list[str]:
    """The diff as markdown blocks (each whole in itself, so a long comment can split between them)."""
    blocks = [f"{heading} Resource diff: {title(diff)}"]
    if diff.refusals:
        items = "\n".join(f"> - {_refusal_markdown(r)}" for r in diff.refusals)
        blocks.append(f"> [!CAUTION]\n> **AWS cannot apply this in place: {len(diff.refusals)} change(s).** "
                      f"`ladder diff` exits {EXIT_STATEFUL_LOSS} without `--allow-destroy`.\n{items}")
    losses = diff.losses
    if losses:
        items = "\n".join(f"> - **{f.name}** `{f.type}`: {f.reason}" for f in losses)
        blocks.append(f"> [!CAUTION]\n> **{len(losses)} stateful resource(s) would lose data.** "
                      f"`ladder diff` exits {EXIT_STATEFUL_LOSS} without `--allow-destroy`.\n{items}")
    warnings = [f for f in diff.findings if f.kind != "loss"]
    if warnings:
        items = "\n".join(f"> - **{f.name}** `{f.type}`: {f.reason}" for f in warnings)
        blocks.append(f"> [!WARNING]\n> Stateful resources leaving management or protection:\n{items}")
    if diff.capacity_events:
        items = "\n".join(f"> - **{f.name}** `{f.type}`: {f.reason}" for f in diff.capacity_events)
        blocks.append(f"> [!WARNING]\n> **Capacity event: {len(diff.capacity_events)} replacement(s) take serving "
                      f"capacity away while they run.**\n{items}")
    if not losses and not warnings and not diff.refusals:
        blocks.append("No stateful resource is replaced or deleted, and AWS can apply every change in place.")
    if diff.held:
        items = "\n".join(f"> - **{_cell(h.name)}** `{h.type}` `{_cell(h.input)}`: {_cell(h.note)}" for h in diff.held)
        blocks.append(f"> [!NOTE]\n> **Changed, but not applied by `pulumi up`: {len(diff.held)} input(s).**\n{items}")
    blocks.append(f"**{summary_line(diff)}**")
    common = common_changes(diff)
    if common:
        rows = "\n".join(f"| `{_cell(p)}` | `{_cell(o)}` | `{_cell(n)}` | {k} |" for (p, o, n), k in common.items())
        blocks.append("Changes shared by many resources:\n\n| input | old | new | resources |\n|---|---|---|---:|\n"
                      + rows)
    shown, quiet = listed(diff, common)
    if quiet:
        blocks.append(f"{quiet} more resource(s) change only by the shared changes above.")
    lines: list[str] = []
    for r in shown:
        detail = "<br>".join(f"`{_cell(line)}`" for line in change_lines(r, common))
        flag = " **stateful**" if r.stateful else ""
        lines.append(f"| `{_MARK[r.action]}` {r.action} | `{r.type}` | {r.name}{flag} | {detail} |")
    header = "| action | type | name | changes |\n|---|---|---|---|"
    chunks: list[list[str]] = []
    for row in lines:  # tables of at most ~20k characters, so a huge diff splits between blocks
        if not chunks or sum(len(r) for r in chunks[-1]) + len(row) > 20_000:
            chunks.append([])
        chunks[-1].append(row)
    first = 1
    for chunk in chunks:
        last = first + len(chunk) - 1
        blocks.append(f"<details{' open' if len(chunks) == 1 else ''}><summary>Resources {first}-{last} of "
                      f"{len(lines)}</summary>\n\n{header}\n" + "\n".join(chunk) + "\n\n</details>")
        first = last + 1
    return blocks


def _refusal_markdown(r: Refusal) -> str:
    return (f"**{_cell(r.resource)}** `{r.type}`: `{_cell(r.input)}` {_cell(show(r.before))} -> "
            f"{_cell(show(r.after))}: {r.rule}. _Source: {r.source}_")


def markdown(diff: Diff) -> str:
    return "\n\n".join(markdown_blocks(diff))


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("`", "'").replace("\n", " ")


def print_rich(diff: Diff, console: Console) -> None:
    console.print(f"[bold]Resource diff[/] {escape(title(diff))}")
    for refused in diff.refusals:
        console.print(Panel(f"{escape(refused.resource)} [dim]{escape(refused.type)}[/]\n{escape(refused.input)}: "
                            f"{escape(show(refused.before))} -> {escape(show(refused.after))}\n"
                            f"{escape(refused.rule)}\n[dim]source: {escape(refused.source)}[/]",
                            title="AWS cannot apply this in place", border_style="bold red", title_align="left"))
    for f in diff.findings:
        style = "bold red" if f.kind == "loss" else "yellow"
        head = "STATEFUL RESOURCE LOST" if f.kind == "loss" else "stateful resource warning"
        console.print(Panel(f"{escape(f.name)} [dim]{escape(f.type)}[/]\n{escape(f.reason)}",
                            title=head, border_style=style, title_align="left"))
    for f in diff.capacity_events:
        console.print(Panel(f"{escape(f.name)} [dim]{escape(f.type)}[/]\n{escape(f.reason)}",
                            title="capacity event", border_style="yellow", title_align="left"))
    for h in diff.held:
        console.print(Panel(f"{escape(h.name)} [dim]{escape(h.type)}[/]\n{escape(h.input)}: {escape(h.note)}",
                            title="changed, not applied by pulumi up", border_style="cyan", title_align="left"))
    console.print(f"[bold]{summary_line(diff)}[/]")
    common = common_changes(diff)
    if common:
        shared = Table(title="Changes shared by many resources", title_justify="left")
        for col in ("input", "old", "new", "resources"):
            shared.add_column(col, justify="right" if col == "resources" else "left")
        for (p, o, n), k in common.items():
            shared.add_row(escape(p), escape(o), escape(n), str(k))
        console.print(shared)
    shown, quiet = listed(diff, common)
    table = Table(show_lines=False)
    for col in ("", "type", "name", "changes"):
        table.add_column(col, overflow="fold")
    colour = {"add": "green", "remove": "red", "update": "yellow", "replace": "bold red"}
    for r in shown:
        name = escape(r.name) + (" [bold](stateful)[/]" if r.stateful else "")
        table.add_row(f"[{colour[r.action]}]{_MARK[r.action]}[/]", escape(r.type), name,
                      escape("\n".join(change_lines(r, common))))
    if shown:
        console.print(table)
    if quiet:
        console.print(f"{quiet} more resource(s) change only by the shared changes above.")


# ---------------------------------------------------------------------------
# CLI


def _with_source(spec: str) -> dict[str, Any]:
    plan = load(spec)
    plan["source"] = spec
    return plan


def cmd_diff(args: argparse.Namespace) -> int:
    try:
        diff = compare(_with_source(args.a), _with_source(args.b))
    except PlanUnavailable as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(diff.to_json(), indent=2, default=repr))
    elif args.markdown:
        print(markdown(diff))
    else:
        print_rich(diff, Console(highlight=False, emoji=False, width=None if sys.stdout.isatty() else 160))
    code = diff.exit_code(args.allow_destroy)
    if code:
        print(f"error: {len(diff.refusals)} change(s) AWS cannot apply in place, {len(diff.losses)} stateful "
              "resource(s) would be replaced or deleted; pass --allow-destroy to accept them", file=sys.stderr)
    return code


def _diff_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("a", help="before: STACK, STACK@GITREV (e.g. phase3@origin/main) or a `plan --json` file")
    p.add_argument("b", help="after: same forms as A")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="machine-readable diff")
    fmt.add_argument("--markdown", action="store_true", help="PR-comment markdown")
    p.add_argument("--allow-destroy", action="store_true",
                   help="exit 0 even when a stateful resource is replaced or deleted, or a change cannot be "
                        f"applied in place (else exit {EXIT_STATEFUL_LOSS})")


COMMANDS["diff"] = ("compare two plans by URN; stateful replacements/deletions first (exit 3)", _diff_args, cmd_diff)
