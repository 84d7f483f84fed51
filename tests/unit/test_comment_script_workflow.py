"""`.github/workflows/preview.yml` hardening that actionlint and zizmor (run by `make lint`)
do not enforce for this workflow in particular: which job may write to the PR or mint an
OIDC token, how the allow-destroy label reaches the gate, and that the comment job posts
exactly what the review job wrote, through the tested script."""

from __future__ import annotations

import argparse
import re
import shlex
from typing import Any

import yaml

from ladder import cli, engine

WORKFLOW = engine.REPO / ".github" / "workflows" / "preview.yml"
SHA_PIN = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")


def workflow() -> dict[str, Any]:
    data = yaml.safe_load(WORKFLOW.read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as true
    return data


def jobs() -> dict[str, dict[str, Any]]:
    return workflow()["jobs"]


def test_no_permission_by_default_and_write_access_only_where_needed():
    assert workflow()["permissions"] == {}
    perms = {name: job.get("permissions") for name, job in jobs().items()}
    assert all(isinstance(p, dict) for p in perms.values()), f"every job states its permissions: {perms}"
    writers = {name for name, p in perms.items() if any(v == "write" for v in p.values())}
    assert writers == {"comment", "pulumi-preview"}
    assert perms["comment"] == {"contents": "read", "pull-requests": "write"}
    assert perms["pulumi-preview"] == {"contents": "read", "id-token": "write"}


def test_the_job_that_writes_to_the_pr_runs_no_pr_code():
    comment = jobs()["comment"]
    assert not any("run" in s for s in comment["steps"]), "the comment job runs only pinned actions"
    checkout = next(s for s in comment["steps"] if s["uses"].startswith("actions/checkout@"))
    assert checkout["with"]["sparse-checkout"] == ".github/scripts"
    script = next(s for s in comment["steps"] if s["uses"].startswith("actions/github-script@"))["with"]["script"]
    assert "require('./.github/scripts/review-comments.js')" in script and "dir: 'review'" in script
    assert (engine.REPO / ".github" / "scripts" / "review-comments.js").is_file()


def test_every_action_is_pinned_to_a_commit_and_every_checkout_drops_credentials():
    text = WORKFLOW.read_text()
    for name, job in jobs().items():
        for step in job["steps"]:
            if "uses" not in step:
                continue
            assert SHA_PIN.match(step["uses"]), f"{name}: {step['uses']} is not pinned to a full commit SHA"
            line = next(x for x in text.splitlines() if step["uses"] in x)
            assert re.search(r"# v\d+\.\d+\.\d+$", line), f"{line.strip()}: name the release beside the SHA"
            if step["uses"].startswith("actions/checkout@"):
                assert step.get("with", {}).get("persist-credentials") is False, f"{name}: checkout keeps its token"


def test_no_expression_is_expanded_inside_a_shell_script():
    """Untrusted values (base ref, head SHA, labels) reach `run:` only through `env`."""
    for name, job in jobs().items():
        for step in job["steps"]:
            assert "${{" not in step.get("run", ""), f"{name}: {step['run']!r} expands an expression in the shell"


def test_allow_destroy_only_with_the_label_and_the_gate_fails_on_any_non_zero_exit():
    steps = jobs()["review"]["steps"]
    review = next(s for s in steps if "python -m ladder review" in s.get("run", ""))
    assert review["env"]["ALLOW_DESTROY"] == \
        "${{ contains(github.event.pull_request.labels.*.name, 'scaleladder/allow-destroy') && '1' || '' }}"
    assert "${ALLOW_DESTROY:+--allow-destroy}" in review["run"]
    assert review["run"].count("--allow-destroy") == 1, "passed only through the label's variable"
    assert 'code=$?' in review["run"]
    gate = steps[-1]
    assert gate["if"] == "steps.review.outputs.code != '0'" and "exit 1" in gate["run"]
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["with"]["path"] == "review/" and upload["with"]["if-no-files-found"] == "error"
    assert steps.index(upload) < steps.index(gate), "the comment is posted even when the gate fails"
    assert "labeled" in workflow()["on"]["pull_request"]["types"], "adding the label re-runs the gate"


def test_oidc_is_the_documented_way_and_keys_the_fallback():
    steps = jobs()["pulumi-preview"]["steps"]
    aws = [s for s in steps if s.get("uses", "").startswith("aws-actions/configure-aws-credentials@")]
    oidc, keys = aws
    assert oidc["with"]["role-to-assume"] == "${{ vars.AWS_ROLE_ARN }}" and oidc["if"] == "vars.AWS_ROLE_ARN != ''"
    assert "aws-access-key-id" in keys["with"] and keys["if"] == "vars.AWS_ROLE_ARN == ''"
    assert jobs()["pulumi-preview"]["environment"] == "pulumi-preview"
    assert "secrets." not in yaml.safe_dump(jobs()["setup"]), "secrets only in the environment's job"


def test_the_review_line_parses_with_the_cli_the_branch_ships():
    cli._load_extensions()
    run = next(s["run"] for s in jobs()["review"]["steps"] if "python -m ladder review" in s.get("run", ""))
    line = next(x for x in run.splitlines() if "python -m ladder review" in x)
    args = shlex.split(line.split("python -m ladder", 1)[1].replace("${PREVIEW_URL:+--preview-url \"$PREVIEW_URL\"}",
                                                                     "--preview-url u")
                       .replace("${ALLOW_DESTROY:+--allow-destroy}", "--allow-destroy"))
    parser = argparse.ArgumentParser()
    cli.COMMANDS["review"][1](parser)
    parsed = parser.parse_args(args[1:])
    assert parsed.allow_destroy and parsed.out == "review/" and parsed.head_sha == "$HEAD_SHA"
