"""`python -m ladder review --base REV`: one PR comment body per preset stack.

Each body compares the stack at `REV` (planned from that revision's tree) with the working
tree: stateful-resource warnings first, then the cost delta per component, then the
resource diff. Bodies carry an HTML marker, `<!-- scaleladder-review:STACK -->`, that the
workflow uses to edit the stack's comment in place. A body longer than GitHub's 65,536
characters is split into parts between whole markdown blocks; every part keeps the marker
and adds `<!-- scaleladder-review-part:N/TOTAL -->`. Exit 3 when any stack loses a stateful
resource (unless `--allow-destroy`), after writing every body.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from . import engine
from .cli import COMMANDS
from .cost import delta, delta_markdown, price_plan
from .diff import EXIT_STATEFUL_LOSS, Diff, compare, load, markdown_blocks, plans_at

GITHUB_LIMIT = 65_536
MARKER = "<!-- scaleladder-review:{stack} -->"
PART = "<!-- scaleladder-review-part:{n}/{total} -->"
_HEAD_ROOM = 400  # marker, part marker and the "(part n/m)" heading
EXIT_PLAN_FAILED = 2  # a stack does not plan on the branch, or its base cannot be planned

Status = Literal["ok", "new", "head-error", "base-error"]


@dataclass
class StackResult:
    """One stack's review outcome: what the comment renders and `exit_code` judges.

    status: `ok` (both sides planned, `diff` set), `new` (no stack file at the base: compared
    with an empty stack, `diff` set), `head-error` (does not plan on the branch; `error`),
    `base-error` (the base revision cannot be planned; `error`). Refusals (changes AWS cannot
    apply in place) come through `diff.refusals`, losses through `diff.losses`.
    """

    stack: str
    status: Status
    diff: Diff | None
    base_plan: dict[str, Any] | None
    head_plan: dict[str, Any] | None
    error: str | None
    base_rev: str = ""
    notes: list[str] = field(default_factory=list)


def exit_code(results: list[StackResult], allow_destroy: bool = False) -> int:
    """2 when any stack does not plan (branch or base), else 3 when any change loses a stateful
    resource or cannot be applied in place (unless `allow_destroy`), else 0."""
    if any(r.status in ("head-error", "base-error") for r in results):
        return EXIT_PLAN_FAILED
    if not allow_destroy and any(r.diff and (r.diff.losses or getattr(r.diff, "refusals", [])) for r in results):
        return EXIT_STATEFUL_LOSS
    return 0


def empty_plan(like: dict[str, Any], stack: str) -> dict[str, Any]:
    return {"stack": stack, "phase": like.get("phase"), "region": like.get("region"), "resources": [],
            "resourceCount": 0}


def stack_blocks(stack: str, base_rev: str, base: dict[str, Any] | Exception, head: dict[str, Any] | Exception,
                 preview_url: str | None = None) -> tuple[list[str], Diff | None]:
    """The markdown blocks of one stack's comment (without markers) and its diff."""
    title = f"## scaleladder review: `{stack}`"
    if isinstance(head, Exception):
        return [title, f"> [!CAUTION]\n> `{stack}` does not plan on this branch: {type(head).__name__}: {head}"], None
    notes = []
    if isinstance(base, Exception):
        notes.append(f"No plan of `{stack}` at `{base_rev}` ({base}); compared against an empty stack.")
        base = empty_plan(head, stack)
    base["source"], head["source"] = f"{stack}@{base_rev}", stack
    diff = compare(base, head)
    blocks = markdown_blocks(diff, heading="###")
    try:
        change = delta(price_plan(base), price_plan(head))
        cost = [delta_markdown(change, heading="###")]
        cost_line = f"cost {change['total_delta_usd']:+,.2f} USD/month"
    except Exception as err:  # the comment is still posted, saying why the cost is missing
        cost = [f"> [!WARNING]\n> Cost could not be computed: {type(err).__name__}: {err}"]
        cost_line = "cost unavailable"
    s = diff.summary()
    status = (f"**{s['stateful_losses']} stateful loss(es)**" if s["stateful_losses"] else "no stateful loss")
    summary = (f"phase {head.get('phase')}: {s['add']} to add, {s['update']} to update, {s['replace']} to replace, "
               f"{s['remove']} to remove; {status}; {cost_line}. "
               f"Offline plan (Pulumi mocks), compared with `{base_rev}`.")
    if preview_url:
        notes.append(f"Real `pulumi preview --diff` for this PR: [workflow run]({preview_url}).")
    # stateful findings (the diff's alert blocks) first, then cost, then the rest of the diff
    alerts = [b for b in blocks[1:] if b.startswith("> [!") or b.startswith("No stateful")]
    rest = [b for b in blocks[1:] if b not in alerts]
    return [title, summary, *notes, *alerts, *cost, blocks[0], *rest], diff


def split(blocks: list[str], stack: str, limit: int = GITHUB_LIMIT) -> list[str]:
    """Comment bodies under `limit` characters, each with the stack marker and its part number."""
    budget = limit - _HEAD_ROOM
    pieces = [p for b in blocks for p in _fit(b, budget)]
    parts: list[list[str]] = [[]]
    size = 0
    for piece in pieces:
        if parts[-1] and size + len(piece) + 2 > budget:
            parts.append([])
            size = 0
        parts[-1].append(piece)
        size += len(piece) + 2
    bodies = []
    for n, part in enumerate(parts, 1):
        head = [MARKER.format(stack=stack), PART.format(n=n, total=len(parts))]
        if n > 1:
            head.append(f"## scaleladder review: `{stack}` (part {n}/{len(parts)})")
        bodies.append("\n".join(head) + "\n\n" + "\n\n".join(part))
    return bodies


def _fit(block: str, budget: int) -> list[str]:
    """A block cut at line boundaries (lines cut hard) so every piece fits the budget."""
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


def _head_plan(stack: str) -> dict[str, Any] | Exception:
    try:
        return load(stack)
    except Exception as err:  # a stack that does not plan is reported in its comment, not raised
        return err


def cmd_review(args: argparse.Namespace) -> int:
    stacks = args.stack or engine.stack_names()
    bases = plans_at(stacks, args.base)
    out = Path(args.out) if args.out else None
    if out:
        out.mkdir(parents=True, exist_ok=True)
    losses = 0
    for stack in stacks:
        blocks, diff = stack_blocks(stack, args.base, bases[stack], _head_plan(stack), args.preview_url)
        losses += len(diff.losses) if diff else 0
        bodies = split(blocks, stack)
        for n, body in enumerate(bodies, 1):
            if out:
                name = f"{stack}.md" if len(bodies) == 1 else f"{stack}.part{n}.md"
                (out / name).write_text(body + "\n")
            else:
                print(body + "\n")
        if out:
            print(f"{stack}: {len(bodies)} comment part(s)" + (f", {len(diff.losses)} stateful loss(es)"
                                                               if diff and diff.losses else ""))
    if losses and not args.allow_destroy:
        print(f"error: {losses} stateful resource(s) would be replaced or deleted", file=sys.stderr)
        return EXIT_STATEFUL_LOSS
    return 0


def _review_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--base", required=True, help="git revision to compare with, e.g. origin/main")
    p.add_argument("--stack", action="append", help="stack to review (repeatable; default: every preset stack)")
    p.add_argument("--out", help="write one markdown file per stack (and part) into this directory")
    p.add_argument("--preview-url", help="link to a real `pulumi preview --diff` run, added to every comment")
    p.add_argument("--allow-destroy", action="store_true", help="exit 0 even when a stateful resource is lost")


COMMANDS["review"] = ("PR comment bodies per preset stack: diff vs --base REV, cost delta, stateful warnings",
                      _review_args, cmd_review)
