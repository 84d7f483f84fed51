"""docs/phases.md is generated: the checked-in file must equal a fresh render."""

from __future__ import annotations

from ladder import docs
from ladder.phases import PHASES


def test_checked_in_phases_doc_is_up_to_date():
    fresh = docs.render()
    assert docs.DOC_PATH.read_text() == fresh, "run `python -m ladder docs` and commit docs/phases.md"


def test_every_phase_has_a_section_with_cost_and_diagram():
    text = docs.DOC_PATH.read_text()
    for n, spec in PHASES.items():
        section = text.split(f"## Phase {n}: {spec.name}", 1)[1].split("\n## ", 1)[0]
        assert f"~{spec.concurrent_users:,} concurrent users" in section
        if "does not plan yet" not in section:
            assert "**Monthly cost:**" in section and "```mermaid" in section
        if n > 1 and "does not plan yet" not in section:
            assert "**Climbing from phase" in section


def test_readme_phase_table_is_generated_from_the_catalog():
    from ladder.docs import README_PATH, readme_with_phase_table
    from ladder.phases import PHASES

    readme = README_PATH.read_text()
    assert readme_with_phase_table(readme) == readme, "README phase table is stale: run `python -m ladder docs`"
    assert all(p.adds in readme for p in PHASES.values())
