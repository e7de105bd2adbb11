"""One TRANSITIONS table, one guard; the gates' and the verification's thresholds are
the plan's data, not constants."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import time_machine

from governance.models import Release
from portal.errors import Conflict
from rollouts import engine, lifecycle, promotion
from rollouts.analysis.judge import analyse
from rollouts.choices import RolloutState
from rollouts.lifecycle import TRANSITIONS
from rollouts.models import Plan, Rollout
from tests.rollouts.conftest import T0, at, feed

pytestmark = pytest.mark.django_db


@pytest.fixture
def clock() -> Iterator[Any]:
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


def test_the_table_names_every_state_and_the_ends_lead_nowhere() -> None:
    assert set(TRANSITIONS) == set(RolloutState.values)
    for end in (RolloutState.PROMOTED, RolloutState.ROLLED_BACK, RolloutState.ABORTED):
        assert TRANSITIONS[end] == frozenset()
    assert TRANSITIONS[RolloutState.ROLLING_BACK] == {"rolled_back", "aborted"}


# action → (the guard's target, the states it may leave the rollout in, the call)
ACTIONS: dict[str, tuple[str, set[str], Callable[[Rollout, Any], Any]]] = {
    "pause": ("paused", {"paused"}, lambda r, u: lifecycle.rollout_pause(rollout=r, actor=u)),
    "resume": (
        "running",
        {"running", "monitoring"},
        lambda r, u: lifecycle.rollout_resume(rollout=r, actor=u),
    ),
    "promote": (  # the next phase; from the monitoring period, promoted
        "promoted",
        {"running", "promoted"},
        lambda r, u: promotion.rollout_promote(rollout=r, actor=u, mode="manual", confirmed=True),
    ),
    "promote_full": (  # the first of two members: awaiting the second, nothing moves
        "promoted",
        {"running", "paused", "monitoring"},
        lambda r, u: promotion.rollout_promote_full(rollout=r, actor=u, confirmed=True).rollout,
    ),
    "abort": (
        "rolling_back",
        {"rolling_back"},
        lambda r, u: lifecycle.rollout_abort(rollout=r, actor=u, reason="x"),
    ),
}


@pytest.mark.parametrize("action", list(ACTIONS))
@pytest.mark.parametrize("state", RolloutState.values)
def test_every_action_passes_the_one_guard(
    approved: Callable[..., Release], team: dict[str, Any], state: str, action: str
) -> None:
    rollout = lifecycle.rollout_start(release=approved(), actor=team["erin"])
    Rollout.objects.filter(pk=rollout.pk).update(state=state)
    target, outcomes, call = ACTIONS[action]
    if target in TRANSITIONS[state]:
        assert call(rollout, team["sam"]).state in outcomes
    else:
        with pytest.raises(Conflict, match=f"is {state}: it cannot"):
            call(rollout, team["sam"])
        assert Rollout.objects.get(pk=rollout.pk).state == state


def phase_over_with(rollout: Rollout, canary_errors: int) -> None:
    # Stable errs as often as the canary: the statistical judge sees no rise.
    stable_errors = 2 * canary_errors
    feed("backend", "v2.0.3", "stable", at(-3600), 4200, requests=2000, errors=stable_errors)
    feed("backend", "v2.1.0", "canary", at(0), 600, requests=1000, errors=canary_errors)


def test_the_phase_gates_read_their_thresholds_from_the_plan(
    approved: Callable[..., Release], team: dict[str, Any], clock: Any
) -> None:
    rollout = lifecycle.rollout_start(release=approved(), actor=team["erin"])
    phase_over_with(rollout, canary_errors=3)  # 0.3%: within the guide's 0.5%
    Plan.objects.filter(name="standard").update(gate_max_error_rate=0.002)
    clock.move_to(at(600))
    engine.tick()
    rollout.refresh_from_db()
    assert (rollout.state, rollout.weight, rollout.pause_kind) == ("paused", 1, "validation_failed")
    assert rollout.pause_detail == "error rate 0.30% is over the 0.20% limit"
    gate = rollout.last_analysis["inputs"]["gates"]["error_rate"]
    assert (gate["max"], gate["ok"]) == (0.002, False)
    assert rollout.last_analysis["reason"] == "validation failing: error_rate"
    assert rollout.last_analysis["verdict"] == "failing"

    Plan.objects.filter(name="standard").update(gate_max_error_rate=0.005)  # the guide's
    assert analyse(rollout, at(600)).validation_passed


@pytest.mark.parametrize(("limit", "result"), [(250.0, "passed"), (150.0, "failed")])
def test_the_verification_reads_its_limits_from_the_plan(
    approved: Callable[..., Release], team: dict[str, Any], clock: Any, limit: float, result: str
) -> None:
    Plan.objects.filter(name="standard").update(verify_max_p95_ms=limit)
    rollout = lifecycle.rollout_start(release=approved(), actor=team["erin"])
    lifecycle.rollout_abort(rollout=rollout, actor=team["carol"], reason="bad")
    engine.rollback_continue(rollout.pk)
    feed("backend", "v2.0.3", "stable", at(0), 600, requests=1000)  # p95 200 ms
    clock.move_to(at(600))
    assert engine.tick()["verified"] == 1
    rollout.rollback.refresh_from_db()
    verification = rollout.rollback.verification
    assert verification["result"] == result
    assert verification["checks"]["p95_ms"]["limit"] == limit
    assert verification["checks"]["p95_ms"]["value"] == 200
