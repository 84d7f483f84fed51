"""The plan cache key (tests/unit/plans.py source_digest) carries the installed Pulumi packages'
versions: a cache directory kept across a provider upgrade must not serve the old provider's plans."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import pytest

from . import plans


def _tree(root: Path) -> Path:
    (root / "ladder").mkdir()
    (root / "ladder/cost.py").write_text("A = 1\n")
    return root


@pytest.mark.parametrize("package", ["pulumi", "pulumi-aws", "pulumi-kubernetes"])
def test_an_upgraded_pulumi_package_changes_the_digest(tmp_path, monkeypatch, package):
    root = _tree(tmp_path)
    before = plans.source_digest.__wrapped__(root)
    real = metadata.version
    monkeypatch.setattr(plans.metadata, "version",
                        lambda name: real(name) + ".post1" if name == package else real(name))
    assert plans.source_digest.__wrapped__(root) != before, f"{package} upgraded: the old plans must not be read"


def test_the_key_names_the_installed_versions():
    text = plans.installed_versions()
    for package in ("pulumi", "pulumi-aws", "pulumi-kubernetes"):
        assert f"{package}=={metadata.version(package)}" in text.splitlines()
