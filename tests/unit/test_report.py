"""The Mermaid diagrams of `ladder/report.py`: every phase's diagram goes through mermaid's own
parser, and each phase's diagram differs from the previous one where its topology does.

Parser choice: `@mermaid-js/mermaid-cli` renders through a headless Chromium (puppeteer).
Debian 12's `chromium` is not on the CI image and would add 290 MB installed plus 25
packages to every fresh CI machine (`apt-get install -s --no-install-recommends chromium`),
and a browser start per diagram, while rendering adds nothing checked here beyond the
grammar; it was not installed. So the test runs the official `mermaid`
package's `mermaid.parse` in node (tests/js/mermaid-parse.mjs, jsdom for the DOM mermaid's
sanitizer expects; versions in package.json): the same parser GitHub's renderer runs first,
in one node process for all six diagrams (seconds, not a browser start per diagram).
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from ladder import engine
from ladder.report import mermaid

from .plans import plan

PARSER = engine.REPO / "tests" / "js" / "mermaid-parse.mjs"


@pytest.fixture(scope="module")
def diagrams() -> dict[str, str]:
    return {stack: mermaid(plan(stack)) for stack in engine.stack_names()}


def parse(tmp_path, texts: dict[str, str]) -> tuple[int, dict[str, str]]:
    node = shutil.which("node")
    assert node, "scripts/setup installs node"
    assert (engine.REPO / "node_modules" / "mermaid").is_dir(), "scripts/setup runs npm ci (package.json)"
    files = []
    for name, text in texts.items():
        (tmp_path / f"{name}.mmd").write_text(text)
        files.append(str(tmp_path / f"{name}.mmd"))
    proc = subprocess.run([node, str(PARSER), *files], cwd=engine.REPO, capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip(), proc.stderr
    return proc.returncode, {k.rsplit("/", 1)[-1].removesuffix(".mmd"): v for k, v in json.loads(proc.stdout).items()}


def test_every_phase_diagram_parses_with_mermaid(tmp_path, diagrams):
    broken = {"broken": diagrams["phase4"].replace('  nat["', '  nat[("', 1)}  # an unclosed shape
    code, results = parse(tmp_path, {**diagrams, **broken})
    assert code == 1 and results.pop("broken") != "ok", "the parser rejects a broken diagram"
    assert results == {stack: "ok" for stack in diagrams}


def test_phase_4_differs_from_3_by_cluster_mode_and_nat_per_az(diagrams):
    p3, p4 = diagrams["phase3"], diagrams["phase4"]
    assert p3 != p4
    cache = plan("phase4").config.redis
    assert f"cluster mode: {cache.shards} shards x (1 primary + {cache.replicas_per_shard} replica(s))" in p4
    assert p4.count("shard ") == cache.shards and "cluster mode" not in p3
    assert "primary + 1 replica(s)" in p3 and "automatic failover" in p3
    assert '"2 NAT gateways, one per AZ"' in p4 and '"NAT gateway: one, shared by every AZ"' in p3
    assert "NAT" not in diagrams["phase1"], "phase 1 has no NAT gateway"


def test_read_replicas_are_replicas_of_the_primary_not_a_loop(diagrams):
    for stack in ("phase3", "phase4", "phase6"):
        d = diagrams[stack]
        replicas = plan(stack).config.database.replicas
        assert f'dbr[("{replicas} read replica(s)' in d
        assert 'db -. "asynchronous replication" .-> dbr' in d
        assert ".-> db\n" not in d, f"{stack}: a replication edge back into the primary"
    assert "dbr" not in diagrams["phase2"] and "Multi-AZ: synchronous standby" in diagrams["phase2"]
