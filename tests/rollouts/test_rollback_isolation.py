"""Rollback steps run outside every lock, each within its enforced timeout: a hung hook,
router or alert channel holds up only its own step."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from governance.models import Release
from portal import clock
from rollouts import engine, lifecycle
from rollouts.models import MetricSample, Rollout, ServiceHooks, TrafficSplit
from tests import conftest
from tests.rollouts.conftest import HEALTHY_LATENCY

pytestmark = pytest.mark.django_db(transaction=True)


def healthy_phase(rollout: Rollout) -> None:
    """The rollout's first phase over, with healthy canary and stable traffic all along."""
    now = clock.now()
    Rollout.objects.filter(pk=rollout.pk).update(
        phase_started_at=now - timedelta(seconds=600), phase_ends_at=now - timedelta(seconds=1)
    )
    rows = []
    for n in range(-600, 0, 10):
        begin = now + timedelta(seconds=n)
        for variant, version, requests in (("stable", "v2.0.3", 2000), ("canary", "v2.1.0", 20)):
            rows.append(
                MetricSample(
                    service=rollout.service,
                    version=version,
                    variant=variant,
                    start=begin,
                    end=begin + timedelta(seconds=10),
                    requests=requests,
                    errors=0,
                    latency_le=HEALTHY_LATENCY["le"],
                    latency_counts=HEALTHY_LATENCY["counts"],
                )
            )
    MetricSample.objects.bulk_create(rows)


def test_a_hook_that_hangs_does_not_delay_another_rollouts_tick(
    approved: Callable[..., Release], team: dict[str, Any], settings: Any
) -> None:
    settings.CANARY_TIME_SCALE = 10  # the stop hook's 60 s timeout becomes 6 s
    settings.CELERY_TASK_ALWAYS_EAGER = True  # the ticks here carry the rollback, no worker
    ServiceHooks.objects.create(service="search", stop_command="sleep 60")
    hung = lifecycle.rollout_start(release=approved(service="search"), actor=team["erin"])
    other = lifecycle.rollout_start(release=approved(service="backend"), actor=team["erin"])
    healthy_phase(other)
    lifecycle.rollout_abort(rollout=hung, actor=team["oscar"], reason="bad canary")

    started = time.monotonic()
    engine.tick()  # the hung rollout's stop hook starts; the other rollout advances
    first = time.monotonic() - started
    started = time.monotonic()
    engine.tick()  # the hook is still running: the next tick is not held up either
    second = time.monotonic() - started

    stop = hung.rollback.steps.get(name="stop_canary")
    assert stop.status == "running"
    other.refresh_from_db()
    assert (other.state, other.weight, TrafficSplit.objects.get(service="backend").weight) == (
        "running",
        5,
        5,
    )
    assert first < 3 and second < 3, (first, second)

    assert engine._running[hung.pk].result(timeout=30) == "aborted"
    stop.refresh_from_db()
    assert (stop.status, stop.detail) == ("timed_out", "timed out after 6s")
    assert 5900 <= stop.duration_ms < 9000


@pytest.fixture
def hung_port() -> Iterator[int]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    yield listener.getsockname()[1]
    listener.close()


def test_notifying_on_call_has_a_deadline(
    approved: Callable[..., Release], team: dict[str, Any], settings: Any, hung_port: int
) -> None:
    settings.CANARY_TIME_SCALE = 30  # notify-on-call's 30 s becomes 1 s
    settings.SLACK_WEBHOOK_URL = f"http://127.0.0.1:{hung_port}/hooks"  # never answers
    rollout = lifecycle.rollout_start(release=approved(), actor=team["erin"])
    lifecycle.rollout_abort(rollout=rollout, actor=team["oscar"], reason="bad canary")
    engine.rollback_continue(rollout.pk)
    notify = rollout.rollback.steps.get(name="notify_oncall")
    assert (notify.status, notify.detail) == ("timed_out", "timed out after 1s")
    assert notify.duration_ms < 2500


def test_routing_to_stable_has_a_deadline_when_the_router_is_stuck(
    approved: Callable[..., Release], team: dict[str, Any], settings: Any
) -> None:
    settings.CANARY_TIME_SCALE = 30  # route-to-stable's 30 s becomes 1 s
    rollout = lifecycle.rollout_start(release=approved(), actor=team["erin"])
    # Another session holds the embedded router's row (a stuck router).
    with psycopg.connect(conftest.test_database_url()) as other:
        other.execute(
            "SELECT * FROM rollouts_trafficsplit WHERE service = 'backend' FOR UPDATE"
        ).fetchall()
        started = time.monotonic()
        lifecycle.rollout_abort(rollout=rollout, actor=team["oscar"], reason="bad canary")
        elapsed = time.monotonic() - started
    route = rollout.rollback.steps.get(name="route_to_stable")
    assert route.status == "timed_out", route.detail
    assert elapsed < 3
    # The other steps go on (on-call is paged); the rollback ends `aborted`, as a step failed.
    assert engine.rollback_continue(rollout.pk) == "aborted"
