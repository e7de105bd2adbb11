"""Abort rules with Prometheus `for:` semantics, at exact boundaries; validation gates."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import time_machine

from governance.models import Release
from rollouts import engine, lifecycle
from rollouts.analysis.judge import analyse
from rollouts.analysis.rules import next_state
from rollouts.metrics.base import WindowStats
from rollouts.models import AbortRule, Plan, Rollout
from tests.rollouts.conftest import T0, at, feed

pytestmark = pytest.mark.django_db

SLOW = {"le": [100, 300, 500, "+Inf"], "counts": [10, 40, 950, 0]}
BAD = {
    "error_rate": {"errors": 100, "status_5xx": 0},
    "p95_latency": {"latency": SLOW},
    "conversion_drop": {"conversions": {"/checkout": {"attempts": 100, "successes": 70}}},
    "status_5xx": {"status_5xx": 50},
    "db_connections": {"system": {"db_connections_pct": 96}},
    "memory": {"system": {"memory_pct": 92}},
    "payment_failures": {"business": {"payments_attempted": 100, "payments_failed": 5}},
    "complaints": {"complaints": 11},
}


@pytest.fixture
def running(
    approved: Callable[..., Release], team: dict[str, Any]
) -> Iterator[tuple[Rollout, Any]]:
    with time_machine.travel(T0, tick=False) as clock:
        yield lifecycle.rollout_start(release=approved(), actor=team["erin"]), clock


def rule_state(rollout: Rollout, name: str) -> str:
    rollout.refresh_from_db()
    return {r["name"]: r["state"] for r in rollout.last_analysis["rules"]}[name]


@pytest.mark.parametrize("name", list(BAD))
def test_each_seeded_rule_fires_exactly_at_its_duration(
    running: tuple[Rollout, Any], name: str
) -> None:
    rollout, clock = running
    # The phase's own deadline out of the way: this is about the rules alone.
    Rollout.objects.filter(pk=rollout.pk).update(phase_ends_at=at(86_400))
    rule = AbortRule.objects.get(name=name)
    feed("backend", "v2.1.0", "canary", at(0), 7200, **BAD[name])
    clock.move_to(at(60))
    engine.tick()
    if rule.duration_s:
        assert rule_state(rollout, name) == "pending"
        clock.move_to(at(60 + rule.duration_s - 1))
        engine.tick()
        assert rule_state(rollout, name) == "pending"
        assert rollout.state == "running"
        clock.move_to(at(60 + rule.duration_s))
        engine.tick()
    rollout.refresh_from_db()
    if rule.action == "rollback":
        assert rollout.state in ("rolling_back", "rolled_back")
        assert rollout.rollback.trigger == f"rule {name}"
        assert f"Rule {name}" in rollout.rollback.reason
    else:
        assert (rollout.state, rollout.pause_kind) == ("paused", "rule")
        assert f"Rule {name}" in rollout.pause_detail
        assert "@council-stewards" in rollout.pause_detail
        assert not hasattr(rollout, "rollback") or rollout.rollback is None


def test_a_dip_below_the_threshold_restarts_the_timer(running: tuple[Rollout, Any]) -> None:
    rollout, clock = running
    feed("backend", "v2.1.0", "canary", at(0), 180, errors=100)
    feed("backend", "v2.1.0", "canary", at(180), 60, errors=0)
    feed("backend", "v2.1.0", "canary", at(240), 3600, errors=100)
    for moment, expected in [
        (60, "pending"),
        (180, "pending"),
        (240, "ok"),
        (300, "pending"),
        (360, "pending"),
        (599, "pending"),
    ]:
        clock.move_to(at(moment))
        engine.tick()
        assert rule_state(rollout, "error_rate") == expected, moment
    clock.move_to(at(600))
    engine.tick()
    rollout.refresh_from_db()
    assert rollout.state in ("rolling_back", "rolled_back")


def test_no_data_keeps_the_timer_but_never_fires_or_passes(running: tuple[Rollout, Any]) -> None:
    rollout, clock = running
    feed("backend", "v2.1.0", "canary", at(0), 120, errors=100)
    feed("backend", "v2.1.0", "canary", at(400), 3600, errors=100)
    clock.move_to(at(60))
    engine.tick()
    clock.move_to(at(360))  # the window (300, 360] is empty
    engine.tick()
    assert rule_state(rollout, "error_rate") == "no_data"
    assert rollout.state == "running"
    assert rollout.last_analysis["verdict"] != "healthy"
    clock.move_to(at(410))  # data again, condition true, held since 60
    engine.tick()
    rollout.refresh_from_db()
    assert rollout.state in ("rolling_back", "rolled_back")


def test_next_state_table() -> None:
    t = at(0)
    five = at(300) - t
    assert next_state("ok", None, True, t, five) == ("pending", t)
    assert next_state("pending", t, True, at(299), five) == ("pending", t)
    assert next_state("pending", t, True, at(300), five) == ("firing", t)
    assert next_state("pending", t, None, at(400), five) == ("no_data", t)
    assert next_state("no_data", t, False, at(400), five) == ("ok", None)
    assert next_state("ok", None, True, t, at(0) - t) == ("firing", t)


def test_a_resumed_rollout_is_not_paused_again_by_the_same_firing_rule(
    running: tuple[Rollout, Any], team: dict[str, Any]
) -> None:
    rollout, clock = running
    feed("backend", "v2.1.0", "canary", at(0), 7200, complaints=11)
    clock.move_to(at(60))
    engine.tick()
    rollout.refresh_from_db()
    assert rollout.state == "paused"
    lifecycle.rollout_resume(rollout=rollout, actor=team["sam"])
    clock.move_to(at(90))
    engine.tick()
    assert rule_state(rollout, "complaints") == "firing"
    assert rollout.state == "running"


def test_complaints_entered_by_people_count_too(running: tuple[Rollout, Any]) -> None:
    from rollouts.models import ComplaintReport

    rollout, clock = running
    ComplaintReport.objects.create(
        service="backend", version="v2.1.0", count=11, reported_by="support", at=at(30)
    )
    clock.move_to(at(60))
    engine.tick()
    rollout.refresh_from_db()
    assert rollout.state == "paused"


def test_the_p95_degradation_budget_is_ten_percent_of_stable(running: tuple[Rollout, Any]) -> None:
    rollout, clock = running
    feed(
        "backend",
        "v2.0.3",
        "stable",
        at(0),
        600,
        requests=99_000,
        latency={"le": [100, 200, "+Inf"], "counts": [0, 100, 0]},
    )  # p95 195
    feed(
        "backend",
        "v2.1.0",
        "canary",
        at(0),
        600,
        requests=1000,
        latency={"le": [100, 220, "+Inf"], "counts": [0, 100, 0]},
    )  # p95 214 ≤ 214.5
    clock.move_to(at(600))
    result = analyse(rollout, at(600))
    assert result.inputs["gates"]["p95_ms"]["max"] == 214.5
    assert result.inputs["gates"]["p95_ms"]["ok"]
    # Inside the budget, but 9.7% is over the statistical judge's 5% floor (plan data).
    assert not result.inputs["gates"]["judge"]["ok"]
    Plan.objects.filter(name=rollout.plan).update(judge_p95_floor_pct=10)
    assert analyse(rollout, at(600)).validation_passed
    feed(
        "backend",
        "v2.1.0",
        "canary",
        at(0),
        600,
        requests=1000,
        latency={"le": [100, 2000, "+Inf"], "counts": [0, 1, 0]},
    )
    assert not analyse(rollout, at(600)).validation_passed


def test_throughput_below_the_weight_fails_validation(running: tuple[Rollout, Any]) -> None:
    rollout, _ = running
    feed("backend", "v2.0.3", "stable", at(0), 600, requests=9900)
    feed("backend", "v2.1.0", "canary", at(0), 600, requests=95)  # expects 100 per 10 s
    result = analyse(rollout, at(600))
    assert result.inputs["gates"]["throughput_rps"]["ok"] is True
    feed("backend", "v2.0.3", "stable", at(0), 600, requests=1000)
    assert analyse(rollout, at(600)).inputs["gates"]["throughput_rps"]["ok"] is False


def test_without_data_a_phase_is_extended_once_then_paused(running: tuple[Rollout, Any]) -> None:
    rollout, clock = running
    clock.move_to(at(600))
    engine.tick()
    rollout.refresh_from_db()
    assert rollout.state == "running"
    assert rollout.phases.get(index=0).extended
    clock.move_to(at(1199))
    engine.tick()
    rollout.refresh_from_db()
    assert rollout.state == "running"
    clock.move_to(at(1200))
    engine.tick()
    rollout.refresh_from_db()
    assert (rollout.state, rollout.pause_kind) == ("paused", "inconclusive")
    assert rollout.pause_detail == ("0 canary requests this phase, 100 needed, after one extension")


def test_a_paused_canary_is_still_rolled_back_by_its_rules(running: tuple[Rollout, Any]) -> None:
    """Paused at its weight, the canary still serves users: rollback rules keep watching."""
    rollout, clock = running
    feed("backend", "v2.1.0", "canary", at(0), 7200, latency=SLOW)  # p95 490 ms
    clock.move_to(at(60))
    engine.tick()  # p95_latency pending from 60
    clock.move_to(at(600))
    engine.tick()
    rollout.refresh_from_db()
    assert (rollout.state, rollout.pause_kind) == ("paused", "validation_failed")
    assert rollout.pause_detail == "p95 490 ms is over the 300 ms limit (no stable baseline)"
    clock.move_to(at(659))
    engine.tick()
    assert rule_state(rollout, "p95_latency") == "pending"
    assert rollout.state == "paused"
    clock.move_to(at(660))
    engine.tick()
    rollout.refresh_from_db()
    assert rollout.state in ("rolling_back", "rolled_back")
    assert rollout.rollback.trigger == "rule p95_latency"


def test_window_stats_rates() -> None:
    stats = WindowStats(at(0), at(60), requests=200, errors=3)
    assert stats.error_rate == 0.015 and stats.rps == pytest.approx(200 / 60)
