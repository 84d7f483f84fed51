"""The PR review comment: ONE summary for every stack, per-stack detail collapsed under it.

`render` turns `review.StackResult`s into comment bodies in reading order. Part 01 is the
summary: head commit and run time (the comment is edited in place, so a reader must see
which push it describes), a narrow row per stack that changes (phase, add / change /
replace / remove, stateful findings, policy, cost delta in USD and %), the stacks without a
change named in one line, the price date, the share of cost that rests on usage
assumptions, and every resource that could not be priced. Under it, one collapsed
`<details>` per changed stack: refusals first, then stateful findings, what the change sets
in motion (a launch template rolls the groups that use it, a pod template rolls its pods,
user data stops or replaces an instance), key inputs of added resources, policy-pack
results, cost lines and the resource diff. Only when that does not fit GitHub's 65,536
characters do sections overflow into parts 02, 03, ... (never cut mid-table: a section is
split between whole blocks, each half in its own `<details>`).

Every body starts with `<!-- scaleladder-review:part-NN -->`; `write` stores them as
`part-NN.md` with `manifest.json`, which `.github/scripts/review-comments.js` posts.
"""

from __future__ import annotations

import difflib
import json
import re
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import userdata
from .cost import CostReport, equal_load, price_plan
from .diff import MISSING, Diff, ResourceDiff, change_lines, common_changes, listed, show
from .prices import catalog

if TYPE_CHECKING:
    from .policy import Violation
    from .review import StackResult

MARKER = "scaleladder-review"
ALLOW_LABEL = "scaleladder/allow-destroy"  # the PR label the workflow turns into `review --allow-destroy`
GITHUB_LIMIT = 65_536
_HEAD_ROOM = 600  # part marker and the "(part n/m)" heading of follow-up parts
_TABLE_CHUNK = 20_000  # a resource table is split into tables of at most this many characters

LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
ASG = "aws:autoscaling/group:Group"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
INSTANCE = "aws:ec2/instance:Instance"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
POD_TEMPLATE_OWNERS = {DEPLOYMENT, "kubernetes:apps/v1:StatefulSet", "kubernetes:apps/v1:DaemonSet"}

# Input names that say how big an added resource is (matched on the last path segment).
_KEY_INPUT = re.compile(r"^(instanceTypes?|instanceClass|nodeType|allocatedStorage|maxAllocatedStorage|storageType|"
                        r"multiAz|engineVersion|numNodeGroups|replicasPerNodeGroup|numCacheClusters|clusterMode|"
                        r"instanceCount|volumeSize|volumeType|minSize|maxSize|desiredSize|desiredCapacity|replicas|"
                        r"loadBalancerType|internal|image|capacityType|dedicatedMasterType|warmType|warmCount|"
                        r"ebsEnabled|priceClass|connectivityType|cpu|memory|replicateSourceDb)$")
_KEY_INPUTS_SHOWN = 8


def part_marker(n: int, total: int = 1) -> str:
    """`<!-- scaleladder-review:part-NN -->`, zero-padded so 10 sorts after 09."""
    return f"<!-- {MARKER}:part-{n:0{max(2, len(str(total)))}d} -->"


# ---------------------------------------------------------------------------
# Cost


@dataclass
class StackCost:
    """One stack's cost change, with what the figures rest on."""

    before: float
    after: float
    price_date: str
    usage_share: float  # of `after`, from usage assumptions (traffic-driven line items)
    usage_files: list[str]
    unpriced: list[tuple[str, str, bool]]  # (name, type, added by this change) of the head
    components: list[tuple[str, float, float]]  # (component, before, after), largest change first
    resources: list[tuple[str, str, float, float]]  # (name, type, before, after) that change
    error: str | None = None

    @property
    def delta(self) -> float:
        return round(self.after - self.before, 2)

    @property
    def percent(self) -> float | None:
        return None if not self.before else self.delta / self.before * 100

    @property
    def added_unpriced(self) -> list[tuple[str, str, bool]]:
        return [u for u in self.unpriced if u[2]]


def _by_resource(report: CostReport) -> dict[str, tuple[str, str, float]]:
    out: dict[str, tuple[str, str, float]] = {}
    for i in report.items:
        name, type_, usd = out.get(i.resource, (i.name, i.type, 0.0))
        out[i.resource] = (name, type_, round(usd + i.monthly_usd, 2))
    return out


def stack_cost(diff: Diff) -> StackCost:
    """The cost of `diff.a` -> `diff.b` (a failure is reported in the comment, not raised)."""
    try:
        # both at the same load (the higher phase's target), as `cost --diff` prices a climb
        users, messages = equal_load(diff.a, diff.b) if diff.a.get("resources") else (None, None)
        base = price_plan(diff.a, users=users, messages_per_day=messages) if diff.a.get("resources") else None
        head = price_plan(diff.b, users=users, messages_per_day=messages)
    except Exception as err:  # noqa: BLE001 - the comment says why the figures are missing
        return StackCost(0, 0, "", 0, [], [], [], [], error=f"{type(err).__name__}: {err}")
    added = {r.urn for r in diff.of("add")}
    unpriced = sorted((r["name"], r["type"], r["urn"] in added) for r in diff.b.get("resources") or []
                      if r["type"] in head.unpriced)
    before = base.total if base else 0.0
    ca, cb = (base.components() if base else {}), head.components()
    components = sorted(((c, ca.get(c, 0.0), cb.get(c, 0.0)) for c in set(ca) | set(cb)
                         if round(cb.get(c, 0.0) - ca.get(c, 0.0), 2)), key=lambda r: -abs(r[2] - r[1]))
    ra, rb = (_by_resource(base) if base else {}), _by_resource(head)
    resources = []
    for urn in set(ra) | set(rb):
        name, type_, _ = rb.get(urn) or ra[urn]
        old, new = ra.get(urn, ("", "", 0.0))[2], rb.get(urn, ("", "", 0.0))[2]
        if round(new - old, 2):
            resources.append((name, type_, old, new))
    resources.sort(key=lambda r: (-abs(r[3] - r[2]), r[0]))
    usage = sum(i.monthly_usd for i in head.items if i.usage_driven)
    return StackCost(before, head.total, catalog().meta(diff.b["region"])["retrieved"],
                     usage / head.total if head.total else 0.0, list(head.usage["files"]), unpriced,
                     components, resources)


def usd(value: float, signed: bool = False) -> str:
    return f"{value:+,.2f}" if signed else f"{value:,.2f}"


def cost_cell(cost: StackCost | None) -> tuple[str, str]:
    """The summary row's (USD/month delta, %) cells; an added unpriced resource is never +0.00."""
    if cost is None or cost.error:
        return "n/a", "n/a"
    unpriced = len(cost.added_unpriced)
    if unpriced and not cost.delta:
        money = f"? ({unpriced} unpriced)"
    else:
        money = usd(cost.delta, signed=True) + (f" + {unpriced} unpriced" if unpriced else "")
    pct = "new" if cost.percent is None else "?" if unpriced and not cost.delta else f"{cost.percent:+.1f}%"
    return money, pct


# ---------------------------------------------------------------------------
# What a change sets in motion


def _inputs(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["urn"]: r for r in plan.get("resources") or []}


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _users_of(target: dict[str, Any], plan: dict[str, dict[str, Any]], types: set[str]) -> list[dict[str, Any]]:
    """Resources of `types` whose inputs reference `target` by id (e.g. groups using a template)."""
    handle = target.get("id")
    return [r for r in plan.values() if r["type"] in types and handle and handle in set(_strings(r.get("inputs")))]


def _group_roll(group: dict[str, Any]) -> str:
    i = group.get("inputs") or {}
    name = f"`{group['name']}`" + (f" ({i['name']})" if isinstance(i.get("name"), str) else "")
    refresh = i.get("instanceRefresh")
    if isinstance(refresh, dict):
        prefs = refresh.get("preferences") or {}
        healthy = prefs.get("minHealthyPercentage")
        return (f"rolls every instance of Auto Scaling group {name}: instance refresh ({refresh.get('strategy')}"
                + (f", at least {healthy}% healthy" if healthy is not None else "") + ")")
    return (f"new instances of Auto Scaling group {name} start from the new version; running ones keep the old "
            "until they are replaced (no `instanceRefresh`)")


def effects(diff: Diff) -> list[str]:
    """What each change sets in motion beyond the resource itself, one line each.

    Sources: a change of `launchTemplate` always triggers an ASG's instance refresh
    (pulumi_aws autoscaling Group `instance_refresh.triggers` docstring); a user data update
    stops and starts an instance, or replaces it with `userDataReplaceOnChange` (pulumi_aws
    ec2 Instance `user_data`); a changed pod template rolls a Deployment's pods (Kubernetes
    Deployment rollout: only `.spec.template` changes trigger one); an EKS managed node group
    replaces its nodes on a new launch template version (`update_config` bounds how many).
    """
    head = _inputs(diff.b)
    # ignoreChanges inputs `pulumi up` will not apply, and who applies them (ladder/diff.py Held)
    out: list[str] = [f"`{h.name}` `{h.input}` changes: {h.note}" for h in diff.held]
    for r in diff.resources:
        if r.action not in ("update", "replace"):
            continue
        res = head.get(r.urn) or {}
        if r.type == LAUNCH_TEMPLATE:
            users = _users_of(res, head, {ASG, NODE_GROUP})
            what = []
            for u in users:
                if u["type"] == ASG:
                    what.append(_group_roll(u))
                else:
                    limit = ((u.get("inputs") or {}).get("updateConfig") or {})
                    bound = (f", at most {limit['maxUnavailablePercentage']}% unavailable"
                             if "maxUnavailablePercentage" in limit else
                             f", at most {limit['maxUnavailable']} unavailable" if "maxUnavailable" in limit else "")
                    what.append(f"replaces the nodes of EKS node group `{u['name']}` (new launch template version"
                                f"{bound}; pods are drained onto the new nodes)")
            out.append(f"Launch template `{r.name}` changes ({_paths(r)}): " +
                       ("; ".join(what) if what else "no group in this stack uses it"))
        elif r.type == INSTANCE and any(c.path.startswith("userData") for c in r.changes):
            out.append(f"Instance `{r.name}`: user data changes, so the instance is "
                       + ("REPLACED (`userDataReplaceOnChange`): a new host, new private IP, local disk lost"
                          if r.action == "replace" else "stopped and started to apply it (a short outage of this host)"))
        elif r.type in POD_TEMPLATE_OWNERS:
            template = [c for c in r.changes if c.path.startswith("spec.template")]
            replicas = [c for c in r.changes if c.path == "spec.replicas"]
            kind = r.type.rsplit(":", 1)[-1]
            meta = (res.get("inputs") or {}).get("metadata") or {}
            label = "/".join(str(x) for x in (meta.get("namespace"), meta.get("name")) if x) or r.name
            if template:
                strategy = (((res.get("inputs") or {}).get("spec") or {}).get("strategy") or {})
                rolling = strategy.get("rollingUpdate") or {}
                how = (f" (maxSurge {rolling.get('maxSurge')}, maxUnavailable {rolling.get('maxUnavailable')})"
                       if rolling else "")
                out.append(f"{kind} `{label}`: its pod template changes ({_paths(r, 'spec.template.')}), so every "
                           f"pod is replaced by a rolling update{how}")
            for c in replicas:
                was = "unset (the autoscaler's count)" if c.old is MISSING else show(c.old)
                out.append(f"{kind} `{label}`: `spec.replicas` from {was} to {show(c.new)} pods")
        elif r.type == NODE_GROUP and any(c.path.split(".")[0] in ("releaseVersion", "version", "amiType")
                                          for c in r.changes):
            out.append(f"EKS node group `{r.name}`: a new node image version replaces every node ({_paths(r)})")
    return out


def _paths(r: ResourceDiff, strip: str = "", limit: int = 4) -> str:
    """The changed inputs, by top-level name (`tagSpecifications`, not every tag path in it);
    with `strip`, only the paths under it, in full (`spec.containers[0].image`)."""
    paths = sorted({c.path.removeprefix(strip) if strip else re.split(r"[.\[]", c.path, maxsplit=1)[0]
                    for c in r.changes if c.path.startswith(strip)})
    shown = ", ".join(f"`{p}`" for p in paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")


def user_data_diffs(diff: Diff, max_lines: int = 60) -> list[tuple[str, list[str]]]:
    """(resource, unified diff lines) of decoded user data changes; plans hold it base64/gzip."""
    out = []
    for r in diff.resources:
        for c in r.changes:
            if c.path not in ("userData", "userDataBase64") or not isinstance(c.old, str) or not isinstance(c.new, str):
                continue
            try:
                old, new = userdata.decode(c.old), userdata.decode(c.new)
            except Exception:  # noqa: BLE001 - not base64 text: the diff table shows the digest
                continue
            lines = list(difflib.unified_diff(old.splitlines(), new.splitlines(), "before", "after", n=1,
                                              lineterm=""))[2:]
            if len(lines) > max_lines:
                lines = lines[:max_lines] + [f"... {len(lines) - max_lines} more lines"]
            out.append((r.name, lines))
    return out


def key_inputs(diff: Diff) -> list[tuple[str, str, list[str]]]:
    """(name, type, ["instanceClass=db.r6g.large", ...]) of every added resource with sizing inputs."""
    head = _inputs(diff.b)
    out = []
    for r in diff.of("add"):
        found: list[str] = []
        _walk_keys((head.get(r.urn) or {}).get("inputs") or {}, "", found)
        if found:
            extra = len(found) - _KEY_INPUTS_SHOWN
            out.append((r.name, r.type, found[:_KEY_INPUTS_SHOWN] + ([f"... {extra} more"] if extra > 0 else [])))
    return out


def _walk_keys(value: Any, path: str, found: list[str]) -> None:
    if isinstance(value, dict):
        for k in sorted(value):
            v = value[k]
            sub = f"{path}.{k}" if path else k
            if _KEY_INPUT.match(k) and not isinstance(v, dict) and not (isinstance(v, list) and
                                                                       any(isinstance(x, dict) for x in v)):
                found.append(f"{sub}={show(v, 40)}")
            else:
                _walk_keys(v, sub, found)
    elif isinstance(value, list):
        for i, v in enumerate(value[:4]):
            _walk_keys(v, f"{path}[{i}]", found)


# ---------------------------------------------------------------------------
# Rendering


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("`", "'").replace("\n", " ")


def short_type(type_: str) -> str:
    """`aws:ec2/launchTemplate:LaunchTemplate` -> `ec2 LaunchTemplate` (keeps the table narrow)."""
    provider, _, rest = type_.partition(":")
    module, _, kind = rest.rpartition(":")
    module = module.split("/")[0]
    prefix = "k8s" if provider == "kubernetes" else module if provider == "aws" else f"{provider} {module}"
    return f"{prefix} {kind}".strip()


def _quote(text: str) -> str:
    """Multi-line text inside a blockquote alert, without breaking out of it."""
    body = str(text).replace("```", "'''")
    return "\n".join(f"> {line}" if line else ">" for line in ["```text", *body.splitlines(), "```"])


def refusals(diff: Diff | None) -> list[Any]:
    return list(getattr(diff, "refusals", None) or []) if diff else []


def _finding_line(f: Any) -> str:
    name = getattr(f, "name", None) or getattr(f, "urn", "")
    type_ = getattr(f, "type", "")
    reason = getattr(f, "reason", None) or getattr(f, "message", None) or str(f)
    return f"**{_cell(name)}** `{short_type(type_)}`: {reason}" if type_ else f"{reason}"


@dataclass
class _Row:
    stack: str
    cells: list[str]
    section: list[str] = field(default_factory=list)  # blocks of the stack's <details>
    title: str = ""
    cost: StackCost | None = None
    fails: bool = False  # `review.exit_code` fails for this stack
    accepted: int = 0  # stateful losses accepted by --allow-destroy (the PR label)


def _phase(result: StackResult) -> str:
    head = (result.head_plan or {}).get("phase")
    base = (result.base_plan or {}).get("phase")
    if result.status == "new":
        return f"new ({head})"
    if head is None:
        return str(base) if base is not None else "?"
    return f"{base} → {head}" if base is not None and base != head else str(head)


def _policy_cells(violations: Sequence[Violation] | None) -> str:
    if violations is None:
        return "n/a"
    failing = sum(v.level == "mandatory" for v in violations)
    advisory = len(violations) - failing
    parts = ([f"**{failing} fail**"] if failing else []) + ([f"{advisory} warn"] if advisory else [])
    return ", ".join(parts) or "ok"


def _changed(result: StackResult, violations: Sequence[Violation] | None) -> bool:
    if result.status not in ("ok", "new") or result.diff is None:
        return True
    return bool(result.diff.resources or result.diff.findings or refusals(result.diff) or result.diff.held
                or any(v.level == "mandatory" for v in violations or ()))


def _error_row(result: StackResult) -> _Row:
    what = "does not plan on this branch" if result.status == "head-error" else \
        f"cannot be planned at the base `{result.base_rev}`"
    cells = [f"`{result.stack}`", _phase(result), "–", "–", "–", "–", f"**{result.status}**", "n/a", "n/a", "n/a"]
    section = [f"> [!CAUTION]\n> `{result.stack}` {what}; the review fails (exit 2) until it plans.\n"
               + _quote(result.error or "(no error text)")]
    return _Row(result.stack, cells, section, f"{result.stack}: {result.status}", fails=True)


def _stack_row(result: StackResult, violations: Sequence[Violation] | None, blocking: Sequence[Violation] = (),
               allow_destroy: bool = False) -> _Row:
    diff = result.diff
    assert diff is not None
    s = diff.summary()
    refused = refusals(diff)
    cost = stack_cost(diff)
    flags = ([f"**{len(refused)} refused**"] if refused else []) + \
        ([f"**{s['stateful_losses']} loss**"] if s["stateful_losses"] else []) + \
        ([f"{s['stateful_warnings']} warn"] if s["stateful_warnings"] else [])
    money, pct = cost_cell(cost)
    cells = [f"`{result.stack}`", _phase(result), str(s["add"]), str(s["update"]), str(s["replace"]),
             str(s["remove"]), ", ".join(flags) or "ok", _policy_cells(violations), money, pct]
    blocks: list[str] = []
    if refused:
        items = "\n".join(f"> - {_finding_line(f)}" for f in refused)
        blocks.append(f"> [!CAUTION]\n> **AWS cannot apply this in place: {len(refused)} change(s)** (the review "
                      f"fails, exit 3; the `{ALLOW_LABEL}` label does not accept these, `pulumi up` would "
                      f"refuse them):\n{items}")
    if diff.losses:
        items = "\n".join(f"> - {_finding_line(f)}" for f in diff.losses)
        verdict = (f"accepted by the label {ALLOW_LABEL}" if allow_destroy else
                   f"the review fails, exit 3, unless the PR carries the `{ALLOW_LABEL}` label")
        blocks.append(f"> [!CAUTION]\n> **{len(diff.losses)} stateful resource(s) would lose data** ({verdict}):"
                      f"\n{items}")
    warnings = [f for f in diff.findings if f.kind != "loss"]
    if warnings:
        items = "\n".join(f"> - {_finding_line(f)}" for f in warnings)
        blocks.append(f"> [!WARNING]\n> Stateful resources leaving management or protection:\n{items}")
    if diff.capacity_events:  # e.g. a node group replaced: new at its minimum size, the old one drained
        items = "\n".join(f"> - {_finding_line(f)}" for f in diff.capacity_events)
        blocks.append(f"> [!WARNING]\n> **Capacity event: {len(diff.capacity_events)} replacement(s) take serving "
                      f"capacity away while they run:**\n{items}")
    if result.status == "new":
        blocks.append(f"`{result.stack}` is new on this branch (no stack file at `{result.base_rev}`): every "
                      "resource is added.")
    blocks += [n for n in getattr(result, "notes", []) or []]
    moved = effects(diff)
    if moved:
        blocks.append("**What this sets in motion**\n\n" + "\n".join(f"- {m}" for m in moved))
    for name, lines in user_data_diffs(diff):
        blocks.append(f"<details><summary>User data of <code>{name}</code> (decoded)</summary>\n\n```diff\n"
                      + "\n".join(lines).replace("```", "'''") + "\n```\n\n</details>")
    keys = key_inputs(diff)
    if keys:
        rows = "\n".join(f"| {_cell(n)} | {short_type(t)} | {'<br>'.join(f'`{_cell(k)}`' for k in ks)} |"
                         for n, t, ks in keys)
        blocks.append("**Added resources: key inputs**\n\n| resource | type | inputs |\n|---|---|---|\n" + rows)
    if violations is not None:
        blocks.append(_policy_block(violations, blocking, result.base_rev))
    blocks.append(_cost_block(cost))
    blocks += _diff_blocks(diff)
    title = (f"{result.stack}: {s['add']} to add, {s['update']} to change, {s['replace']} to replace, "
             f"{s['remove']} to remove" + (f"; {len(refused)} refused" if refused else "")
             + (f"; {s['stateful_losses']} stateful loss" if s["stateful_losses"] else ""))
    fails = bool(refused or blocking or (diff.losses and not allow_destroy))
    return _Row(result.stack, cells, blocks, title, cost, fails, len(diff.losses) if allow_destroy else 0)


def _policy_block(violations: Sequence[Violation], blocking: Sequence[Violation] = (), base_rev: str = "") -> str:
    if not violations:
        return "**Policy pack:** every rule passes."
    failing = [v for v in violations if v.level == "mandatory"]
    verdict = (f"; **{len(blocking)} new against `{base_rev}`: the review fails, exit 4**" if blocking else
               f"; every one is at `{base_rev}` too, so the review does not fail for them" if failing else "")
    lines = [f"**Policy pack:** {len(failing)} mandatory violation(s) (block `pulumi up` with the pack){verdict}, "
             f"{len(violations) - len(failing)} advisory", "", "| rule | level | resource | message |",
             "|---|---|---|---|"]
    lines += [f"| `{v.rule}` | {'**mandatory**' if v.level == 'mandatory' else 'advisory'} | {_cell(v.name)} | "
              f"{_cell(v.message)} |" for v in sorted(violations, key=lambda v: (v.level != "mandatory", v.rule))]
    return "\n".join(lines)


def _cost_block(cost: StackCost) -> str:
    if cost.error:
        return f"> [!WARNING]\n> Cost could not be computed: {cost.error}"
    pct = "" if cost.percent is None else f" ({cost.percent:+.1f}%)"
    lines = [f"**Cost:** {usd(cost.before)} -> {usd(cost.after)} USD/month, **{usd(cost.delta, True)}**{pct}; "
             f"{cost.usage_share:.0%} of the new total rests on usage assumptions ({', '.join(cost.usage_files)}); "
             f"list prices as of {cost.price_date}."]
    if cost.unpriced:
        lines += ["", "> [!WARNING]\n> Not priced (no rule in `ladder/cost.py`, not free in the catalog), so not in "
                  "the figures above:\n" + "\n".join(f"> - **{_cell(n)}** `{t}`" + (" (added by this change)" if a else "")
                                                    for n, t, a in cost.unpriced)]
    if cost.components:
        lines += ["", "| component | before | after | delta |", "|---|---:|---:|---:|"]
        lines += [f"| {_cell(c)} | {usd(a)} | {usd(b)} | {usd(b - a, True)} |" for c, a, b in cost.components]
    if cost.resources:
        shown = cost.resources[:25]
        lines += ["", "<details><summary>Cost lines that change</summary>", "",
                  "| resource | type | before | after | delta |", "|---|---|---:|---:|---:|"]
        lines += [f"| {_cell(n)} | {short_type(t)} | {usd(a)} | {usd(b)} | {usd(b - a, True)} |" for n, t, a, b in shown]
        if len(cost.resources) > len(shown):
            lines.append(f"\n{len(cost.resources) - len(shown)} more resource(s) change by smaller amounts.")
        lines += ["", "</details>"]
    return "\n".join(lines)


_MARK = {"add": "+", "remove": "-", "update": "~", "replace": "+-"}


def _diff_blocks(diff: Diff) -> list[str]:
    """The resource diff as narrow tables (name over its short type, then the changes)."""
    common = common_changes(diff)
    blocks: list[str] = []
    if common:
        shared = "\n".join(f"| `{_cell(p)}` | `{_cell(o)}` → `{_cell(n)}` | {k} |" for (p, o, n), k in common.items())
        blocks.append("Changes shared by many resources:\n\n| input | old → new | resources |\n|---|---|---:|\n" + shared)
    shown, quiet = listed(diff, common)
    if quiet:
        blocks.append(f"{quiet} more resource(s) change only by the shared changes above.")
    rows = []
    for r in shown:
        detail = "<br>".join(f"`{_cell(line)}`" for line in change_lines(r, common))
        flag = " **stateful**" if r.stateful else ""
        rows.append(f"| `{_MARK[r.action]}` | {_cell(r.name)}{flag}<br><sub>{short_type(r.type)}</sub> | {detail} |")
    header = "| | resource | changes |\n|---|---|---|"
    chunk: list[str] = []
    for row in rows:
        if chunk and sum(len(x) + 1 for x in chunk) + len(row) > _TABLE_CHUNK:
            blocks.append(header + "\n" + "\n".join(chunk))
            chunk = []
        chunk.append(row)
    if chunk:
        blocks.append(header + "\n" + "\n".join(chunk))
    return blocks


def _details(title: str, blocks: list[str]) -> str:
    return f"<details><summary><b>{_cell(title)}</b></summary>\n\n" + "\n\n".join(blocks) + "\n\n</details>"


def _fit(block: str, budget: int) -> list[str]:
    """A block cut at line boundaries (over-long lines cut hard) so every piece fits."""
    if len(block) <= budget:
        return [block]
    pieces, current = [], ""
    for line in block.splitlines():
        if len(line) > budget:
            line = line[: budget - 40] + " ... (line truncated)"
        if current and len(current) + len(line) + 1 > budget:
            pieces.append(current)
            current = ""
        current = f"{current}\n{line}" if current else line
    return pieces + [current]


def _sections(row: _Row, budget: int) -> list[str]:
    """The stack's <details>, split between whole blocks when it alone exceeds `budget`."""
    whole = _details(row.title, row.section)
    if len(whole) <= budget:
        return [whole]
    room = budget - len(_details(row.title + " (continued 99)", []))
    pieces = [p for b in row.section for p in _fit(b, room)]
    out: list[list[str]] = [[]]
    size = 0
    for p in pieces:
        if out[-1] and size + len(p) + 2 > room:
            out.append([])
            size = 0
        out[-1].append(p)
        size += len(p) + 2
    return [_details(row.title if i == 0 else f"{row.title} (continued {i + 1})", blocks)
            for i, blocks in enumerate(out)]


def render(results: Sequence[StackResult], *, base_rev: str, head_sha: str, run_time: datetime | str,
           preview_url: str | None = None, policy: Mapping[str, Sequence[Violation]] | None = None,
           blocking: Mapping[str, Sequence[Violation]] | None = None, allow_destroy: bool = False,
           limit: int = GITHUB_LIMIT) -> list[str]:
    """The PR comment bodies in reading order; part 01 is the summary. `blocking`: the mandatory
    violations that fail the review (`review.new_mandatory`); `allow_destroy`: the PR carries the
    `scaleladder/allow-destroy` label, so stateful losses (never refusals) are accepted."""
    when = run_time if isinstance(run_time, str) else run_time.strftime("%Y-%m-%d %H:%M UTC")
    policy = policy or {}
    rows, quiet = [], []
    for r in results:
        violations = policy.get(r.stack) if r.stack in policy else None
        if r.status in ("head-error", "base-error"):
            rows.append(_error_row(r))
        elif _changed(r, violations):
            rows.append(_stack_row(r, violations, (blocking or {}).get(r.stack) or (), allow_destroy))
        else:
            quiet.append(r.stack)
    failing = [row.stack for row in rows if row.fails]
    accepted = [row for row in rows if row.accepted]
    head = [f"## scaleladder review: {len(rows)} of {len(results)} stack(s) change",
            f"Head `{head_sha[:12]}` compared with `{base_rev}`, run {when}. Offline plans (Pulumi mocks); "
            "this comment is edited in place on every push."
            + (f" Real `pulumi preview --diff`: [workflow run]({preview_url})." if preview_url else "")]
    if failing:
        head.append(f"> [!CAUTION]\n> Needs attention: {', '.join(f'`{s}`' for s in failing)} (see below). "
                    "The review check fails for these.")
    if accepted:
        head.append(f"> [!WARNING]\n> Accepted by the label {ALLOW_LABEL}: "
                    + ", ".join(f"{row.accepted} loss(es) in `{row.stack}`" for row in accepted) + ".")
    if rows:
        table = ["| stack | phase | add | change | replace | remove | stateful | policy | USD/month | % |",
                 "|---|---|--:|--:|--:|--:|---|---|--:|--:|"]
        table += ["| " + " | ".join(row.cells) + " |" for row in rows]
        head.append("\n".join(table))
    head.append(("No change in: " + ", ".join(f"`{s}`" for s in quiet) + ".") if quiet else
                "Every stack changes." if rows else "No stack changes.")
    dates = sorted({row.cost.price_date for row in rows if row.cost and not row.cost.error})
    if dates:
        head.append(f"_USD/month: on-demand list prices as of {', '.join(dates)} (`ladder/catalog/prices.yaml`); "
                    "the share resting on usage assumptions and any unpriced resource are in each stack's section._")
    budget = limit - _HEAD_ROOM
    parts: list[list[str]] = [[]]
    size = 0
    for piece in [p for b in head for p in _fit(b, budget)] + [s for row in rows for s in _sections(row, budget)]:
        if parts[-1] and size + len(piece) + 2 > budget:
            parts.append([])
            size = 0
        parts[-1].append(piece)
        size += len(piece) + 2
    bodies = []
    for n, blocks in enumerate(parts, 1):
        top = [part_marker(n, len(parts))]
        if n > 1:
            top.append(f"## scaleladder review (part {n}/{len(parts)}) for `{head_sha[:12]}`")
        bodies.append("\n".join(top) + "\n\n" + "\n\n".join(blocks) + "\n")
    return bodies


def policy_results(results: Sequence[StackResult]) -> dict[str, list[Violation]]:
    """The policy pack on every stack that planned on the branch (one more in-process plan each:
    the rules read resource state the plan JSON does not carry)."""
    from . import engine, policy

    out: dict[str, list[Violation]] = {}
    for r in results:
        if r.status in ("ok", "new"):
            try:
                out[r.stack] = policy.check(engine.run(r.stack))
            except Exception:  # noqa: BLE001 - planned once already; the row then says n/a
                continue
    return out


def head_commit() -> str:
    """The checked-out commit (the workflow passes the PR head instead: it checks out a merge)."""
    from . import engine

    proc = subprocess.run(["git", "-C", str(engine.REPO), "rev-parse", "HEAD"], capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else "working-tree"


def write(out: Path, bodies: Sequence[str]) -> list[Path]:
    """`out/part-NN.md` per body and `out/manifest.json` naming them in reading order."""
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("part-*.md"):
        old.unlink()
    width = max(2, len(str(len(bodies))))
    names = [f"part-{n:0{width}d}.md" for n in range(1, len(bodies) + 1)]
    for name, body in zip(names, bodies):
        (out / name).write_text(body)
    (out / "manifest.json").write_text(json.dumps({"marker": MARKER, "parts": names}, indent=2) + "\n")
    return [out / n for n in names]

