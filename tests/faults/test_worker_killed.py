"""A worker SIGKILLed in the middle of a rollback's stop-canary command: the command is
never run a second time; the step is recorded `interrupted` once its claim expires, and
the rest of the rollback goes on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine

from governance.models import AuditEvent, Release
from portal import clock
from rollouts import engine, lifecycle
from rollouts.models import ServiceHooks, TrafficSplit
from tests.conftest import subprocess_env
from tests.rollouts.conftest import approved  # noqa: F401  (fixture)
from tests.servers import ROOT

pytestmark = pytest.mark.django_db(transaction=True)


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_a_killed_worker_does_not_make_the_stop_command_run_twice(
    approved: Callable[..., Release],  # noqa: F811
    team: dict[str, Any],
    tmp_path: Path,
    settings: Any,
) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = True  # no other worker: only the one killed here
    runs = tmp_path / "stop-runs"
    # Each run appends its idempotency key and its pid, then takes its time.
    script = f'echo "$CANARY_IDEMPOTENCY_KEY $$" >> {runs}; exec sleep 30'
    ServiceHooks.objects.create(service="backend", stop_command=f"sh -c '{script}'")
    rollout = lifecycle.rollout_start(release=approved(), actor=team["erin"])
    lifecycle.rollout_abort(rollout=rollout, actor=team["oscar"], reason="bad canary")
    assert TrafficSplit.objects.get(service="backend").weight == 0

    worker = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "manage.py"),
            "shell",
            "-c",
            f"from rollouts.engine import rollback_continue; rollback_continue({rollout.pk})",
        ],
        env=subprocess_env(),
        cwd=ROOT,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while not lines(runs):  # the worker's command has started
        assert worker.poll() is None and time.monotonic() < deadline, "the command never ran"
        time.sleep(0.05)
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(timeout=10)
    key, pid = lines(runs)[0].split()
    os.kill(int(pid), signal.SIGKILL)  # the machine went down with it

    stop = rollout.rollback.steps.get(name="stop_canary")
    assert stop.status == "running"
    assert key == stop.idempotency_key == f"rollback-{rollout.rollback.pk}-step-1"
    # Resumed while the dead worker's claim still stands: nothing runs.
    assert engine.rollback_continue(rollout.pk) == "busy"
    assert engine.tick()["rollback_steps"] == 1
    # Resumed after the claim expired: recorded as interrupted, not run again.
    with time_machine.travel(clock.now() + timedelta(seconds=60 + 30 + 1), tick=False):
        assert engine.rollback_continue(rollout.pk) == "aborted"
    assert len(lines(runs)) == 1
    stop.refresh_from_db()
    assert stop.status == "interrupted"
    assert "not run again" in stop.detail and stop.idempotency_key in stop.detail
    steps = dict(rollout.rollback.steps.values_list("name", "status"))
    assert steps == {
        "route_to_stable": "ok",
        "stop_canary": "interrupted",
        "clear_canary_cache": "skipped",
        "notify_oncall": "skipped",
        "incident_report": "ok",
    }
    finished = AuditEvent.objects.filter(action="rollout.rolled_back")
    assert [event.data["failed_steps"] for event in finished] == [["stop_canary"]]
