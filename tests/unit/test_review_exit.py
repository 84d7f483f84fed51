"""`ladder review`'s exit code comes from the stacks' results, whatever renders the comment:
`--allow-destroy` accepts a step back AWS cannot apply in place, never a stack that does not plan."""

from __future__ import annotations

import pytest

from ladder import cli, review
from ladder.diff import load


@pytest.fixture
def step_back(monkeypatch):
    """The review sees one stack at phase 4 on the base and at phase 3 on the branch."""
    results = [review.review_stack("phase3", "base", load("phase4"), load("phase3"))]
    monkeypatch.setattr(review, "review", lambda stacks, base: results)
    return results


def test_allow_destroy_accepts_the_refused_step_back_only_when_asked(step_back, tmp_path, capsys):
    assert cli.main(["review", "--base", "base", "--stack", "phase3", "--out", str(tmp_path / "a")]) == 3
    assert "error: phase3: 2 change(s) AWS cannot apply in place" in capsys.readouterr().err
    assert cli.main(["review", "--base", "base", "--stack", "phase3", "--allow-destroy",
                     "--out", str(tmp_path / "b")]) == 0
    assert "accepted: --allow-destroy" in capsys.readouterr().err


def test_allow_destroy_never_accepts_a_stack_that_does_not_plan(step_back, tmp_path):
    step_back.append(review.review_stack("phase2", "base", load("phase2"), ValueError("broken")))
    assert cli.main(["review", "--base", "base", "--allow-destroy", "--out", str(tmp_path)]) == review.EXIT_PLAN_FAILED
