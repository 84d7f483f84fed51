"""`ladder review`'s exit code comes from the stacks' results, whatever renders the comment:
`--allow-destroy` accepts an intended stateful loss, never a change AWS cannot apply in place nor
a stack that does not plan; a mandatory policy violation new against the base fails (exit 4)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from ladder import cli, engine, review
from ladder.diff import load


def comment(out: Path) -> str:
    manifest = json.loads((out / "manifest.json").read_text())
    return "\n".join((out / name).read_text() for name in manifest["parts"])


@pytest.fixture
def reviewed(monkeypatch):
    """The results `review` returns (the test fills them in); the policy pack finds nothing."""
    results: list[review.StackResult] = []
    monkeypatch.setattr(review, "review", lambda stacks, base: results)
    monkeypatch.setattr(review.review_comment, "policy_results", lambda rs: {r.stack: [] for r in rs})
    return results


def test_allow_destroy_never_accepts_a_change_aws_cannot_apply_in_place(reviewed, tmp_path, capsys):
    reviewed.append(review.review_stack("phase3", "base", load("phase4"), load("phase3")))  # a step back 4 -> 3
    assert cli.main(["review", "--base", "base", "--stack", "phase3", "--out", str(tmp_path / "a")]) == 3
    assert "error: phase3: 2 change(s) AWS cannot apply in place" in capsys.readouterr().err
    assert cli.main(["review", "--base", "base", "--stack", "phase3", "--allow-destroy",
                     "--out", str(tmp_path / "b")]) == 3
    assert "--allow-destroy does not accept these" in capsys.readouterr().err
    body = comment(tmp_path / "b")
    assert "Needs attention: `phase3`" in body and "the `scaleladder/allow-destroy` label does not accept" in body


def test_allow_destroy_accepts_a_stateful_loss_and_the_comment_says_so(reviewed, tmp_path, capsys):
    base = load("phase2")
    head = copy.deepcopy(base)
    head["resources"] = [r for r in head["resources"] if r["type"] != "aws:s3/bucket:Bucket"]  # deleted with its data
    reviewed.append(review.review_stack("phase2", "base", base, head))
    assert reviewed[0].diff.losses and not reviewed[0].diff.refusals
    assert cli.main(["review", "--base", "base", "--out", str(tmp_path / "a")]) == 3
    assert "Needs attention: `phase2`" in comment(tmp_path / "a")
    assert cli.main(["review", "--base", "base", "--allow-destroy", "--out", str(tmp_path / "b")]) == 0
    assert "warning: phase2: 1 stateful loss(es) (accepted: --allow-destroy)" in capsys.readouterr().err
    body = comment(tmp_path / "b")
    assert "accepted by the label scaleladder/allow-destroy: 1 loss(es) in `phase2`" in body.replace(
        "Accepted by the label", "accepted by the label")
    assert "Needs attention" not in body and "The review check fails" not in body


def test_allow_destroy_never_accepts_a_stack_that_does_not_plan(reviewed, tmp_path):
    reviewed.append(review.review_stack("phase3", "base", load("phase4"), load("phase3")))
    reviewed.append(review.review_stack("phase2", "base", load("phase2"), ValueError("broken")))
    assert cli.main(["review", "--base", "base", "--allow-destroy", "--out", str(tmp_path)]) == review.EXIT_PLAN_FAILED


@pytest.fixture
def public_db(monkeypatch):
    """phase2 unchanged between base and branch, except that the branch's plan (the one the policy
    pack runs on) has its database publicly accessible, as `publicly_accessible=True` would."""
    run = engine.run

    def public(stack, *args, **kwargs):
        plan = run(stack, *args, **kwargs)
        for r in plan.resources:
            if r.type == "aws:rds/instance:Instance":
                r.inputs["publiclyAccessible"] = True
        return plan

    p2 = load("phase2")
    monkeypatch.setattr(engine, "run", public)
    monkeypatch.setattr(review, "review", lambda stacks, base: [review.review_stack("phase2", "base", p2, p2)])


def test_a_mandatory_policy_violation_new_against_the_base_fails_the_review(public_db, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(review, "base_policy", lambda stack, rev: [])
    assert cli.main(["review", "--base", "base", "--allow-destroy", "--out", str(tmp_path)]) == review.EXIT_POLICY == 4
    assert "mandatory policy violation new against base: [rds-not-public]" in capsys.readouterr().err
    body = comment(tmp_path)
    assert "Needs attention: `phase2`" in body and "**1 fail**" in body and "the review fails, exit 4" in body


def test_a_mandatory_violation_the_base_has_too_does_not_fail_but_with_no_base_to_compare_it_does(
        public_db, monkeypatch, tmp_path):
    seen = {}

    def base_has_it(stack, rev):
        seen[stack] = rev
        return review.review_comment.policy_results(review.review([stack], rev))[stack]  # the same public db

    monkeypatch.setattr(review, "base_policy", base_has_it)
    assert cli.main(["review", "--base", "base", "--out", str(tmp_path / "a")]) == 0 and seen == {"phase2": "base"}
    assert "at `base` too, so the review does not fail" in comment(tmp_path / "a")
    monkeypatch.setattr(review, "base_policy", lambda stack, rev: None)  # the base's pack cannot be run
    assert cli.main(["review", "--base", "base", "--out", str(tmp_path / "b")]) == review.EXIT_POLICY


def test_the_base_policy_runs_the_pack_in_the_base_tree_and_is_none_without_one():
    assert review.base_policy("phase1", "HEAD") == []  # `policy phase1 --json` at HEAD: nothing mandatory
    assert review.base_policy("phase1", "no-such-rev") is None  # nothing to compare: every violation counts
    assert review.base_policy("no-such-stack", "HEAD") is None
