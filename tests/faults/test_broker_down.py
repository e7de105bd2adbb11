"""The task broker unreachable: the kill switch still answers 202 with the canary's
traffic at 0, and the embedded tick carries the rollback to its end; nothing lost,
nothing doubled."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from comms.models import Incident
from governance.models import AuditEvent, Release
from rollouts import lifecycle
from rollouts.models import PostRollbackAction, Rollout, ServiceHooks, TrafficSplit
from tests.conftest import gunicorn, run_manage
from tests.rollouts.conftest import approved  # noqa: F401  (fixture)
from tests.servers import closed_port

pytestmark = pytest.mark.django_db(transaction=True)


def test_with_the_broker_down_an_abort_still_completes_once(
    approved: Callable[..., Release],  # noqa: F811
    team: dict[str, Any],
    token_for: Callable[..., str],
    tmp_path: Path,
) -> None:
    stopped, cleared = tmp_path / "stopped", tmp_path / "cleared"
    ServiceHooks.objects.create(
        service="backend",
        stop_command=f"sh -c 'echo \"$CANARY_IDEMPOTENCY_KEY\" >> {stopped}'",
        clear_cache_command=f"sh -c 'echo \"$CANARY_IDEMPOTENCY_KEY\" >> {cleared}'",
    )
    rollout = lifecycle.rollout_start(release=approved(), actor=team["erin"])
    token = token_for(team["oscar"], "canary:abort")
    broker_down = {"CELERY_BROKER_URL": f"redis://127.0.0.1:{closed_port()}/0"}

    with gunicorn(**broker_down) as (url, _proc):
        response = httpx.post(
            f"{url}/ops/canary/abort",
            json={
                "version": "v2.1.0",
                "service": "backend",
                "reason": "High error rate detected",
                "confirmed": True,
                "operator": "@jermaineMerritt",
            },
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert response.status_code == 202, response.text
        split = TrafficSplit.objects.get(service="backend")
        assert (split.weight, split.canary_version) == (0, "")

    for _ in range(2):  # the embedded engine, twice: the second tick finds nothing to do
        ticked = run_manage("canary_tick", **broker_down)
        assert ticked.returncode == 0, ticked.stderr

    rollout.refresh_from_db()
    assert rollout.state == "rolled_back"
    steps = dict(rollout.rollback.steps.values_list("name", "status"))
    assert steps == {
        "route_to_stable": "ok",
        "stop_canary": "ok",
        "clear_canary_cache": "ok",
        "notify_oncall": "skipped",
        "incident_report": "ok",
    }
    key = f"rollback-{rollout.rollback.pk}-step-"
    assert stopped.read_text().splitlines() == [key + "1"]
    assert cleared.read_text().splitlines() == [key + "2"]
    actions = AuditEvent.objects.filter(action__startswith="rollout.", object_id=str(rollout.pk))
    assert sorted(actions.values_list("action", flat=True)) == [
        "rollout.rollback_started",
        "rollout.rolled_back",
        "rollout.started",
        "rollout.weight_applied",
    ]
    assert Incident.objects.filter(rollout=rollout).count() == 1
    assert PostRollbackAction.objects.filter(rollout=rollout).count() == 5
    assert Rollout.objects.get(pk=rollout.pk).incident_report
