"""The gates and the statistical judge over a library of synthetic canaries (tests/
canaries.py), each pushed through the push store and the engine minute by minute on the
standard plan (1% 10m, 5% 20m, 20% 30m, then 100%)."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import time_machine

from governance.models import Release
from rollouts import lifecycle
from rollouts.models import Rollout
from tests.canaries import LIBRARY, Canary, Run, drive
from tests.rollouts.conftest import T0, at

pytestmark = pytest.mark.django_db

# Once a rollout's pause_reason is an object, the engine pauses a rollout whose phase
# ends with its validation failing (API.md "Every phase ends in a decision"); until
# then such a rollout is held at its weight with its validation failing.
ENGINE_PAUSES_FAILING = any(f.name == "pause_kind" for f in Rollout._meta.get_fields())
MAX_DECISIONS = 4


@pytest.fixture
def clock() -> Iterator[Any]:
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


def judged(run: Run) -> list[dict[str, Any]]:
    """The judge's verdict at each phase end the run went through."""
    return [analysis["inputs"].get("judge", {}) for analysis in run.history if analysis["inputs"]]


@pytest.mark.parametrize("canary", LIBRARY, ids=[canary.name for canary in LIBRARY])
def test_every_canary_of_the_library_ends_as_it_should(
    canary: Canary, approved: Callable[..., Release], team: dict[str, Any], clock: Any
) -> None:
    rollout = lifecycle.rollout_start(
        release=approved(tier="medium"), actor=team["erin"], stable_version="v2.0.3"
    )
    run = Run(canary, rollout, random.Random(canary.name))
    drive([run], at(0), clock.move_to, max_decisions=MAX_DECISIONS)
    rollout.refresh_from_db()
    verdicts = judged(run)
    if canary.expect == "advance":
        assert run.outcome == "advanced", (run.outcome, run.reason)
        assert (rollout.state, rollout.weight) == ("monitoring", 100)
        assert list(rollout.phases.values_list("verdict", flat=True)[:3]) == ["passed"] * 3
        # Every phase end judged by the statistics, the last before 100% with every
        # metric measured.
        assert [v["class"] for v in verdicts] == ["pass"] * len(verdicts), verdicts
        assert all(m["result"] == "pass" for m in verdicts[-1]["metrics"]), verdicts[-1]
        return
    if canary.expect == "cannot_tell":
        # Paused once the extended phase still cannot tell (or failing, when a handful of
        # errors in a few hundred requests also crosses the plan's fixed error-rate limit).
        assert run.outcome in ("paused", "failing"), (run.outcome, run.reason)
        assert "this phase saw" in run.reason and canary.catch in run.reason, run.reason
        assert rollout.weight == 1
        return
    assert run.outcome in ("paused", "rolled_back", "failing"), (run.outcome, run.reason)
    assert canary.catch in run.reason, run.reason
    assert run.decisions <= MAX_DECISIONS
    assert rollout.weight < 100
    if ENGINE_PAUSES_FAILING:
        assert rollout.state in ("paused", "rolling_back", "rolled_back"), rollout.state
    elif run.outcome == "failing":
        # Held where its validation failed: the rollout did not advance past it.
        assert rollout.state == "running"
        phase = rollout.phases.get(index=rollout.phase_index)
        assert rollout.weight == phase.weight and phase.verdict != "passed"
