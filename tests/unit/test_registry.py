"""Private images: ECR with pull rights on exactly the image's repository, other registries
with credentials from Secrets Manager; boot.sh logs in without exposing the password."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from ladder import engine, registry
from ladder.config import ConfigError
from ladder.userdata import CLOUDINIT

from .plans import plan, stack_values, user_data_texts

ECR_IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/api:1.4.2"
REPO_ARN = "arn:aws:ecr:eu-west-1:123456789012:repository/team/api"
SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:ghcr-pull-AbCdEf"
PULL = set(registry.ECR_PULL_ACTIONS)
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"


def statements(p: engine.Plan) -> dict[str, list[dict]]:
    """Role policy name -> its statements, parsed from the JSON the plan hands IAM."""
    out = {}
    for r in p.of_type(ROLE_POLICY):
        doc = json.loads(r.inputs["policy"])
        out[r.name] = [s if isinstance(s["Action"], list) else {**s, "Action": [s["Action"]]} for s in doc["Statement"]]
    return out


def ecr_grants(stmts: list[dict]) -> set[tuple[str, str]]:
    """(action, resource) pairs of every allowed ecr: action (wildcards included)."""
    grants = set()
    for s in stmts:
        assert s["Effect"] == "Allow"
        resources = s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]
        for action in s["Action"]:
            if action.startswith("ecr:") or action in ("*", "ecr*"):
                grants |= {(action, res) for res in resources}
    return grants


def boot_env(text: str) -> dict[str, str]:
    files = {f["path"]: f["content"] for f in yaml.safe_load(text)["write_files"]}
    return dict(line.split("=", 1) for line in files["/etc/scaleladder/boot.env"].splitlines() if "=" in line)


@pytest.mark.parametrize("stack", ["phase1", "phase3"])
def test_ecr_image_gets_pull_of_exactly_its_repository(stack):
    p = plan(stack, app={"image": ECR_IMAGE})
    policies = statements(p)
    assert ecr_grants(policies["app-host-access"]) == {(registry.ECR_LOGIN_ACTION, "*")} | {(a, REPO_ARN) for a in PULL}
    for name, stmts in policies.items():  # PgBouncer hosts pull no app image
        if name != "app-host-access":
            assert not ecr_grants(stmts), name
    for text in (t for t in user_data_texts(p).values() if "app.plain.env" in t):
        env = boot_env(text)
        assert (env["REGISTRY_AUTH"], env["REGISTRY"], env["REGISTRY_REGION"]) == (
            "ecr", "123456789012.dkr.ecr.eu-west-1.amazonaws.com", "eu-west-1")


def test_a_non_ecr_image_gets_no_ecr_permission_and_an_anonymous_pull():
    p = plan("phase2")  # the preset's ghcr.io image, no credentials
    assert not any(ecr_grants(stmts) for stmts in statements(p).values())
    env = boot_env(user_data_texts(p)["fleet-app"])
    assert (env["REGISTRY_AUTH"], env["REGISTRY"]) == ("none", "ghcr.io")


def test_registry_credentials_are_read_from_their_secret_by_the_app_hosts_only():
    p = plan("phase3", app={"image": "ghcr.io/acme/api:2.0.0", "registryCredentialsSecretArn": SECRET})
    policies = statements(p)
    readable = {name: {res for s in stmts if "secretsmanager:GetSecretValue" in s["Action"] for res in s["Resource"]}
                for name, stmts in policies.items()}
    assert SECRET in readable["app-host-access"]
    assert not any(SECRET in arns for name, arns in readable.items() if name != "app-host-access")
    assert not any(ecr_grants(stmts) for stmts in policies.values())
    env = boot_env(user_data_texts(p)["fleet-workers"])
    assert (env["REGISTRY_AUTH"], env["REGISTRY"], env["REGISTRY_SECRET_ARN"], env["REGISTRY_REGION"]) == (
        "secret", "ghcr.io", SECRET, "us-east-1")


@pytest.mark.parametrize("image,host", [
    ("node:22", "docker.io"), ("acme/api:1", "docker.io"), ("ghcr.io/acme/api:1", "ghcr.io"),
    ("registry.example.com:5000/api:1", "registry.example.com:5000"), ("localhost/api:1", "localhost"),
])
def test_registry_host_follows_dockers_rule(image, host):
    assert registry.registry_host(image) == host


@pytest.mark.parametrize("image,repo", [
    (ECR_IMAGE, "team/api"), ("123456789012.dkr.ecr.us-east-1.amazonaws.com/api@sha256:" + "a" * 64, "api"),
    ("123456789012.dkr.ecr.ap-southeast-2.amazonaws.com/a/b/c:latest", "a/b/c"),
])
def test_ecr_references_name_their_repository(image, repo):
    found = registry.ecr(image)
    assert found is not None and found.repository == repo


@pytest.mark.parametrize("overrides,key,says", [
    ({"image": "12345.dkr.ecr.eu-west-1.amazonaws.com/api:1"}, "scaleladder:app.image", "12-digit account"),
    ({"image": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/API:1"}, "scaleladder:app.image", "lowercase"),
    ({"image": ECR_IMAGE, "registryCredentialsSecretArn": SECRET}, "scaleladder:app.registryCredentialsSecretArn",
     "unset for ECR images"),
    ({"registryCredentialsSecretArn": "arn:aws:ssm:us-east-1:123456789012:parameter/x"},
     "scaleladder:app.registryCredentialsSecretArn", "Secrets Manager secret ARN"),
])
def test_bad_registry_config_is_refused_naming_the_key(overrides, key, says):
    with pytest.raises(ConfigError) as err:
        engine.validate_stack(stack_values("phase2", app=overrides))
    line = next(p for p in err.value.problems if key in p)
    assert says in line


# --- boot.sh ---------------------------------------------------------------------------------

BOOT = CLOUDINIT / "boot.sh"
PASSWORD = "s3cret-Pa55word-xyz"


def login_section() -> str:
    """boot.sh from its registry login to the end of its `pull` function (the part that runs
    here), then a call of it as a boot makes."""
    text = BOOT.read_text()
    start = text.index("# Registry login")
    end = text.index("\n}\n", text.index("docker logout")) + 3
    return "set -euo pipefail\n" + text[start:end] + 'pull "$IMAGE"\n'


def fake_tools(bin_dir: Path, log: Path, fail_first: int = 0) -> None:
    """`aws`, `docker` and `sleep` that record argv and stdin; docker login fails `fail_first` times."""
    scripts = {
        "aws": f"""#!/bin/bash
echo "aws $*" >> {log}
if [[ "$*" == *"ecr get-login-password"* ]]; then printf 'ecr-token-{PASSWORD}'; exit 0; fi
printf '{{"username": "robot", "password": "{PASSWORD}"}}'
""",
        "docker": f"""#!/bin/bash
echo "docker $*" >> {log}
if [[ "$1" == login ]]; then
  echo "stdin: $(cat)" >> {log}
  n=$(cat {log}.fails 2>/dev/null || echo 0); echo $((n + 1)) > {log}.fails
  if (( n < {fail_first} )); then exit 1; fi
  echo "Login Succeeded"
fi
""",
        "sleep": "#!/bin/bash\nexit 0\n",
    }
    for name, body in scripts.items():
        path = bin_dir / name
        path.write_text(body)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)


def run_login(tmp_path: Path, env: dict[str, str], fail_first: int = 0) -> tuple[subprocess.CompletedProcess, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    fake_tools(bin_dir, log, fail_first)
    result = subprocess.run(["bash", "-c", login_section()], capture_output=True, text=True, timeout=60,
                            env={"PATH": f"{bin_dir}:{os.environ['PATH']}", "IMAGE": "img:1", **env})
    return result, log.read_text() if log.exists() else ""


def argv_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if not line.startswith("stdin: ")]


def test_boot_sh_parses_and_passes_shellcheck():
    assert subprocess.run(["bash", "-n", str(BOOT)], capture_output=True).returncode == 0
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck not installed")
    result = subprocess.run(["shellcheck", str(BOOT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_ecr_login_pipes_the_token_and_retries(tmp_path):
    result, log = run_login(tmp_path, {"REGISTRY_AUTH": "ecr", "REGISTRY": "1.dkr.ecr.eu-west-1.amazonaws.com",
                                       "REGISTRY_REGION": "eu-west-1", "REGISTRY_SECRET_ARN": ""}, fail_first=2)
    assert result.returncode == 0, result.stderr
    assert log.count("aws ecr get-login-password --region eu-west-1") == 3  # two failures, then success
    assert "docker login --username AWS --password-stdin 1.dkr.ecr.eu-west-1.amazonaws.com" in log
    assert f"stdin: ecr-token-{PASSWORD}" in log
    assert not any(PASSWORD in line for line in argv_lines(log))
    assert "docker pull img:1" in log and "docker logout 1.dkr.ecr.eu-west-1.amazonaws.com" in log
    assert PASSWORD not in result.stdout + result.stderr


def test_secret_login_reads_the_secret_and_never_puts_the_password_in_argv_or_output(tmp_path):
    result, log = run_login(tmp_path, {"REGISTRY_AUTH": "secret", "REGISTRY": "ghcr.io",
                                       "REGISTRY_REGION": "us-east-1", "REGISTRY_SECRET_ARN": SECRET})
    assert result.returncode == 0, result.stderr
    assert f"aws --region us-east-1 secretsmanager get-secret-value --secret-id {SECRET}" in log
    assert "docker login --username robot --password-stdin ghcr.io" in log
    assert f"stdin: {PASSWORD}" in log
    assert not any(PASSWORD in line for line in argv_lines(log))
    assert PASSWORD not in result.stdout + result.stderr


def test_login_gives_up_after_its_retries(tmp_path):
    result, log = run_login(tmp_path, {"REGISTRY_AUTH": "secret", "REGISTRY": "ghcr.io",
                                       "REGISTRY_REGION": "us-east-1", "REGISTRY_SECRET_ARN": SECRET}, fail_first=99)
    assert result.returncode != 0 and log.count("docker login") == 5
    assert "docker pull" not in log


def test_public_images_pull_without_login(tmp_path):
    result, log = run_login(tmp_path, {"REGISTRY_AUTH": "none", "REGISTRY": "ghcr.io", "REGISTRY_REGION": "",
                                       "REGISTRY_SECRET_ARN": ""})
    assert result.returncode == 0, result.stderr
    assert "login" not in log and "logout" not in log and "docker pull img:1" in log
