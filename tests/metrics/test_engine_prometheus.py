"""The engine on a service whose metrics come from a real Prometheus, time compressed
(CANARY_TIME_SCALE 1800: a 10-minute phase lasts a second, the 2-hour monitoring four):
a healthy canary is promoted through 1/5/20/100, a canary answering 10% 500s is rolled
back by the error-rate rule. Prometheus scrapes in real time, so ticks run in a loop
until the outcome, within a deadline."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core.management import call_command

from governance.models import Release
from rollouts import engine, lifecycle
from rollouts.choices import PhaseVerdict, RolloutState
from rollouts.models import Plan, Rollout
from tests.metrics.conftest import CANARY, FAILING, STABLE, Stack
from tests.metrics_process import wait_until
from tests.rollouts.conftest import approved

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("prometheus_settings")]
__all__ = ["approved"]  # the fixture


@pytest.fixture
def compressed(settings: Any, stack: Stack) -> None:
    settings.CANARY_TIME_SCALE = 1800
    call_command(
        "service_set",
        "backend",
        "--metrics=prometheus",
        f"--prometheus-url={stack.prometheus.url}",
    )


def ticking_until(
    rollout: Rollout, done: Callable[[Rollout], bool], timeout: float
) -> tuple[list[int], list[dict[str, Any]]]:
    """Engine ticks until `done(rollout)`: the weights the rollout went through, and the
    analyses of the phases' ends (with the gates' inputs)."""
    weights: list[int] = []
    gates: list[dict[str, Any]] = []

    def tick() -> bool:
        engine.tick()
        rollout.refresh_from_db()
        if not weights or weights[-1] != rollout.weight:
            weights.append(rollout.weight)
        if (rollout.last_analysis or {}).get("inputs"):
            gates.append(rollout.last_analysis)
        return done(rollout)

    try:
        wait_until(tick, timeout, f"rollout {rollout.pk}", every=0.1)
    except TimeoutError as exc:
        last = rollout.last_analysis or {}
        state = (
            f"{rollout.state} at {rollout.weight}%: {rollout.pause_detail or last.get('reason')}"
        )
        raise TimeoutError(f"{exc}; {state}") from exc
    return weights, gates


@pytest.mark.usefixtures("compressed")
def test_a_healthy_canary_is_promoted_through_every_phase(
    approved: Callable[..., Release], team: dict[str, Any]
) -> None:
    # A few requests a second are too few for the judge's default floors (0.2 points of
    # errors, 5% of p95): this canary is judged on coarser ones, as a quiet service's plan is.
    Plan.objects.filter(name="standard").update(
        judge_error_floor_pts=25, judge_p95_floor_pct=100, judge_conversion_floor_pct=50
    )
    rollout = lifecycle.rollout_start(
        release=approved(version=CANARY), actor=team["erin"], stable_version=STABLE
    )
    weights, analyses = ticking_until(rollout, lambda r: r.state == RolloutState.PROMOTED, 40)
    assert weights == [1, 5, 20, 100]
    verdicts = list(rollout.phases.order_by("index").values_list("weight", "verdict"))
    assert verdicts[:3] == [(w, PhaseVerdict.PASSED) for w in (1, 5, 20)]
    passed = [a["inputs"] for a in analyses if a["validation_passed"]]
    assert passed and all(inputs["metrics_error"] == "" for inputs in passed)
    assert all(inputs["gates"]["requests"]["value"] >= 20 for inputs in passed)
    assert passed[0]["stable"]["requests"] > 0  # stable read from its own version


@pytest.mark.usefixtures("compressed")
def test_a_canary_with_ten_percent_errors_is_rolled_back_by_the_error_rate_rule(
    approved: Callable[..., Release], team: dict[str, Any]
) -> None:
    rollout = lifecycle.rollout_start(
        release=approved(version=FAILING), actor=team["erin"], stable_version=STABLE
    )
    rolled_back = (RolloutState.ROLLING_BACK, RolloutState.ROLLED_BACK)
    weights, _ = ticking_until(rollout, lambda r: r.state in rolled_back, 20)
    assert weights[0] == 1 and 5 not in weights  # never advanced
    assert rollout.rollback.trigger == "rule error_rate"
    assert "Rule error_rate: error_rate 0." in rollout.rollback.reason
