"""Every host's rendered user data, from the offline plans of the preset stacks, checked
by the real tools: `cloud-init schema`, `bash -n` for the scripts it installs, and
`nginx -t` for the nginx config it writes. Hosts get it gzip-compressed (16 KB limit): the
checks run on what cloud-init reads once it has uncompressed it."""

from __future__ import annotations

import base64
import gzip
import subprocess
import tempfile

import pytest
import yaml

from ladder.userdata import MAX_BYTES
from tests.integration.binaries import require
from tests.integration.nginx_harness import Nginx
from tests.unit.plans import plan, user_data_encoded, user_data_texts

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


@pytest.mark.parametrize("stack,overrides", VARIANTS, ids=[f"{s}{o}" if o else s for s, o in VARIANTS])
def test_user_data_reaches_ec2_as_gzip_under_16_kb(stack, overrides):
    """What the checks below read is the gunzipped form of what EC2 receives."""
    p = plan(stack, **overrides)
    texts = user_data_texts(p)
    for host, encoded in user_data_encoded(p).items():
        raw = base64.b64decode(encoded)
        assert raw[:2] == b"\x1f\x8b" and len(raw) <= MAX_BYTES, f"{host}: {len(raw)} bytes"
        assert gzip.decompress(raw).decode() == texts[host]


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
