"""Fixes of the cost-model review (/work/shared/reviews, review_cost_model findings 1, 5-10).

Worked examples by hand from the cited figures, never from the code under test.
"""

from __future__ import annotations

import copy

import pytest

from ladder.cost import HOURS, delta_markdown, equal_load_delta, price_plan

from .plans import plan_json

LB = "aws:lb/loadBalancer:LoadBalancer"


def _items(report, sku_prefix: str, name: str | None = None):
    return [i for i in report.items if i.sku.startswith(sku_prefix) and (name is None or i.name == name)]


@pytest.fixture(scope="module")
def diff56() -> dict:
    return equal_load_delta("phase5", "phase6")


def test_diff_5_to_6_names_the_lower_presets_tiers_over_capacity_at_peak(diff56):
    # By hand (finding 1): phase 6's target 250,000 users x 3 req/min / 60 = 12,500 req/s at peak;
    # phase 5's app tier at its maximum, 30 c6i.large at the 40 % target, one Node process per host:
    # min(2 x 0.40, 1) core x 500 req/s = 400 each, x 30 = 12,000 req/s. Jobs: 25M/day / 86,400 / 0.4
    # (average share) = 723.4 jobs/s at peak; 10 workers x 50 jobs/s = 500.
    over = {e["tier"]: e for e in diff56["a"]["capacity_exceeded"]}
    assert set(over) == {"app", "workers"}, over
    assert over["app"]["need"] == pytest.approx(12_500) and over["app"]["max"] == pytest.approx(12_000)
    assert over["workers"]["need"] == pytest.approx(723.4, abs=0.1) and over["workers"]["max"] == pytest.approx(500)
    assert diff56["b"]["capacity_exceeded"] == []  # phase 6 is sized for its own target
    text = delta_markdown(diff56)
    assert "OVER CAPACITY" in text and "app needs 12,500 req/s, maximum 12,000" in text


def _second_internal_nlb(p: dict, first: bool) -> dict:
    """phase 5 with another internal NLB (say an admin API's), placed before or after PgBouncer's."""
    nlb = next(r for r in p["resources"] if r["type"] == LB and r["name"] == "pgbouncer-nlb")
    other = copy.deepcopy(nlb)
    other.update(name="admin-nlb", urn=nlb["urn"].replace("pgbouncer-nlb", "admin-nlb"), id="admin0000")
    p["resources"].insert(0 if first else len(p["resources"]), other)
    return p


@pytest.mark.parametrize("first", [True, False])
def test_a_second_internal_nlb_carries_no_db_traffic(first):
    # By hand (finding 5): phase 5 at its target, 100,000 peak users x 0.4 average share x 730 h x 60 min
    # x 3 requests x 4 KB (kb_db_per_request) / 1e6 = 21,024 GB app <-> DB a month through the PgBouncer
    # NLB: 1 NLCU per GB/h, so 21,024 NLCU-hours there; the admin NLB gets its hours and 0 units.
    base = plan_json("phase5")
    report = price_plan(_second_internal_nlb(copy.deepcopy(base), first), with_band=False)
    (pgb,) = _items(report, "nlb_nlcu_hour", "pgbouncer-nlb")
    (admin,) = _items(report, "nlb_nlcu_hour", "admin-nlb")
    assert pgb.quantity == pytest.approx(21_024, rel=1e-3)
    assert admin.quantity == 0 and "internal_lb_gb" in admin.note
    (hours,) = _items(report, "nlb_hour", "admin-nlb")
    assert hours.quantity == HOURS
    # inter-AZ for app <-> PgBouncer stays on PgBouncer's NLB, once
    hops = [i for i in report.items if i.sku == "inter_az_gb" and "PgBouncer" in i.note and "app <->" in i.note]
    assert [i.name for i in hops] == ["pgbouncer-nlb"]
    plain = price_plan(copy.deepcopy(base), with_band=False)
    assert sum(i.monthly_usd for i in report.items if i.sku == "inter_az_gb") == pytest.approx(
        sum(i.monthly_usd for i in plain.items if i.sku == "inter_az_gb"))
