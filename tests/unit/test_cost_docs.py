"""docs/cost.md (ladder/cost_docs.py) is generated: fresh, and its per-rule and per-climb rows add up."""

from __future__ import annotations

import re

import pytest

from ladder import cost_docs, engine
from ladder.phases import PHASES
from tests.unit.plans import plan


def _plans() -> dict[int, dict]:
    out = []
    for n in PHASES:
        try:
            out.append((n, plan(f"phase{n}")))
        except Exception as err:  # a phase under construction is left out of the page, as `ladder docs` does
            out.append((n, err))
    return cost_docs.plans_json(out)


@pytest.fixture(scope="module")
def fresh() -> str:
    return cost_docs.render(_plans())


def _rows(text: str, heading: str) -> list[list[str]]:
    section = text.split(heading, 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    return [[c.strip() for c in ln.strip("|").split("|")] for ln in section.splitlines()
            if ln.startswith("| ") and not ln.startswith("|---")]


def _usd(cell: str) -> float:
    return 0.0 if cell in ("0", "-") else float(re.sub(r"[^\d.+-]", "", cell))


def test_checked_in_cost_doc_is_up_to_date(fresh):
    assert cost_docs.COST_DOC_PATH.read_text() == fresh, "run `python -m ladder docs` and commit docs/cost.md"


def test_baseline_is_the_commit_before_the_rule_changes():
    base = cost_docs.baseline()
    assert base["commit"] == "15c9ef4" and set(base["presets"]) == {f"phase{n}" for n in PHASES}
    for p in base["presets"].values():  # the recorded tables add up to the recorded total
        assert sum(p["tables"].values()) == pytest.approx(p["total_monthly_usd"], abs=0.05)


def test_per_rule_rows_add_up_to_each_presets_delta(fresh):
    """A table dropped from the rows (one priced only before, or only now) would break the sum."""
    heading = "## Per-rule deltas against the baseline"
    totals = {r[0]: _usd(r[3]) for r in _rows(fresh, heading)[1:] if r[0].isdigit()}
    rows = [r for r in _rows(fresh, heading) if r[0].startswith("`")]
    assert rows and totals
    header = next(r for r in _rows(fresh, heading) if r[0] == "price table")
    for col, name in enumerate(header[2:], start=2):
        phase = name.removeprefix("phase ")
        assert sum(_usd(r[col]) for r in rows) == pytest.approx(totals[phase], abs=0.05 * len(rows)), name


def test_climb_rows_add_up_to_the_climb_delta(fresh):
    climbs = {r[0]: _usd(r[4]) for r in _rows(fresh, "## Climbing at equal load")[1:]}
    table = _rows(fresh, "### Where each climb's delta comes from")
    header, body = table[0], table[1:]
    total = next(r for r in body if r[0] == "**total**")
    for col, name in enumerate(header[1:], start=1):
        assert _usd(total[col]) == pytest.approx(climbs[name], abs=0.02), name
        assert sum(_usd(r[col]) for r in body if r[0].startswith("`")) == pytest.approx(climbs[name], abs=0.05 * len(body))


def test_the_doc_is_written_by_ladder_docs():
    from ladder import docs

    assert "cost_docs.render" in open(docs.__file__).read() and cost_docs.COST_DOC_PATH == engine.REPO / "docs" / "cost.md"


def test_climbs_are_priced_at_the_higher_phases_target(fresh):
    """Both sides at phase N+1's users and messages/day (not each at its own target)."""
    from ladder.cost import price_plan

    data = _plans()
    rows = _rows(fresh, "## Climbing at equal load")[1:]
    assert rows
    for r in rows:
        low, high = (int(x) for x in r[0].split(" -> "))
        spec = PHASES[high]
        assert _usd(r[1]) == spec.concurrent_users
        before = price_plan(data[low], users=spec.concurrent_users, messages_per_day=spec.messages_per_day,
                            with_band=False)
        assert _usd(r[2]) == pytest.approx(before.total, abs=0.01), r[0]
