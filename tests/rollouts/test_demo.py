"""The demo of `make run`: simulated traffic, the engine at the demo time scale."""

from __future__ import annotations

import random
from typing import Any

import pytest
import time_machine
from django.core.management import call_command

from rollouts import engine
from rollouts.models import Rollout
from rollouts.simulator import simulate
from tests.rollouts.conftest import T0, at

pytestmark = pytest.mark.django_db


def test_one_release_is_promoted_and_the_failing_one_rolled_back(settings: Any) -> None:
    settings.DEBUG = True
    settings.CANARY_TIME_SCALE = 60
    rnd = random.Random(7)
    with time_machine.travel(T0, tick=False) as clock:
        call_command("seed_demo", "--rollouts")
        for second in range(1, 400):
            clock.move_to(at(second))
            simulate(now=at(second), period_s=1, failing={"search"}, rnd=rnd)
            engine.tick()
            if not Rollout.objects.filter(
                state__in=["running", "monitoring", "rolling_back"]
            ).exists():
                break
    checkout = Rollout.objects.get(service="checkout")
    search = Rollout.objects.get(service="search")
    assert checkout.state == "promoted", checkout.last_analysis
    assert [(p.weight, p.verdict) for p in checkout.phases.all()] == [
        (1, "passed"),
        (5, "passed"),
        (20, "passed"),
        (100, "promoted"),
    ]
    assert search.state == "rolled_back"
    assert search.rollback.trigger == "rule error_rate"
    assert "rule error_rate" in search.incident_report
    assert second < 300  # about four minutes of demo time at most
