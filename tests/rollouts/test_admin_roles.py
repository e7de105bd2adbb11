"""Rollout actions in the admin follow the API's role check, superusers included: a
superuser without a role sees rollouts but cannot pause, resume, promote or abort."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages
from django.test import Client

from governance.models import Release
from rollouts import lifecycle
from rollouts.models import Rollout
from tests.conftest import logged_in

pytestmark = pytest.mark.django_db

ACTIONS = [
    "pause_selected",
    "resume_selected",
    "promote_selected",
    "promote_full_selected",
    "abort_selected",
]


@pytest.fixture
def rollout(approved: Callable[..., Release], team: dict[str, Any]) -> Rollout:
    return lifecycle.rollout_start(release=approved(), actor=team["erin"])


@pytest.fixture
def root(db: None) -> Any:
    return get_user_model().objects.create_superuser("root", "root@example.com", "pw-root-1")


def superuser(make_member: Callable[..., Any], name: str, role: str) -> Any:
    user = make_member(name, role)
    user.is_superuser = True
    user.save()
    return user


def act(client: Client, name: str, rollout: Rollout) -> tuple[Any, list[str]]:
    response = client.post(
        "/admin/rollouts/rollout/",
        {
            "action": name,
            "_selected_action": [rollout.pk],
            "confirm": "yes",
            "reason": "p95 climbing",
        },
    )
    return response, [str(m) for m in get_messages(response.wsgi_request)]


def test_a_superuser_without_a_role_reads_rollouts(rollout: Rollout, root: Any) -> None:
    client = logged_in(root)
    listing = client.get("/admin/rollouts/rollout/")
    assert listing.status_code == 200
    html = listing.content.decode()
    assert rollout.version in html
    assert not any(name in html for name in ACTIONS)
    assert client.get(f"/admin/rollouts/rollout/{rollout.pk}/change/").status_code == 200


@pytest.mark.parametrize("name", ACTIONS)
def test_a_superuser_without_a_role_cannot_act(
    rollout: Rollout, team: dict[str, Any], root: Any, name: str
) -> None:
    if name == "resume_selected":
        lifecycle.rollout_pause(rollout=rollout, actor=team["oscar"], reason="hold")
    rollout.refresh_from_db()
    before = (rollout.state, rollout.weight, rollout.auto_promote)
    response, messages = act(logged_in(root), name, rollout)
    assert response.status_code == 302
    assert len(messages) == 1 and messages[0].startswith("Refused:"), messages
    assert "needs the role" in messages[0]
    rollout.refresh_from_db()
    assert (rollout.state, rollout.weight, rollout.auto_promote) == before
    assert not hasattr(rollout, "rollback") or rollout.rollback is None


@pytest.mark.parametrize(
    ("name", "role", "state"),
    [
        ("pause_selected", "ops", "paused"),
        ("resume_selected", "steward", "running"),
        ("promote_selected", "council", "running"),
        ("promote_full_selected", "steward", "running"),
        ("abort_selected", "ops", "rolling_back"),
    ],
)
def test_a_superuser_with_the_role_acts(
    rollout: Rollout,
    team: dict[str, Any],
    make_member: Callable[..., Any],
    name: str,
    role: str,
    state: str,
) -> None:
    if name == "resume_selected":
        lifecycle.rollout_pause(rollout=rollout, actor=team["oscar"], reason="hold")
    _response, messages = act(logged_in(superuser(make_member, "boss", role)), name, rollout)
    said = "awaiting a second member" if name == "promote_full_selected" else "done"
    assert any(said in message for message in messages), messages
    rollout.refresh_from_db()
    assert rollout.state == state
