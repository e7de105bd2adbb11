"""The kill switch's free-text `operator` is data; the audit's actor is who authenticated."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from governance.models import AuditEvent, Release
from rollouts import lifecycle

pytestmark = pytest.mark.django_db


def test_the_operator_named_in_the_body_is_not_the_actor(
    approved: Callable[..., Release],
    team: dict[str, Any],
    token_for: Callable[..., str],
    api: Callable[..., Any],
) -> None:
    rollout = lifecycle.rollout_start(release=approved(), actor=team["erin"])
    oscar = team["oscar"]
    response = api(token_for(oscar, "canary:abort")).post(
        "/ops/canary/abort",
        {
            "version": rollout.version,
            "service": rollout.service,
            "reason": "High error rate detected",
            "confirmed": True,
            "operator": "carol",  # anyone's name: it is only a label
        },
        format="json",
    )
    assert response.status_code == 202, response.json()
    events = AuditEvent.objects.filter(
        action__in=["rollout.rollback_started", "killswitch.invoked"], release_id=rollout.release_id
    )
    assert sorted(e.action for e in events) == ["killswitch.invoked", "rollout.rollback_started"]
    for event in events:
        assert (event.actor, event.actor_user_id) == ("oscar", oscar.pk), event.action
        assert event.data["operator"] == "carol"
    assert not AuditEvent.objects.filter(actor="carol").exists()
