"""`python -m ladder review --base REV`: the PR review comment, one summary for every stack.

Each stack at `REV` (planned from that revision's tree) is compared with the working tree;
`review_comment.render` turns the results into the comment bodies (a summary row per stack
that changes, per-stack detail collapsed under it), which `--out DIR` writes for
`.github/scripts/review-comments.js` to post.

Exit codes (`exit_code`), after writing every body: 2 when a stack does not plan on the
branch or at the base (a stack whose file does not exist at the base is new on the branch,
not an error; an unknown `--base` fails every stack); else 3 when a change cannot be
applied in place (ladder/inplace.py: always, `--allow-destroy` does not accept it, the
program itself refuses it at `pulumi up`) or loses a stateful resource (unless
`--allow-destroy`); else 4 when the policy pack (policy/rules.py) finds a mandatory
violation on the branch that the base does not have (every mandatory violation when the
stack is new or the base's pack cannot be run); else 0.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from . import engine, review_comment
from .cli import COMMANDS
from .diff import (
    EXIT_STATEFUL_LOSS,
    Diff,
    PlanUnavailable,
    StackMissing,
    _revision_tree,
    _stack_file,
    compare,
    load,
    plans_at,
)
from .policy import Violation

EXIT_PLAN_FAILED = 2  # a stack does not plan on the branch, or its base cannot be planned
EXIT_POLICY = 4  # a mandatory policy violation new against the base

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


def exit_code(results: list[StackResult], allow_destroy: bool = False,
              blocking: Mapping[str, Sequence[Violation]] | None = None) -> int:
    """2 when any stack does not plan (branch or base), else 3 when any change cannot be applied
    in place (always) or loses a stateful resource (unless `allow_destroy`), else 4 when
    `blocking` (`new_mandatory`) holds a violation, else 0."""
    if any(r.status in ("head-error", "base-error") for r in results):
        return EXIT_PLAN_FAILED
    if any(r.diff and (r.diff.refusals or (r.diff.losses and not allow_destroy)) for r in results):
        return EXIT_STATEFUL_LOSS
    if any(blocking.values() if blocking else ()):
        return EXIT_POLICY
    return 0


def base_policy(stack: str, rev: str, root: Path = engine.REPO) -> list[Violation] | None:
    """The policy pack's violations on `stack` at revision `rev` (`policy STACK --json` run in that
    revision's tree), or None when there is nothing to compare with: no stack file there, the
    pack or the plan fails there, or its output is not the JSON this side writes."""
    try:
        tree = _revision_tree(rev, str(root))
        if not _stack_file(stack, Path(tree)).is_file():
            return None
        proc = subprocess.run([sys.executable, "-m", "ladder", "policy", stack, "--json"], cwd=tree,
                              capture_output=True, text=True, timeout=600)
        return [Violation(**v) for v in json.loads(proc.stdout)[stack]]  # exit 1 on a violation is expected
    except Exception:  # noqa: BLE001 - no base to compare with: every mandatory violation counts
        return None


def new_mandatory(results: Sequence[StackResult], policy: Mapping[str, Sequence[Violation]],
                  base_of: Callable[[str, str], list[Violation] | None] | None = None) -> dict[str, list[Violation]]:
    """Per stack, the branch's mandatory violations that the base does not have (matched by rule,
    resource type and name, so stack-neutral); all of them for a stack new on the branch or when
    the base's pack cannot be run. The base is only run for stacks with a mandatory violation."""
    base_of = base_of or base_policy
    out: dict[str, list[Violation]] = {}
    for r in results:
        found = [v for v in policy.get(r.stack) or () if v.level == "mandatory"]
        if not found:
            continue
        base = None if r.status == "new" else base_of(r.stack, r.base_rev)
        known = {(v.rule, v.type, v.name) for v in base or () if v.level == "mandatory"}
        out[r.stack] = [v for v in found if (v.rule, v.type, v.name) not in known]
    return out


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


def _head_plan(stack: str) -> dict[str, Any] | BaseException:
    try:
        return load(stack)
    except Exception as err:  # a stack that does not plan is reported in its comment, not raised
        return err


def review(stacks: list[str], base_rev: str) -> list[StackResult]:
    """Every stack's outcome: the base planned from `base_rev`'s tree, the head from the working tree."""
    bases = plans_at(stacks, base_rev)
    return [review_stack(stack, base_rev, bases[stack], _head_plan(stack)) for stack in stacks]


def failure_lines(results: list[StackResult], allow_destroy: bool,
                  blocking: Mapping[str, Sequence[Violation]] | None = None) -> list[str]:
    """Why `exit_code` is not 0 (or what --allow-destroy accepted), one line per stack, for stderr."""
    lines = []
    for r in results:
        if r.status in ("head-error", "base-error"):
            where = "on this branch" if r.status == "head-error" else f"at the base {r.base_rev}"
            first = (r.error or "").strip().splitlines()[:1] or [""]
            lines.append(f"error: {r.stack} does not plan {where}: {first[0]}")
            continue
        if r.diff and r.diff.refusals:
            lines.append(f"error: {r.stack}: {len(r.diff.refusals)} change(s) AWS cannot apply in place "
                         "(--allow-destroy does not accept these)")
        if r.diff and r.diff.losses:
            lines.append(f"{'warning' if allow_destroy else 'error'}: {r.stack}: {len(r.diff.losses)} stateful "
                         "loss(es)" + (" (accepted: --allow-destroy)" if allow_destroy else ""))
        for f in (r.diff.capacity_events if r.diff else []):
            lines.append(f"warning: {r.stack}: capacity event: {f.name} ({f.type}) {f.reason}")
        for v in (blocking or {}).get(r.stack) or ():
            lines.append(f"error: {r.stack}: mandatory policy violation new against {r.base_rev}: [{v.rule}] "
                         f"{v.type} {v.name}: {v.message}")
    return lines


def cmd_review(args: argparse.Namespace) -> int:
    stacks = args.stack or engine.stack_names()
    results = review(stacks, args.base)
    policy = review_comment.policy_results(results)
    blocking = new_mandatory(results, policy)
    # ONE summary comment for every stack (ladder/review_comment.py), posted by
    # .github/scripts/review-comments.js from DIR/manifest.json
    bodies = review_comment.render(results, base_rev=args.base, head_sha=args.head_sha or review_comment.head_commit(),
                                   run_time=datetime.now(UTC), preview_url=args.preview_url, policy=policy,
                                   blocking=blocking, allow_destroy=args.allow_destroy)
    if args.out:
        review_comment.write(Path(args.out), bodies)
        for result in results:
            print(f"{result.stack}: {result.status}")
        print(f"{len(bodies)} comment part(s) in {args.out}")
    else:
        print("\n".join(bodies))
    for line in failure_lines(results, args.allow_destroy, blocking):
        print(line, file=sys.stderr)
    return exit_code(results, args.allow_destroy, blocking)


def _review_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--base", required=True, help="git revision to compare with, e.g. origin/main")
    p.add_argument("--stack", action="append", help="stack to review (repeatable; default: every preset stack)")
    p.add_argument("--out", help="write the comment parts (part-NN.md) and manifest.json into this directory")
    p.add_argument("--head-sha", help="commit the comment names as the head (default: the checked-out HEAD)")
    p.add_argument("--preview-url", help="link to a real `pulumi preview --diff` run, added to every comment")
    p.add_argument("--allow-destroy", action="store_true",
                   help="accept intended stateful losses (exit 0 for those; a change AWS cannot apply in place, "
                        "a stack that does not plan and a new mandatory policy violation still fail)")


COMMANDS["review"] = ("PR comment bodies per preset stack: diff vs --base REV, cost delta, stateful warnings",
                      _review_args, cmd_review)
