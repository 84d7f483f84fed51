"""`ladder review` and the PR-preview workflow: comment size, markers, warnings first, and a
workflow that only calls commands the CLI has."""

from __future__ import annotations

import copy
import re
import shlex

import yaml

from ladder import cli, engine
from ladder.diff import load
from ladder.review import GITHUB_LIMIT, MARKER, split, stack_blocks

WORKFLOW = engine.REPO / ".github" / "workflows" / "preview.yml"


def huge_change(plan: dict, extra: int = 4000) -> dict:
    """Every input of every resource changed, plus thousands of new resources."""
    b = copy.deepcopy(plan)
    for r in b["resources"]:
        r["inputs"] = {f"{k}": f"{v!r}-changed-" + "x" * 150 for k, v in r["inputs"].items()}
        r["inputs"]["description"] = "y" * 5000
    template = b["resources"][0]
    for i in range(extra):
        new = copy.deepcopy(template)
        new.update(urn=f"{template['urn']}-extra-{i}", name=f"extra-{i}-" + "z" * 80)
        b["resources"].append(new)
    return b


def test_comment_parts_stay_under_githubs_limit_even_for_a_huge_diff():
    base = load("phase2")
    blocks, diff = stack_blocks("phase2", "origin/main", base, huge_change(base))
    bodies = split(blocks, "phase2")
    assert len(bodies) > 1, "the forced diff is larger than one comment"
    assert max(len(b) for b in bodies) < GITHUB_LIMIT
    for n, body in enumerate(bodies, 1):
        assert body.startswith(MARKER.format(stack="phase2"))
        assert f"<!-- scaleladder-review-part:{n}/{len(bodies)} -->" in body


def test_a_single_enormous_line_is_cut_not_posted():
    (body,) = split(["a" * (GITHUB_LIMIT * 2)], "phase1")[:1]
    assert len(body) < GITHUB_LIMIT


def test_stateful_warnings_come_before_cost_and_the_resource_list():
    base = load("phase2")
    head = copy.deepcopy(base)
    db = next(r for r in head["resources"] if r["type"] == "aws:rds/instance:Instance")
    db["inputs"]["storageEncrypted"] = False
    (body,) = split(stack_blocks("phase2", "origin/main", base, head)[0], "phase2")
    assert body.index("[!CAUTION]") < body.index("Cost delta") < body.index("| action | type |")
    assert "1 stateful loss" in body


def test_a_stack_missing_at_the_base_is_compared_with_an_empty_stack():
    head = load("phase1")
    blocks, diff = stack_blocks("phase1", "old", ValueError("no file"), head)
    assert diff.summary()["add"] == len(head["resources"]) and "compared against an empty stack" in "\n".join(blocks)


def test_review_writes_one_file_per_stack_with_its_marker(tmp_path):
    assert cli.main(["review", "--base", "HEAD", "--stack", "phase1", "--out", str(tmp_path)]) == 0
    (body,) = [p.read_text() for p in tmp_path.glob("phase1*.md")]
    assert body.startswith(MARKER.format(stack="phase1")) and "Cost delta" in body


# ---------------------------------------------------------------------------
# .github/workflows/preview.yml


def workflow() -> dict:
    data = yaml.safe_load(WORKFLOW.read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as true
    return data


def steps(job: str) -> list[dict]:
    return workflow()["jobs"][job]["steps"]


def test_workflow_runs_on_pull_requests():
    assert "pull_request" in workflow()["on"]


def test_every_ladder_command_the_workflow_runs_exists():
    cli._load_extensions()
    runs = [s["run"] for job in workflow()["jobs"].values() for s in job["steps"] if "run" in s]
    calls = [m.group(1) for run in runs for m in re.finditer(r"python -m ladder (\S+)", run)]
    assert "review" in calls and "stacks" in calls
    assert set(calls) <= set(cli.COMMANDS), set(calls) - set(cli.COMMANDS)
    review = next(run for run in runs if "ladder review" in run)
    line = next(l for l in review.splitlines() if "ladder review" in l)
    args = shlex.split(line.split("python -m ladder", 1)[1].split("${PREVIEW_URL")[0])
    assert args[:2] == ["review", "--base"] and "--out" in args


def test_review_job_has_history_and_edits_comments_in_place():
    job = steps("review")
    checkout = next(s for s in job if s.get("uses", "").startswith("actions/checkout"))
    assert checkout["with"]["fetch-depth"] == 0
    script = next(s for s in job if s.get("uses", "").startswith("actions/github-script"))["with"]["script"]
    assert "updateComment" in script and "createComment" in script and "scaleladder-review:" in script


def test_real_preview_only_when_secrets_exist():
    jobs = workflow()["jobs"]
    assert "cloud" in jobs["pulumi-preview"]["if"]
    action = next(s for s in jobs["pulumi-preview"]["steps"] if s.get("uses", "").startswith("pulumi/actions"))
    assert action["with"]["command"] == "preview" and action["with"]["diff"] is True
    check = next(s for s in jobs["setup"]["steps"] if s.get("id") == "cloud")
    assert {"AWS_ACCESS_KEY_ID", "PULUMI_ACCESS_TOKEN"} <= set(check["env"])
