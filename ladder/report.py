"""Markdown views of a plan for PR comments and docs: counts, outputs, and a Mermaid
diagram of the tiers and the traffic path (GitHub renders Mermaid).

The diagram is drawn from the planned resources, not from the phase's name, so it shows
what each rung changes: the NAT gateways (none, one, one per AZ) on the outbound path; the
RDS primary with its Multi-AZ standby and the read replicas as replicas of it (fed by
replication, read through PgBouncer or the app); ElastiCache as a primary with replicas, or
in cluster mode as shards x (primary + replicas). tests/unit/test_report.py parses every
phase's diagram with mermaid's own parser (tests/js/mermaid-parse.mjs).
"""

from __future__ import annotations

from typing import Any

from . import engine

# Component type token -> (node id, label). Order is the traffic path, edge first.
_TIERS = [
    ("scaleladder:edge:Cdn", "cdn", "CloudFront + S3 /static"),
    ("scaleladder:app:Fleet", "fleet", "Load balancer + app / worker groups"),
    ("scaleladder:app:SingleHost", "vm", "EC2 VM: nginx + app + worker"),
    ("scaleladder:eks:Cluster", "eks", "EKS: app, workers, PgBouncer pods (HPA)"),
    ("scaleladder:data:PgBouncer", "pgb", "PgBouncer behind internal NLB"),
]
RDS = "aws:rds/instance:Instance"
REDIS = "aws:elasticache/replicationGroup:ReplicationGroup"
NAT = "aws:ec2/natGateway:NatGateway"
SUBNET = "aws:ec2/subnet:Subnet"


def _label(text: str) -> str:
    """A Mermaid label: quoted, so parentheses and `x` read as text (quotes cannot appear)."""
    return '"' + text.replace('"', "'") + '"'


def _database(plan: engine.Plan) -> tuple[list[str], bool]:
    """Nodes and edges of RDS: the primary (with its standby) and its read replicas."""
    instances = plan.of_type(RDS)
    primary = next((r for r in instances if not r.inputs.get("replicateSourceDb")), None)
    replicas = [r for r in instances if r.inputs.get("replicateSourceDb")]
    lines: list[str] = []
    if primary:
        standby = "<br>Multi-AZ: synchronous standby" if primary.inputs.get("multiAz") else ""
        label = _label(f"RDS PostgreSQL primary<br>{primary.inputs.get('instanceClass')}{standby}")
        lines.append(f"  db[({label})]")
    if primary and replicas:
        classes = ", ".join(sorted({str(r.inputs.get("instanceClass")) for r in replicas}))
        label = _label(f"{len(replicas)} read replica(s)<br>{classes}")
        lines.append(f"  dbr[({label})]")
        lines.append(f"  db -. {_label('asynchronous replication')} .-> dbr")
    return lines, bool(primary and replicas)


def _redis(group: Any) -> list[str]:
    """ElastiCache as what it is: primary + replicas, or shards x (primary + replicas)."""
    i = group.inputs
    node = i.get("nodeType")
    if i.get("clusterMode") == "enabled":
        shards, replicas = int(i.get("numNodeGroups") or 1), int(i.get("replicasPerNodeGroup") or 0)
        title = _label(f"ElastiCache Redis, cluster mode: {shards} shards x (1 primary + {replicas} replica(s)), {node}")
        lines = [f"  subgraph redis[{title}]"]
        lines += [f"    redis{n}[({_label(f'shard {n}: primary + {replicas} replica(s)')})]" for n in range(1, shards + 1)]
        return lines + ["  end"]
    nodes = int(i.get("numCacheClusters") or 1)
    failover = "<br>automatic failover" if i.get("automaticFailoverEnabled") else ""
    text = (f"ElastiCache Redis primary + {nodes - 1} replica(s)<br>{node}{failover}" if nodes > 1
            else f"ElastiCache Redis, one node<br>{node}")
    return [f"  redis[({_label(text)})]"]


def _nat(plan: engine.Plan) -> list[str]:
    nats = plan.of_type(NAT)
    if not nats:
        return []
    azs = {s.inputs.get("availabilityZone") for s in plan.of_type(SUBNET) if s.inputs.get("availabilityZone")}
    text = (f"{len(nats)} NAT gateways, one per AZ" if len(nats) > 1 and len(nats) >= len(azs) else
            f"{len(nats)} NAT gateways for {len(azs)} AZs" if len(nats) > 1 else "NAT gateway: one, shared by every AZ")
    return [f"  nat[{_label(text)}]", '  internet(("internet"))']


def mermaid(plan: engine.Plan) -> str:
    present = {r.type for r in plan.resources}
    nodes = [(nid, label) for token, nid, label in _TIERS if token in present]
    ids = {nid for nid, _ in nodes}
    lines = ["flowchart LR", '  users(("users"))']
    lines += [f"  {nid}[{_label(label)}]" for nid, label in nodes]
    db_lines, has_replicas = _database(plan)
    lines += db_lines
    redis = plan.of_type(REDIS)
    for group in redis[:1]:
        lines += _redis(group)
    nat = _nat(plan)
    lines += nat
    compute = next((n for n in ("eks", "fleet", "vm") if n in ids), None)
    if "cdn" in ids:
        lines.append("  users --> cdn")
        lines.append(f"  cdn --> {compute}")
    elif compute:
        lines.append(f"  users --> {compute}")
    if compute:
        clients = "pgb" if "pgb" in ids else compute
        if clients == "pgb":
            lines.append(f"  {compute} --> pgb")
        if db_lines:
            lines.append(f"  {clients} -- {_label('writes')} --> db" if has_replicas else f"  {clients} --> db")
        if has_replicas:
            lines.append(f"  {clients} -- {_label('reads')} --> dbr")
        if redis:
            lines.append(f"  {compute} --> redis")
        if nat:
            lines.append(f"  {compute} -. {_label('outbound')} .-> nat")
            lines.append("  nat --> internet")
    return "\n".join(lines)


def plan_markdown(plan: engine.Plan) -> str:
    cfg = plan.config
    out = [f"### `{plan.stack}` — phase {cfg.phase}: {cfg.phase_spec.name}", "",
           f"{len(plan.resources)} resources; capacity target ~{cfg.phase_spec.concurrent_users:,} concurrent users.", "",
           "```mermaid", mermaid(plan), "```", "", "| resource type | count |", "|---|---:|"]
    out += [f"| `{t}` | {n} |" for t, n in plan.counts().items()]
    out += ["", "| output | value |", "|---|---|"]
    out += [f"| `{k}` | `{v}` |" for k, v in engine.public(plan.outputs).items()]
    if plan.unused_keys:
        out += ["", f"Unused by phase {cfg.phase}: " + ", ".join(f"`{k}`" for k in plan.unused_keys)]
    return "\n".join(out)
