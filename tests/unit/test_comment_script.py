"""The PR comment script (`.github/scripts/review-comments.js`) under `node --test` against
an in-memory GitHub API (tests/js/): run from pytest so `make test`, and so CI, runs it."""

from __future__ import annotations

import shutil
import subprocess

from ladder import engine

JS_TESTS = engine.REPO / "tests" / "js"


def test_comment_script_passes_its_node_tests():
    node = shutil.which("node")
    assert node, "node is missing: scripts/setup installs it (the PR comment script is JavaScript)"
    tests = sorted(str(p) for p in JS_TESTS.glob("*.test.js"))
    assert tests, f"no node tests under {JS_TESTS}"
    proc = subprocess.run([node, "--test", *tests], cwd=engine.REPO, capture_output=True, text=True, timeout=120)
    failed = [line for line in proc.stdout.splitlines() if line.startswith("not ok")]
    assert proc.returncode == 0, "\n".join(failed) + "\n" + proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "# fail 0" in proc.stdout and "# pass 0" not in proc.stdout
