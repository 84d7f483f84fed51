"""`ladder recommend`: capacity picks the rung, a fired trigger moves it one up."""

from __future__ import annotations

import json

import pytest

from ladder import cli
from ladder.phases import PHASES, TRIGGERS
from ladder.recommend import TOP, fitting_phase, flag, recommend

NONE = {t.key: None for t in TRIGGERS}


def test_capacity_picks_the_lowest_phase_that_covers_the_load():
    assert recommend(500, 10_000, NONE).phase == 1
    assert recommend(8_000, 300_000, NONE).phase == 3
    for n, spec in PHASES.items():
        assert fitting_phase(spec.concurrent_users, spec.messages_per_day) == n


def test_messages_per_day_can_decide():
    assert fitting_phase(500, PHASES[3].messages_per_day + 1) == 4


def test_a_fired_trigger_moves_one_rung_up():
    rec = recommend(8_000, 300_000, {**NONE, "p95LatencyMs": 1500, "queueDepth": 500})
    assert rec.fits == 3 and rec.phase == 4 and {f["key"] for f in rec.fired} == {"p95LatencyMs", "queueDepth"}


def test_a_value_at_the_threshold_does_not_fire():
    metrics = {t.key: t.threshold for t in TRIGGERS}
    assert recommend(500, 0, metrics).fired == []


def test_the_top_rung_stays_the_top():
    rec = recommend(10_000_000, 0, {**NONE, "cpuPercent": 95})
    assert rec.phase == TOP and "raise its limits" in rec.reason


def test_every_trigger_has_a_flag_and_the_short_aliases_work(capsys):
    assert len({flag(t) for t in TRIGGERS}) == len(TRIGGERS)
    assert cli.main(["recommend", "--concurrent-users", "500", "--p95-ms", "2000", "--error-rate", "0.5",
                     "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["fits"] == 1 and out["phase"] == 2 and [f["key"] for f in out["fired"]] == ["p95LatencyMs"]


def test_recommendation_carries_the_cost_of_its_preset(capsys):
    assert cli.main(["recommend", "--concurrent-users", "500", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    if out["cost_error"]:
        pytest.skip(out["cost_error"])
    assert out["monthly_usd"] > 0
    # priced at the given load (500 users), not at the phase's target
    assert out["per_1000_users_usd"] == pytest.approx(out["monthly_usd"] / 500 * 1000, abs=0.01)


def test_a_preset_that_cannot_carry_the_peak_is_skipped(monkeypatch):
    """The capacity model decides too: a rung whose preset tops out below the load's peak does not fit."""
    from ladder import capacity
    from ladder import recommend as rec_module

    spec = PHASES[3]
    assert fitting_phase(spec.concurrent_users, spec.messages_per_day) == 3
    real = rec_module.preset_capacity
    monkeypatch.setattr(rec_module, "preset_capacity",
                        lambda n: capacity.Capacity(1.0, 1.0, "app", {"app": 1.0}) if n == 3 else real(n))
    assert fitting_phase(spec.concurrent_users, spec.messages_per_day) == 4
    assert "carries the peak" in recommend(spec.concurrent_users, spec.messages_per_day, NONE).reason
