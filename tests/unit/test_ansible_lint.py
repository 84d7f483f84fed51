"""ansible/ is lint-clean (ansible-lint, production profile), every playbook passes
`ansible-playbook --syntax-check`, and the inventory file sets only options the
amazon.aws.aws_ec2 plugin documents, with the values our tags and the SSM connection need."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ANSIBLE = REPO / "ansible"
BIN = Path(sys.executable).parent
PLAYBOOKS = sorted(p.name for p in ANSIBLE.glob("*.yml"))


def _tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{name} not in .venv: run bash scripts/setup (pinned in requirements.txt)")
    return str(path)


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "ANSIBLE_HOME": str(tmp_path / "ansible-home"), "ANSIBLE_NOCOLOR": "1",
            "NO_COLOR": "1", "PATH": f"{BIN}:{os.environ['PATH']}"}


def test_playbooks_are_the_three_day2_procedures() -> None:
    assert PLAYBOOKS == ["configure.yml", "deploy.yml", "refresh-credentials.yml"]


def test_ansible_lint_production_profile_is_clean(tmp_path: Path) -> None:
    done = subprocess.run([_tool("ansible-lint"), "--offline", "--profile", "production", "--nocolor", "."],
                          cwd=ANSIBLE, capture_output=True, text=True, timeout=300, env=_env(tmp_path),
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "Profile 'production' was required, and it passed" in done.stdout + done.stderr


@pytest.mark.parametrize("name", PLAYBOOKS)
def test_playbook_syntax(name: str, tmp_path: Path) -> None:
    done = subprocess.run([_tool("ansible-playbook"), "--syntax-check", "-i", "localhost,", name,
                           "-e", "stack=phase1"], cwd=ANSIBLE, capture_output=True, text=True, timeout=120,
                          env=_env(tmp_path), stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout + done.stderr


def _documented_options(tmp_path: Path) -> set[str]:
    """The options amazon.aws.aws_ec2's DOCUMENTATION declares, its doc fragments included
    (`ansible-doc`: ansible's own loader)."""
    done = subprocess.run([_tool("ansible-doc"), "-t", "inventory", "--json", "amazon.aws.aws_ec2"],
                          capture_output=True, text=True, timeout=120, env=_env(tmp_path), stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout)["amazon.aws.aws_ec2"]["doc"]["options"]) | {"plugin"}


def test_inventory_uses_only_documented_options_and_our_tags(tmp_path: Path) -> None:
    inventory = yaml.safe_load((ANSIBLE / "inventory" / "aws_ec2.yml").read_text())
    documented = _documented_options(tmp_path)
    assert {"filters", "keyed_groups", "compose", "hostnames", "regions"} <= documented  # the loader read the fragments
    unknown = set(inventory) - documented
    assert not unknown, f"options amazon.aws.aws_ec2 does not document: {sorted(unknown)}"
    assert inventory["plugin"] == "amazon.aws.aws_ec2"
    filters = inventory["filters"]
    assert filters["tag:project"] == "scaleladder" and filters["instance-state-name"] == "running"
    assert "SCALELADDER_STACK" in filters["tag:stack"]
    keys = [g["key"] for g in inventory["keyed_groups"]]
    assert any(k.startswith("tags.role") for k in keys) and any(k.startswith("tags.stack") for k in keys)


def test_hosts_are_reached_over_ssm_with_documented_connection_options() -> None:
    import ansible_collections.amazon.aws.plugins.connection.aws_ssm as ssm

    doc = yaml.safe_load(ssm.DOCUMENTATION)
    documented = {v["name"] for o in doc["options"].values() for v in o.get("vars", [])}
    group_vars = yaml.safe_load((ANSIBLE / "inventory" / "group_vars" / "aws_ec2.yml").read_text())
    assert group_vars["ansible_connection"] == "amazon.aws.aws_ssm"
    ssm_vars = {k for k in group_vars if k.startswith("ansible_aws_ssm_")}
    assert ssm_vars <= documented, sorted(ssm_vars - documented)
    assert group_vars["ansible_aws_ssm_bucket_sse_mode"] in doc["options"]["bucket_sse_mode"]["choices"]
    compose = yaml.safe_load((ANSIBLE / "inventory" / "aws_ec2.yml").read_text())["compose"]
    assert {k for k in compose if k.startswith("ansible_aws_ssm_")} <= documented
    # Never SSH: nothing sets an SSH user, key or port.
    text = "".join(p.read_text() for p in ANSIBLE.rglob("*.yml"))
    assert "ansible_ssh" not in text and "ansible_user" not in text and "ansible_port" not in text
