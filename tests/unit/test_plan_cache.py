"""The plan cache the xdist workers share (tests/unit/plans.py): never stale, never a refusal."""

from __future__ import annotations

from pathlib import Path

import pytest

from . import plans


def tree(root: Path) -> Path:
    for path, text in {"ladder/cost.py": "A = 1\n", "stacks/Pulumi.phase1.yaml": "config: {}\n",
                       "__main__.py": "", "tests/unit/test_x.py": "", "docs/config.md": ""}.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    return root


def digest(root: Path) -> str:
    return plans.source_digest.__wrapped__(root)


def test_any_program_file_changes_the_digest_tests_and_docs_do_not(tmp_path):
    root = tree(tmp_path)
    before = digest(root)
    (root / "tests/unit/test_x.py").write_text("x = 2\n")
    (root / "docs/config.md").write_text("regenerated\n")
    assert digest(root) == before
    for path in ("ladder/cost.py", "stacks/Pulumi.phase1.yaml", "__main__.py"):
        (root / path).write_text((root / path).read_text() + "# changed\n")
        assert digest(root) != before, f"{path} is part of the program: a change must not reuse old plans"
        before = digest(root)
    (root / "cloudinit").mkdir()
    (root / "cloudinit/app.yaml.j2").write_text("#cloud-config\n")  # a new folder counts without a list
    assert digest(root) != before


@pytest.fixture
def shared(tmp_path, monkeypatch):
    """_shared over a fake engine: returns the list of plans it computed."""
    monkeypatch.setenv(plans.PLAN_CACHE_ENV, str(tmp_path))
    monkeypatch.setattr(plans, "stack_values", lambda stack, **o: o)
    computed: list[tuple[str, dict]] = []

    def run(stack, values):
        if values.get("bad"):
            raise ValueError("refused")
        computed.append((stack, values))
        return {"stack": stack, **values}

    monkeypatch.setattr(plans, "_run", run)
    return computed


def test_a_plan_is_computed_once_then_read_and_each_variation_is_its_own(shared):
    assert plans._shared("phase1", '{"x": 1}') == {"stack": "phase1", "x": 1}
    assert plans._shared("phase1", '{"x": 1}') == {"stack": "phase1", "x": 1}  # another worker: read, not run
    assert plans._shared("phase1", '{"x": 2}') == {"stack": "phase1", "x": 2}
    assert plans._shared("phase2", '{"x": 1}') == {"stack": "phase2", "x": 1}
    assert shared == [("phase1", {"x": 1}), ("phase1", {"x": 2}), ("phase2", {"x": 1})]


def test_a_refused_plan_is_not_stored(shared, tmp_path):
    for _ in range(2):
        with pytest.raises(ValueError, match="refused"):
            plans._shared("phase1", '{"bad": true}')
    assert not list(tmp_path.glob("*.pickle"))


def test_a_changed_program_does_not_read_the_old_plan(shared, monkeypatch):
    plans._shared("phase1", "{}")
    monkeypatch.setattr(plans, "source_digest", lambda: "another-tree")
    plans._shared("phase1", "{}")
    assert len(shared) == 2
