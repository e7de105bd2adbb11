"""Promotion by people over HTTP: `manual` moves to the next phase; `full` goes straight
to 100% once a second member (council or steward, not the first, not the author; the named
approver when there is one) makes the same call within 15 minutes (14:59 yes, 15:00 no)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import time_machine

from governance.models import AuditEvent, Release
from rollouts.models import FullPromotion, Rollout, TrafficSplit
from tests.rollouts.conftest import T0, at

pytestmark = pytest.mark.django_db

FULL = {"mode": "manual", "confirmed": True, "full": True}


@pytest.fixture
def clock() -> Iterator[Any]:
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


@pytest.fixture
def call(
    team: dict[str, Any], token_for: Callable[..., str], api: Callable[..., Any]
) -> Callable[..., Any]:
    def post(name: str, rollout: Rollout, body: dict[str, Any]) -> Any:
        client = api(token_for(team[name], "canary:operate", "read"))
        return client.post(f"/api/v1/rollouts/{rollout.pk}/promote/", body, format="json")

    return post


@pytest.fixture
def rollout(
    approved: Callable[..., Release],
    team: dict[str, Any],
    make_member: Callable[..., Any],
    token_for: Callable[..., str],
    api: Callable[..., Any],
    clock: Any,
) -> Rollout:
    """Deployed by its author, erin, who is a platform steward too."""
    make_member("erin", "engineer", "steward")
    release = approved()
    client = api(token_for(team["erin"], "canary:operate"))
    response = client.post(f"/api/v1/releases/{release.pk}/deploy/", {}, format="json")
    assert response.status_code == 201, response.json()
    return Rollout.objects.get(pk=response.json()["id"])


def where(rollout: Rollout) -> tuple[str, int]:
    rollout.refresh_from_db()
    return rollout.state, rollout.weight


def audited(action: str) -> list[tuple[str, dict[str, Any]]]:
    return [(e.actor, e.data) for e in AuditEvent.objects.filter(action=f"rollout.{action}")]


def test_a_manual_promotion_is_the_next_phase_at_once(
    rollout: Rollout, call: Callable[..., Any]
) -> None:
    answer = call("carol", rollout, {"mode": "manual", "confirmed": True})
    assert answer.status_code == 200
    assert (answer.json()["phase"]["index"], answer.json()["weight"]) == (1, 5)
    assert where(rollout) == ("running", 5)
    assert TrafficSplit.objects.get(service="backend").weight == 5
    [(actor, data)] = audited("advanced")
    assert (actor, data["how"], data["phase"]) == ("carol", "manual", 1)


def test_a_full_promotion_needs_a_second_member_within_15_minutes(
    rollout: Rollout, call: Callable[..., Any], clock: Any
) -> None:
    first = call("carol", rollout, FULL)
    assert first.status_code == 202
    assert first.json() == {
        "awaiting": "second approver",
        "rollout": rollout.pk,
        "requested_by": "carol",
        "approver": None,
        "expires_at": "2026-11-26T14:15:00Z",
    }
    assert where(rollout) == ("running", 1)
    [(actor, data)] = audited("full_promotion_requested")
    assert (actor, data["expires_at"]) == ("carol", "2026-11-26T14:15:00+00:00")

    again = call("carol", rollout, FULL)  # the same member twice
    assert (
        again.status_code == 409 and "carol asked for this full promotion" in again.json()["detail"]
    )
    author = call("erin", rollout, FULL)  # the release's author, a steward
    assert author.status_code == 409
    assert author.json()["detail"] == (
        "erin is the release's author and cannot be its second approver."
    )
    assert where(rollout) == ("running", 1)
    assert audited("full_promotion_confirmed") == [] and audited("promoted") == []

    clock.move_to(at(899))  # 14:59 after the first call
    second = call("dave", rollout, FULL)
    assert second.status_code == 200 and second.json()["state"] == "promoted"
    assert where(rollout) == ("promoted", 100)
    split = TrafficSplit.objects.get(service="backend")
    assert (split.stable_version, split.canary_version) == ("v2.1.0", "")
    [(actor, data)] = audited("full_promotion_confirmed")
    assert (actor, data["requested_by"]) == ("dave", "carol")
    [(actor, data)] = audited("promoted")
    assert (actor, data["how"]) == ("dave", "manual, full (two members)")


def test_at_15_minutes_the_request_has_expired_and_a_call_starts_anew(
    rollout: Rollout, call: Callable[..., Any], clock: Any
) -> None:
    assert call("carol", rollout, FULL).status_code == 202
    clock.move_to(at(900))  # 15:00
    late = call("dave", rollout, FULL)
    assert late.status_code == 202
    assert (late.json()["requested_by"], late.json()["expires_at"]) == (
        "dave",
        "2026-11-26T14:30:00Z",
    )
    assert where(rollout) == ("running", 1)
    clock.move_to(at(901))
    assert call("carol", rollout, FULL).json()["state"] == "promoted"
    asked = FullPromotion.objects.filter(rollout=rollout).order_by("requested_at")
    assert [(a.requested_by_name, a.confirmed_by_name) for a in asked] == [
        ("carol", ""),
        ("dave", "carol"),
    ]


def test_a_named_approver_is_the_only_member_who_completes_it(
    rollout: Rollout, call: Callable[..., Any]
) -> None:
    first = call("carol", rollout, {**FULL, "approver": "@dave"})
    assert first.status_code == 202 and first.json()["approver"] == "dave"
    other = call("sam", rollout, FULL)
    assert other.status_code == 409
    assert other.json()["detail"] == "This full promotion awaits dave, not sam."
    assert where(rollout) == ("running", 1)
    assert call("dave", rollout, {**FULL, "approver": "@dave"}).status_code == 200
    assert where(rollout) == ("promoted", 100)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"mode": "manual", "confirmed": True, "approver": "@dave"}, "approver"),
        ({"mode": "auto", "confirmed": True, "full": True}, "full"),
        ({"mode": "manual", "full": True}, None),
        ({**FULL, "full": "true"}, "full"),
        ({**FULL, "approver": "@olivia"}, None),  # no role
        ({**FULL, "approver": "@fiona"}, None),  # finance: may not promote
        ({**FULL, "approver": "@carol"}, None),  # the caller
        ({**FULL, "approver": "@erin"}, None),  # the author
        ({**FULL, "approver": "@nobody"}, None),
    ],
)
def test_refused_requests_change_nothing(
    rollout: Rollout, call: Callable[..., Any], body: dict[str, Any], field: str | None
) -> None:
    answer = call("carol", rollout, body)
    assert answer.status_code == 400, answer.json()
    if field:
        assert field in answer.json()["errors"]
    assert where(rollout) == ("running", 1)
    assert not FullPromotion.objects.exists()
    assert audited("full_promotion_requested") == []
