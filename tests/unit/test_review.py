"""`ladder review` and the PR-preview workflow: comment size, markers, warnings first, and a
workflow that only calls commands the CLI has."""

from __future__ import annotations

import copy
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ladder import cli, engine
from ladder.diff import PlanUnavailable, StackMissing, load, plans_at
from ladder.review import EXIT_PLAN_FAILED, StackResult, exit_code, review_stack
from ladder.review_comment import GITHUB_LIMIT, render

WORKFLOW = engine.REPO / ".github" / "workflows" / "preview.yml"


def rendered(*results: StackResult, **kw) -> str:
    """The summary comment `cmd_review` posts for `results` (ladder/review_comment.py), parts joined."""
    return "\n".join(render(list(results), base_rev="origin/main", head_sha="0" * 40, run_time="now", **kw))


def test_a_single_enormous_line_is_cut_not_posted():
    error = StackResult("phase1", "head-error", None, None, None, "a" * (GITHUB_LIMIT * 2), base_rev="origin/main")
    bodies = render([error], base_rev="origin/main", head_sha="0" * 40, run_time="now")
    assert max(len(b) for b in bodies) < GITHUB_LIMIT


def test_stateful_warnings_come_before_cost_and_the_resource_list():
    base = load("phase2")
    head = copy.deepcopy(base)
    db = next(r for r in head["resources"] if r["type"] == "aws:rds/instance:Instance")
    db["inputs"]["storageEncrypted"] = False
    body = rendered(review_stack("phase2", "origin/main", base, head))
    assert body.index("[!CAUTION]") < body.index("**Cost:**") < body.index("| | resource | changes |")
    assert "1 stateful loss" in body


def comment(out: Path) -> str:
    """The PR comment `review --out` wrote: its parts in the manifest's order (ladder/review_comment.py)."""
    manifest = json.loads((out / "manifest.json").read_text())
    return "\n".join((out / name).read_text() for name in manifest["parts"])


def section(body: str, stack: str) -> str:
    """One stack's collapsed section of the summary comment."""
    start = body.index(f"<summary><b>{stack}")
    end = body.find("<summary><b>", start + 1)
    return body[start:end if end > 0 else len(body)]


def test_review_writes_the_summary_comment_and_its_manifest(tmp_path):
    assert cli.main(["review", "--base", "HEAD", "--stack", "phase1", "--out", str(tmp_path)]) == 0
    body = comment(tmp_path)
    assert body.startswith("<!-- scaleladder-review:part-01 -->") and "`phase1`" in body


# ---------------------------------------------------------------------------
# Exit codes: never green on a broken, dangerous or unknown change


def step_back() -> StackResult:
    """A stack at phase 4 on the base and at phase 3 on the branch (the presets stand in for both)."""
    return review_stack("phase3", "base", load("phase4"), load("phase3"))  # URNs compared stack-neutral


def test_a_step_back_from_4_to_3_fails_with_what_aws_cannot_do_first():
    result = step_back()
    assert result.status == "ok" and exit_code([result]) == 3
    refused = {(r.resource, r.input) for r in result.diff.refusals}
    assert {("redis", "clusterMode"), ("db", "allocatedStorage")} <= refused
    body = rendered(result)
    first = body.index("AWS cannot apply this in place")
    assert first < body.index("**Cost:**") < body.index("| | resource | changes |")
    assert "enabled" in body[first:body.index("**Cost:**")] and "Modifying cluster mode" in body
    # `pulumi up` refuses these whatever the label says: --allow-destroy accepts losses only
    assert exit_code([result], allow_destroy=True) == 3


def test_a_stack_new_on_the_branch_is_shown_as_new_and_passes():
    head = load("phase1")
    result = review_stack("phase1", "old", StackMissing("no stack file"), head)
    assert result.status == "new" and result.diff.summary()["add"] == len(head["resources"])
    assert exit_code([result]) == 0 and "new on this branch" in rendered(result)


def test_a_base_that_does_not_plan_fails_and_is_not_compared_with_an_empty_stack():
    result = review_stack("phase1", "origin/main", PlanUnavailable("phase1@origin/main: `plan` failed"), load("phase1"))
    assert result.status == "base-error" and result.diff is None
    assert exit_code([result]) == EXIT_PLAN_FAILED == exit_code([result], allow_destroy=True)
    assert "compared against an empty stack" not in rendered(result) and "to add" not in rendered(result)


def test_a_multi_line_error_stays_inside_the_alert():
    error = ValueError("preflight: 2 inputs the provider or AWS would refuse:\n  a\n\n  ```b```\n> c")
    result = review_stack("phase1", "HEAD", load("phase1"), error)
    assert result.status == "head-error" and exit_code([result], allow_destroy=True) == EXIT_PLAN_FAILED
    body = rendered(result)
    alert = body[body.index("> [!CAUTION]\n> `phase1` does not plan"):].split("\n\n")[0]
    assert all(line.startswith(">") for line in alert.splitlines()) and "'''b'''" in alert and "> > c" in alert
    assert alert.count("```") == 2  # the error's own fences cannot close the block early


def test_planning_failures_win_over_losses_and_allow_destroy():
    results = [step_back(), review_stack("phase2", "b", StackMissing("x"), ValueError("broken"))]
    assert exit_code(results) == EXIT_PLAN_FAILED == exit_code(results, allow_destroy=True)
    assert exit_code(results[:1]) == 3


def test_an_unknown_base_revision_fails_the_review(tmp_path):
    assert cli.main(["review", "--base", "origin/nosuch", "--stack", "phase1", "--out", str(tmp_path)]) == 2
    body = comment(tmp_path)
    assert "origin/nosuch" in body and "[!CAUTION]" in body and "to add" not in body


@pytest.fixture
def repo(tmp_path) -> Path:
    """A git repository holding a copy of this project's files (committed), for runs of the CLI
    against a branch that differs from its base the way a PR would."""
    root = tmp_path / "repo"
    files = subprocess.run(["git", "-C", str(engine.REPO), "ls-files", "--cached", "--others", "--exclude-standard"],
                           capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        src = engine.REPO / name
        if src.is_file() and not name.startswith(("docs/", "bench/", "tests/integration")):
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, root / name)
    git = ["git", "-C", str(root), "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "base"], check=True)
    return root


def commit(root: Path, message: str) -> None:
    git = ["git", "-C", str(root), "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run([*git, "commit", "-qam", message], check=True)


def run_review(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ladder", "review", "--out", str(root / "out"), *args], cwd=root,
                          capture_output=True, text=True, timeout=600)


def test_a_branch_with_a_syntax_error_fails_the_review(repo):
    (repo / "components" / "cdn.py").write_text("def broken(:\n")
    proc = run_review(repo, "--base", "HEAD", "--stack", "phase1")
    assert proc.returncode == EXIT_PLAN_FAILED, proc.stderr
    body = comment(repo / "out")
    alert = body[body.index("> [!CAUTION]\n> `phase1` does not plan"):].split("\n\n")[0]
    assert "does not plan on this branch" in alert and "SyntaxError" in alert
    assert all(line.startswith(">") for line in alert.strip().splitlines())


def test_review_of_a_step_back_and_a_config_error(repo):
    """Base: phase3's file says phase 4. Branch: phase3 back at 3, and phase2 with a config error."""
    stacks = repo / "stacks"
    original = (stacks / "Pulumi.phase3.yaml").read_text()
    (stacks / "Pulumi.phase3.yaml").write_text(original.replace("scaleladder:phase: 3", "scaleladder:phase: 4"))
    commit(repo, "phase3 at phase 4")
    (stacks / "Pulumi.phase3.yaml").write_text(original)
    phase2 = (stacks / "Pulumi.phase2.yaml").read_text()
    # Into the preset's own scaleladder:redis block (a second block would be a duplicate YAML key:
    # the later one wins and the error would vanish).
    block = "  scaleladder:redis:\n" if "  scaleladder:redis:\n" in phase2 else "config:\n"
    (stacks / "Pulumi.phase2.yaml").write_text(phase2.replace(
        block, block + ("" if block.startswith("  ") else "  scaleladder:redis:\n") + "    clusterMode: sideways\n", 1))
    proc = run_review(repo, "--base", "HEAD", "--stack", "phase3", "--stack", "phase2")
    assert proc.returncode == EXIT_PLAN_FAILED, proc.stderr
    back = section(comment(repo / "out"), "phase3")
    assert back.index("AWS cannot apply this in place") < back.index("| | resource | changes |")
    assert "clusterMode" in back and "allocatedStorage" in back and "**redis**" in back and "**db**" in back
    broken = section(comment(repo / "out"), "phase2")
    assert "does not plan on this branch" in broken and "scaleladder:redis.clusterMode" in broken
    assert "error: phase3: 2 change(s) AWS cannot apply in place" in proc.stderr
    assert "error: phase2 does not plan on this branch" in proc.stderr


def test_a_stack_file_missing_at_the_base_is_new_not_a_failure(repo):
    shutil.copy(repo / "stacks" / "Pulumi.phase1.yaml", repo / "stacks" / "Pulumi.brandnew.yaml")  # branch only
    base = plans_at(["brandnew"], "HEAD", root=repo)["brandnew"]
    assert isinstance(base, StackMissing)
    assert not isinstance(plans_at(["phase1"], "no-such-rev", root=repo)["phase1"], StackMissing)


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


def test_review_job_has_history():
    checkout = next(s for s in steps("review") if s.get("uses", "").startswith("actions/checkout"))
    assert checkout["with"]["fetch-depth"] == 0
# The comment posting (.github/scripts/review-comments.js), permissions, pins, OIDC and the
# allow-destroy label: tests/unit/test_comment_script.py and test_comment_script_workflow.py.
