"""Concurrent ticks, aborts and promotes on one rollout, on PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
import time_machine
from django.db import connection

from governance.audit import audit_verify
from governance.models import AuditEvent, Release
from portal.errors import Conflict
from rollouts import engine, lifecycle, promotion
from rollouts.models import Rollout
from tests.rollouts.conftest import T0, at, feed

pytestmark = pytest.mark.django_db(transaction=True)


def run_all(calls: list[Callable[[], Any]]) -> list[Any]:
    results: list[Any] = [None] * len(calls)
    barrier = threading.Barrier(len(calls))

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = calls[i]()
        except Exception as exc:
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_concurrent_ticks_advance_a_phase_exactly_once(
    approved: Callable[..., Release], team: dict[str, Any]
) -> None:
    with time_machine.travel(T0, tick=False) as clock:
        rollout = lifecycle.rollout_start(release=approved(), actor=team["erin"])
        feed("backend", "v2.1.0", "canary", at(0), 3600)
        feed("backend", "v2.0.3", "stable", at(0), 3600, requests=99_000)
        clock.move_to(at(600))
        run_all([engine.tick] * 10)
        rollout.refresh_from_db()
        assert (rollout.phase_index, rollout.weight) == (1, 5)
        assert AuditEvent.objects.filter(action="rollout.advanced").count() == 1


def test_twenty_racing_aborts_promotes_and_ticks_have_one_winner(
    approved: Callable[..., Release], team: dict[str, Any]
) -> None:
    rollout = lifecycle.rollout_start(release=approved(), actor=team["erin"])
    promotion.rollout_promote_full(rollout=rollout, actor=team["sam"], confirmed=True)
    abort = lambda: lifecycle.rollout_abort(rollout=rollout, actor=team["carol"], reason="race")  # noqa: E731

    def promote() -> Rollout:  # the second member's call completes the full promotion
        return promotion.rollout_promote_full(
            rollout=rollout, actor=team["dave"], confirmed=True
        ).rollout

    calls: list[Callable[[], Any]] = [abort] * 8 + [promote] * 8 + [engine.tick] * 4
    results = run_all(calls)
    actions = results[:16]
    winners = [r for r in actions if isinstance(r, Rollout)]
    refused = [r for r in actions if isinstance(r, Conflict)]
    assert len(winners) == 1, results
    assert len(refused) == 15
    assert not [r for r in results if isinstance(r, Exception) and not isinstance(r, Conflict)]
    rollout.refresh_from_db()
    ended = AuditEvent.objects.filter(
        action__in=["rollout.promoted", "rollout.rollback_started"]
    ).count()
    assert ended == 1
    assert rollout.state in ("promoted", "rolling_back", "rolled_back")
    assert audit_verify().ok
