"""`ladder recommend` prices the load `cost --users` prices (review-cost-model finding 2), and its
savings search catches refusals only and keeps looking for a candidate that saves (finding 3)."""

from __future__ import annotations

import json

import pytest

from ladder import recommend as rec
from ladder.cli import main
from ladder.config import ConfigError

USERS = 50_000  # phase 4's target: 50,000 users, 5,000,000 messages/day (ladder/phases.py), 100 per user


def _json(capsys, argv: list[str]) -> dict:
    capsys.readouterr()
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_recommend_prices_the_load_cost_users_prices(capsys):
    """Without --messages-per-day, recommend's total is the figure of the command it points to."""
    r = _json(capsys, ["recommend", "--concurrent-users", str(USERS), "--no-savings", "--json"])
    assert r["phase"] == 4 and r["messages_assumed"] is True
    assert r["messages_per_day"] == 5_000_000  # 50,000 users x phase 4's 100 messages per user
    c = _json(capsys, ["cost", "phase4", "--users", str(USERS), "--json"])
    assert r["monthly_usd"] == pytest.approx(c["total_monthly_usd"], abs=0.005)


def test_given_messages_are_priced_as_given():
    r = rec.recommend(USERS, 0, {})
    assert r.messages_per_day == 0 and r.messages_assumed is False


# --- the savings search, on phase 4's candidates with the pricing replaced (no plans) ---------------


def _fake_priced(variant_total):
    def priced(stack: str, overrides: str, users: int, messages_per_day: float) -> float:
        if overrides == "[]":
            return 1000.0
        return variant_total(dict(json.loads(overrides)))
    return priced


def _app_candidates() -> list[str]:
    cfg = rec.engine.validate_stack(rec.engine.read_stack("phase4"), stack="phase4")
    options = dict((k, o) for k, _, o in rec._variants(cfg))["appTier.instanceType"]
    assert len(options) >= 2, "phase 4's app tier needs two cheaper candidates for these tests"
    return [c for c, _ in options]


def test_a_bug_in_a_cost_rule_is_not_taken_for_a_refusal(monkeypatch):
    """A KeyError in the cost code (a type missing from a fact table) must reach savings_error,
    not silently drop the line or move to the next candidate."""
    def broken(o: dict) -> float:
        raise KeyError("t9.nano: no BURSTABLE_BASELINE")
    monkeypatch.setattr(rec, "_priced", _fake_priced(broken))
    with pytest.raises(KeyError):
        rec.switch_savings("phase4", USERS, None)
    r = rec.with_savings(rec.recommend(USERS, None, {}), "phase4")
    assert r.savings_error is not None and "KeyError" in r.savings_error and r.savings == []


def test_a_refused_candidate_is_reported_and_the_next_tried(monkeypatch):
    first, second = _app_candidates()[:2]

    def total(o: dict) -> float:
        if o.get("appTier.instanceType") == first:
            raise ConfigError([f"scaleladder:appTier.instanceType: {first} refused (test)"])
        return 900.0
    monkeypatch.setattr(rec, "_priced", _fake_priced(total))
    refused: list[dict] = []
    app = {s["key"]: s for s in rec.switch_savings("phase4", USERS, None, refused=refused)}["appTier.instanceType"]
    assert app["to"] == second and app["monthly_usd_saved"] == 100.0
    assert [r["to"] for r in refused if r["key"] == "appTier.instanceType"] == [first]


def test_a_cheaper_hour_that_does_not_save_in_total_does_not_end_the_search(monkeypatch):
    """The cheapest-per-hour candidate can cost more in total (more hosts, credits): the next is tried."""
    first, second = _app_candidates()[:2]
    monkeypatch.setattr(rec, "_priced", _fake_priced(
        lambda o: 1010.0 if o.get("appTier.instanceType") == first else 950.0))
    app = {s["key"]: s for s in rec.switch_savings("phase4", USERS, None)}["appTier.instanceType"]
    assert app["to"] == second and app["monthly_usd_saved"] == 50.0
