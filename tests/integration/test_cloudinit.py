"""Every host's rendered user data, from the offline plans of the preset stacks, checked
by the real tools: `cloud-init schema`, `bash -n` for the scripts it installs, and
`nginx -t` for the nginx config it writes."""

from __future__ import annotations

import subprocess
import tempfile

import pytest
import yaml

from tests.integration.binaries import require
from tests.integration.nginx_harness import Nginx
from tests.unit.plans import plan, user_data_texts

pytestmark = pytest.mark.integration

VARIANTS = [("phase1", {}), ("phase2", {}), ("phase2", {"loadBalancer": "nginx"}), ("phase3", {}), ("phase4", {}),
            ("phase5", {})]


def all_user_data() -> list[tuple[str, str]]:
    out = []
    for stack, overrides in VARIANTS:
        for host, text in user_data_texts(plan(stack, **overrides)).items():
            out.append((f"{stack}{'-' + '-'.join(map(str, overrides.values())) if overrides else ''}:{host}", text))
    return out


USER_DATA = all_user_data()


def schema_check(text: str) -> subprocess.CompletedProcess:
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        f.write(text)
        f.flush()
        return subprocess.run([require("cloud-init"), "schema", "--config-file", f.name], capture_output=True,
                              text=True, timeout=60)


def test_schema_check_rejects_a_broken_config():
    result = schema_check("#cloud-config\npackages: 5\nwrite_files:\n  - path: 3\n")
    assert result.returncode != 0 and "packages" in result.stdout + result.stderr


@pytest.mark.parametrize("name,text", USER_DATA, ids=[n for n, _ in USER_DATA])
def test_user_data_is_valid_cloud_config(name, text):
    assert text.startswith("#cloud-config\n")
    result = schema_check(text)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name,text", USER_DATA, ids=[n for n, _ in USER_DATA])
def test_installed_scripts_parse_and_nginx_config_passes_nginx_t(name, text):
    files = {f["path"]: f["content"] for f in yaml.safe_load(text)["write_files"]}
    scripts = {p: c for p, c in files.items() if c.startswith("#!/bin/bash")}
    assert scripts or name.endswith("nginx-lb"), "every app/PgBouncer host installs its boot script"
    for path, content in scripts.items():
        result = subprocess.run(["bash", "-n"], input=content, capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, f"{path}: {result.stderr}"
    conf = files.get("/etc/nginx/conf.d/scaleladder.conf")
    if conf is not None:
        with Nginx(conf) as nginx:
            result = nginx.test()
        assert result.returncode == 0, result.stderr
