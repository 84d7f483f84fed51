"""Markdown views of a plan for PR comments and docs: counts, outputs, and a Mermaid
diagram of the tiers and the traffic path (GitHub renders Mermaid)."""

from __future__ import annotations

from . import engine

# Component type token -> (node id, label). Order is the traffic path, edge first.
_TIERS = [
    ("scaleladder:edge:Cdn", "cdn", "CloudFront + S3 /static"),
    ("scaleladder:app:Fleet", "fleet", "Load balancer + app / worker groups"),
    ("scaleladder:app:SingleHost", "vm", "EC2 VM: nginx + app + worker"),
    ("scaleladder:eks:Cluster", "eks", "EKS: app, workers, PgBouncer pods (HPA)"),
    ("scaleladder:data:PgBouncer", "pgb", "PgBouncer behind internal NLB"),
    ("scaleladder:data:Database", "db", "RDS PostgreSQL"),
    ("scaleladder:data:Cache", "redis", "ElastiCache Redis"),
]


def mermaid(plan: engine.Plan) -> str:
    present = {r.type for r in plan.resources}
    nodes = [(nid, label) for token, nid, label in _TIERS if token in present]
    ids = {nid for nid, _ in nodes}
    lines = ["flowchart LR", '  users(("users"))']
    lines += [f'  {nid}["{label}"]' for nid, label in nodes]
    compute = next((n for n in ("eks", "fleet", "vm") if n in ids), None)
    if "cdn" in ids:
        lines.append("  users --> cdn")
        lines.append(f"  cdn --> {compute}")
    elif compute:
        lines.append(f"  users --> {compute}")
    if compute:
        if "pgb" in ids:
            lines += [f"  {compute} --> pgb", "  pgb --> db"]
        elif "db" in ids:
            lines.append(f"  {compute} --> db")
        if "redis" in ids:
            lines.append(f"  {compute} --> redis")
    if plan.config.database.replicas and plan.config.phase >= 3:
        lines.append(f'  db -. "{plan.config.database.replicas} read replicas" .-> db')
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
