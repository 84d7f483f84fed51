"""`python -m ladder review --base REV`: one PR comment body per preset stack.

Each body compares the stack at `REV` (planned from that revision's tree) with the working
tree: changes AWS cannot apply in place and stateful-resource warnings first, then the
cost delta per component, then the resource diff. Bodies carry an HTML marker,
`<!-- scaleladder-review:STACK -->`, that the workflow uses to edit the stack's comment in
place. A body longer than GitHub's 65,536 characters is split into parts between whole
markdown blocks; every part keeps the marker and adds `<!-- scaleladder-review-part:N/TOTAL -->`.

Exit codes (`exit_code`), after writing every body: 2 when a stack does not plan on the
branch or at the base (a stack whose file does not exist at the base is new on the branch,
not an error; an unknown `--base` fails every stack); else 3 when a change cannot be
applied in place (ladder/inplace.py) or loses a stateful resource, unless
`--allow-destroy`; else 0.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from . import engine, review_comment
from .cli import COMMANDS
from .cost import delta, delta_markdown, equal_load, price_plan
from .diff import EXIT_STATEFUL_LOSS, Diff, PlanUnavailable, StackMissing, compare, load, markdown_blocks, plans_at

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
    if not allow_destroy and any(r.diff and (r.diff.losses or r.diff.refusals) for r in results):
        return EXIT_STATEFUL_LOSS
    return 0


def empty_plan(like: dict[str, Any], stack: str) -> dict[str, Any]:
    return {"stack": stack, "phase": like.get("phase"), "region": like.get("region"), "resources": [],
            "resourceCount": 0}


def _error_text(err: BaseException) -> str:
    return str(err) if isinstance(err, PlanUnavailable) else f"{type(err).__name__}: {err}"


def review_stack(stack: str, base_rev: str, base: dict[str, Any] | BaseException,
                 head: dict[str, Any] | BaseException) -> StackResult:
    """One stack's outcome. A base without the stack's file (`StackMissing`) is a stack new on the
    branch, compared with an empty stack; any other base failure is `base-error`, never an
    empty-stack comparison (a base that does not plan says nothing about what the branch changes)."""
    if isinstance(head, BaseException):
        error = _error_text(head)
        if isinstance(base, BaseException) and not isinstance(base, StackMissing):
            error += f"\n(the base {base_rev} does not plan either: {_error_text(base)})"
        return StackResult(stack, "head-error", None, None if isinstance(base, BaseException) else base, None,
                           error, base_rev)
    head = {**head, "source": stack}
    if isinstance(base, StackMissing):
        empty = {**empty_plan(head, stack), "source": f"{stack}@{base_rev} (no such stack)"}
        return StackResult(stack, "new", compare(empty, head), empty, head, None, base_rev,
                           [f"`{stack}` is new on this branch (no stack file at `{base_rev}`): every resource "
                            "is added."])
    if isinstance(base, BaseException):
        return StackResult(stack, "base-error", None, None, head, _error_text(base), base_rev)
    base = {**base, "source": f"{stack}@{base_rev}"}
    return StackResult(stack, "ok", compare(base, head), base, head, None, base_rev)


def quote(text: str) -> str:
    """`text` inside a Markdown alert: every line quoted, in a fenced block (nothing breaks out)."""
    body = str(text).replace("```", "'''")
    return "\n".join(f"> {line}" if line else ">" for line in ["```text", *body.splitlines(), "```"])


def result_blocks(result: StackResult, preview_url: str | None = None) -> list[str]:
    """The markdown blocks of one stack's comment (without markers)."""
    stack, base_rev = result.stack, result.base_rev
    title = f"## scaleladder review: `{stack}`"
    if result.status == "head-error":
        return [title, f"> [!CAUTION]\n> `{stack}` does not plan on this branch (the review fails, exit "
                       f"{EXIT_PLAN_FAILED}):\n{quote(result.error or '')}"]
    if result.status == "base-error":
        return [title, f"> [!CAUTION]\n> `{stack}` cannot be planned at the base `{base_rev}`, so this review cannot "
                       f"say what the branch changes (the review fails, exit {EXIT_PLAN_FAILED}):\n"
                       f"{quote(result.error or '')}"]
    diff = result.diff
    assert diff is not None and result.base_plan is not None and result.head_plan is not None
    blocks = markdown_blocks(diff, heading="###")
    try:
        # both at the same load (the higher phase's target): a phase change shows what the climb costs
        users, messages = equal_load(result.base_plan, result.head_plan)
        change = delta(*(price_plan(p, users=users, messages_per_day=messages)
                         for p in (result.base_plan, result.head_plan)))
        cost = [delta_markdown(change, heading="###")]
        cost_line = f"cost {change['total_delta_usd']:+,.2f} USD/month"
    except Exception as err:  # the comment is still posted, saying why the cost is missing
        cost = [f"> [!WARNING]\n> Cost could not be computed: {type(err).__name__}: {err}"]
        cost_line = "cost unavailable"
    s = diff.summary()
    status = f"**{s['stateful_losses']} stateful loss(es)**" if s["stateful_losses"] else "no stateful loss"
    if diff.refusals:
        status = f"**{len(diff.refusals)} change(s) AWS cannot apply in place**; {status}"
    summary = (f"phase {result.head_plan.get('phase')}: {s['add']} to add, {s['update']} to update, "
               f"{s['replace']} to replace, {s['remove']} to remove; {status}; {cost_line}. "
               f"Offline plan (Pulumi mocks), compared with `{base_rev}`.")
    notes = list(result.notes)
    if preview_url:
        notes.append(f"Real `pulumi preview --diff` for this PR: [workflow run]({preview_url}).")
    # refusals and stateful findings (the diff's alert blocks) first, then cost, then the rest of the diff
    alerts = [b for b in blocks[1:] if b.startswith("> [!") or b.startswith("No stateful")]
    rest = [b for b in blocks[1:] if b not in alerts]
    return [title, summary, *notes, *alerts, *cost, blocks[0], *rest]


def stack_blocks(stack: str, base_rev: str, base: dict[str, Any] | BaseException,
                 head: dict[str, Any] | BaseException, preview_url: str | None = None) -> tuple[list[str], Diff | None]:
    """The markdown blocks of one stack's comment (without markers) and its diff."""
    result = review_stack(stack, base_rev, base, head)
    return result_blocks(result, preview_url), result.diff


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


def _head_plan(stack: str) -> dict[str, Any] | BaseException:
    try:
        return load(stack)
    except Exception as err:  # a stack that does not plan is reported in its comment, not raised
        return err


def review(stacks: list[str], base_rev: str) -> list[StackResult]:
    """Every stack's outcome: the base planned from `base_rev`'s tree, the head from the working tree."""
    bases = plans_at(stacks, base_rev)
    return [review_stack(stack, base_rev, bases[stack], _head_plan(stack)) for stack in stacks]


def failure_lines(results: list[StackResult], allow_destroy: bool) -> list[str]:
    """Why `exit_code` is not 0 (or what --allow-destroy accepted), one line per stack, for stderr."""
    lines = []
    for r in results:
        if r.status in ("head-error", "base-error"):
            where = "on this branch" if r.status == "head-error" else f"at the base {r.base_rev}"
            first = (r.error or "").strip().splitlines()[:1] or [""]
            lines.append(f"error: {r.stack} does not plan {where}: {first[0]}")
        elif r.diff and (r.diff.refusals or r.diff.losses):
            lines.append(f"{'warning' if allow_destroy else 'error'}: {r.stack}: {len(r.diff.refusals)} change(s) "
                         f"AWS cannot apply in place, {len(r.diff.losses)} stateful loss(es)"
                         + (" (accepted: --allow-destroy)" if allow_destroy else ""))
    return lines


def cmd_review(args: argparse.Namespace) -> int:
    stacks = args.stack or engine.stack_names()
    results = review(stacks, args.base)
    # ONE summary comment for every stack (ladder/review_comment.py), posted by
    # .github/scripts/review-comments.js from DIR/manifest.json
    bodies = review_comment.render(results, base_rev=args.base, head_sha=args.head_sha or review_comment.head_commit(),
                                   run_time=datetime.now(UTC), preview_url=args.preview_url,
                                   policy=review_comment.policy_results(results))
    if args.out:
        review_comment.write(Path(args.out), bodies)
        for result in results:
            print(f"{result.stack}: {result.status}")
        print(f"{len(bodies)} comment part(s) in {args.out}")
    else:
        print("\n".join(bodies))
    for line in failure_lines(results, args.allow_destroy):
        print(line, file=sys.stderr)
    return exit_code(results, args.allow_destroy)


def _review_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--base", required=True, help="git revision to compare with, e.g. origin/main")
    p.add_argument("--stack", action="append", help="stack to review (repeatable; default: every preset stack)")
    p.add_argument("--out", help="write the comment parts (part-NN.md) and manifest.json into this directory")
    p.add_argument("--head-sha", help="commit the comment names as the head (default: the checked-out HEAD)")
    p.add_argument("--preview-url", help="link to a real `pulumi preview --diff` run, added to every comment")
    p.add_argument("--allow-destroy", action="store_true",
                   help="accept intended stateful losses and changes AWS cannot apply in place (exit 0 for those; "
                        "a stack that does not plan still fails)")


COMMANDS["review"] = ("PR comment bodies per preset stack: diff vs --base REV, cost delta, stateful warnings",
                      _review_args, cmd_review)
