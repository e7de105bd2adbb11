"""Rollouts in the admin: actions by role with confirmation, the rollback and its report."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from governance.models import Release
from rollouts import engine, lifecycle
from rollouts.models import PostRollbackAction, Rollout
from tests.conftest import logged_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def rollout(approved: Callable[..., Release], team: dict[str, Any]) -> Rollout:
    return lifecycle.rollout_start(release=approved(), actor=team["erin"])


def act(client: Client, name: str, rollout: Rollout, **extra: str) -> Any:
    return client.post(
        "/admin/rollouts/rollout/", {"action": name, "_selected_action": [rollout.pk], **extra}
    )


def test_abort_asks_for_a_reason_then_rolls_back(rollout: Rollout, team: dict[str, Any]) -> None:
    client = logged_in(team["oscar"])
    asks = act(client, "abort_selected", rollout)
    assert asks.status_code == 200 and 'id="action-reason"' in asks.content.decode()
    act(client, "abort_selected", rollout, confirm="yes", reason="")
    rollout.refresh_from_db()
    assert rollout.state == "running"
    act(client, "abort_selected", rollout, confirm="yes", reason="p95 climbing")
    rollout.refresh_from_db()
    assert rollout.state == "rolling_back"
    assert rollout.rollback.reason == "p95 climbing"
    engine.rollback_continue(rollout.pk)
    html = client.get(f"/admin/rollouts/rollout/{rollout.pk}/change/").content.decode()
    assert 'id="incident-report"' in html and "aborted by oscar" in html
    assert 'data-step="route_to_stable" data-status="ok"' in html
    assert "Root cause analysis" in html


def test_actions_follow_roles(rollout: Rollout, team: dict[str, Any]) -> None:
    engineer = logged_in(team["erin"]).get("/admin/rollouts/rollout/").content.decode()
    assert "pause_selected" not in engineer and "abort_selected" not in engineer
    act(logged_in(team["erin"]), "pause_selected", rollout, confirm="yes")
    rollout.refresh_from_db()
    assert rollout.state == "running"
    ops = logged_in(team["oscar"]).get("/admin/rollouts/rollout/").content.decode()
    assert "pause_selected" in ops and "promote_selected" not in ops
    act(logged_in(team["oscar"]), "pause_selected", rollout, confirm="yes")
    rollout.refresh_from_db()
    assert rollout.state == "paused"
    html = logged_in(team["oscar"]).get(f"/admin/rollouts/rollout/{rollout.pk}/change/")
    assert 'id="pause-reason" data-kind="manual"' in html.content.decode()
    act(logged_in(team["carol"]), "promote_selected", rollout, confirm="yes")
    rollout.refresh_from_db()
    assert (rollout.state, rollout.phase_index, rollout.weight) == ("running", 1, 5)
    act(logged_in(team["carol"]), "promote_full_selected", rollout, confirm="yes")
    rollout.refresh_from_db()
    assert rollout.state == "running"  # awaiting a second member
    html = logged_in(team["dave"]).get(f"/admin/rollouts/rollout/{rollout.pk}/change/")
    assert "awaiting a second member until" in html.content.decode()
    act(logged_in(team["dave"]), "promote_full_selected", rollout, confirm="yes")
    rollout.refresh_from_db()
    assert (rollout.state, rollout.weight) == ("promoted", 100)


def test_post_rollback_actions_are_assigned_and_closed(
    rollout: Rollout, team: dict[str, Any]
) -> None:
    lifecycle.rollout_abort(rollout=rollout, actor=team["carol"], reason="bad")
    engine.rollback_continue(rollout.pk)
    action = PostRollbackAction.objects.filter(rollout=rollout).first()
    client = logged_in(team["sam"])
    response = client.post(
        f"/admin/rollouts/postrollbackaction/{action.pk}/change/",
        {"assignee": team["oscar"].pk, "notes": "on it"},
    )
    assert response.status_code == 302
    client.post(
        "/admin/rollouts/postrollbackaction/",
        {"action": "mark_done", "_selected_action": [action.pk]},
    )
    action.refresh_from_db()
    assert (action.assignee, action.done_by_name) == (team["oscar"], "sam")
    assert action.done_at is not None
