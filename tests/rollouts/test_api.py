"""Deploy, rollout actions and the kill switch over HTTP, as the contract says."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from governance.models import AuditEvent, Release
from governance.tokens import token_issue
from rollouts.models import Rollout, TrafficSplit
from tests.conftest import gunicorn
from tests.servers import closed_port

pytestmark = pytest.mark.django_db

KILL = "/ops/canary/abort"


@pytest.fixture
def client_for(team: dict[str, Any], token_for: Callable[..., str], api: Callable[..., Any]):
    return lambda name, *scopes: api(token_for(team[name], *scopes))


@pytest.fixture
def deployed(approved: Callable[..., Release], client_for: Callable[..., Any]) -> dict[str, Any]:
    release = approved()
    response = client_for("erin", "canary:operate").post(
        f"/api/v1/releases/{release.pk}/deploy/", {"plan": "standard"}, format="json"
    )
    assert response.status_code == 201, response.json()
    return response.json()


def test_deploy_returns_the_rollout(deployed: dict[str, Any]) -> None:
    assert deployed["state"] == "running" and deployed["plan"] == "standard"
    assert deployed["phase"]["index"] == 0 and deployed["weight"] == 1
    assert [p["weight"] for p in deployed["phases"]] == [1, 5, 20, 100]
    assert deployed["phases"][0]["duration_s"] == 600
    assert deployed["rollback"] is None
    assert deployed["phase"]["ends_at"]


def test_deploy_refusals(
    new_release: Callable[..., Release],
    deployed: dict[str, Any],
    client_for: Callable[..., Any],
    approved: Callable[..., Release],
) -> None:
    closed = new_release(service="frontend", version="v1")
    response = client_for("erin", "canary:operate").post(
        f"/api/v1/releases/{closed.pk}/deploy/", {}, format="json"
    )
    assert response.status_code == 409
    assert "CI tests pass: pending" in response.json()["blocking"]
    busy = approved(version="v2.2.0")
    response = client_for("erin", "canary:operate").post(
        f"/api/v1/releases/{busy.pk}/deploy/", {}, format="json"
    )
    assert response.status_code == 409 and response.json()["blocking"]
    assert (
        client_for("erin", "read")
        .post(f"/api/v1/releases/{busy.pk}/deploy/", {}, format="json")
        .status_code
        == 403
    )
    assert (
        client_for("sam", "canary:operate")
        .post(f"/api/v1/releases/{busy.pk}/deploy/", {}, format="json")
        .status_code
        == 403
    )
    assert (
        client_for("erin", "canary:operate")
        .post(f"/api/v1/releases/{busy.pk}/deploy/", {"plan": "yolo"}, format="json")
        .status_code
        == 400
    )


def test_actions_by_role_and_state(
    deployed: dict[str, Any], client_for: Callable[..., Any]
) -> None:
    url = f"/api/v1/rollouts/{deployed['id']}"
    assert client_for("erin", "canary:operate").post(f"{url}/pause/").status_code == 403
    ops = client_for("oscar", "canary:operate")
    assert ops.post(f"{url}/pause/", {"reason": "look"}, format="json").json()["state"] == "paused"
    assert ops.post(f"{url}/pause/").status_code == 409
    assert ops.post(f"{url}/resume/").json()["state"] == "running"
    assert ops.post(f"{url}/resume/").status_code == 409
    assert (
        ops.post(
            f"{url}/promote/", {"mode": "manual", "confirmed": True}, format="json"
        ).status_code
        == 403
    )
    council = client_for("carol", "canary:operate")
    assert council.post(f"{url}/promote/", {"mode": "manual"}, format="json").status_code == 400
    nxt = council.post(f"{url}/promote/", {"mode": "manual", "confirmed": True}, format="json")
    assert nxt.status_code == 200
    assert (nxt.json()["state"], nxt.json()["phase"]["index"], nxt.json()["weight"]) == (
        "running",
        1,
        5,
    )
    full = {"mode": "manual", "confirmed": True, "full": True}
    asked = council.post(f"{url}/promote/", full, format="json")
    assert asked.status_code == 202 and asked.json()["awaiting"] == "second approver"
    promoted = client_for("dave", "canary:operate").post(f"{url}/promote/", full, format="json")
    assert promoted.status_code == 200 and promoted.json()["state"] == "promoted"
    abort = client_for("carol", "canary:abort").post(
        f"{url}/abort/", {"reason": "x", "confirmed": True}, format="json"
    )
    assert abort.status_code == 409
    reader = client_for("fiona", "read")
    assert reader.get(f"{url}/").json()["state"] == "promoted"
    assert [r["id"] for r in reader.get("/api/v1/rollouts/?state=promoted").json()] == [
        deployed["id"]
    ]
    assert reader.get("/api/v1/rollouts/?state=nope").status_code == 400


class TestKillSwitch:
    body = {
        "version": "v2.1.0",
        "service": "backend",
        "reason": "High error rate detected",
        "confirmed": True,
        "operator": "@jermaineMerritt",
    }

    def test_it_takes_the_canary_to_zero_before_answering(
        self, deployed: dict[str, Any], client_for: Callable[..., Any]
    ) -> None:
        response = client_for("oscar", "canary:abort").post(KILL, self.body, format="json")
        assert response.status_code == 202
        assert response.json() == {"rollout": deployed["id"], "state": "rolling_back"}
        split = TrafficSplit.objects.get(service="backend")
        assert (split.weight, split.canary_version) == (0, "")
        rollout = Rollout.objects.get(pk=deployed["id"])
        assert rollout.rollback.operator == "@jermaineMerritt"
        assert rollout.rollback.steps.get(name="route_to_stable").status == "ok"
        assert AuditEvent.objects.filter(action="killswitch.invoked").exists()
        again = client_for("oscar", "canary:abort").post(KILL, self.body, format="json")
        assert again.status_code == 409

    def test_service_may_be_left_out(
        self, deployed: dict[str, Any], client_for: Callable[..., Any]
    ) -> None:
        body = {k: v for k, v in self.body.items() if k != "service"}
        assert (
            client_for("carol", "canary:abort").post(KILL, body, format="json").status_code == 202
        )

    @pytest.mark.parametrize(
        ("change", "status"),
        [
            ({"confirmed": False}, 400),
            ({"confirmed": None}, 400),
            ({"reason": ""}, 400),
            ({"version": "v9.9.9"}, 404),
            ({"service": "frontend"}, 404),
        ],
    )
    def test_refusals_are_answered_and_audited(
        self,
        deployed: dict[str, Any],
        client_for: Callable[..., Any],
        change: dict[str, Any],
        status: int,
    ) -> None:
        response = client_for("carol", "canary:abort").post(
            KILL, {**self.body, **change}, format="json"
        )
        assert response.status_code == status
        assert Rollout.objects.get(pk=deployed["id"]).state == "running"
        refused = AuditEvent.objects.get(action="killswitch.refused")
        assert refused.data["status"] == status

    def test_auth_refusals_are_audited_too(
        self, deployed: dict[str, Any], client_for: Callable[..., Any], api: Callable[..., Any]
    ) -> None:
        assert api().post(KILL, self.body, format="json").status_code == 401
        assert client_for("carol", "read").post(KILL, self.body, format="json").status_code == 403
        assert (
            client_for("erin", "canary:abort").post(KILL, self.body, format="json").status_code
            == 403
        )
        statuses = [
            e.data["status"] for e in AuditEvent.objects.filter(action="killswitch.refused")
        ]
        assert statuses == [401, 403, 403]
        assert Rollout.objects.get(pk=deployed["id"]).state == "running"


@pytest.fixture
def server_with_dead_broker() -> Iterator[str]:
    with gunicorn(REDIS_URL=f"redis://127.0.0.1:{closed_port()}/0") as (url, _):
        yield url


@pytest.mark.django_db(transaction=True)
def test_the_kill_switch_works_with_the_broker_down(
    approved: Callable[..., Release], team: dict[str, Any], server_with_dead_broker: str
) -> None:
    from rollouts.lifecycle import rollout_start

    rollout_start(release=approved(), actor=team["erin"])
    _, token = token_issue(user=team["oscar"], scopes=["canary:abort"])
    started = time.monotonic()
    response = httpx.post(
        f"{server_with_dead_broker}{KILL}",
        json=TestKillSwitch.body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=20,
    )
    assert response.status_code == 202, response.text
    assert time.monotonic() - started < 5
    split = TrafficSplit.objects.get(service="backend")
    assert (split.weight, split.canary_version) == (0, "")
