"""Writing the status page through the API (scope `status:write`, steward or ops):
incidents with their timeline, component statuses; the refusals."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core import mail

from comms.models import Component, Incident, IncidentUpdate, Subscriber
from comms.snapshot import publish
from governance.models import AuditEvent
from portal import clock
from tests.comms.test_status_page import INCIDENT, UPDATE, doc

pytestmark = pytest.mark.django_db


@pytest.fixture
def steward(team: dict[str, Any], token_for: Callable[..., str], api: Callable[..., Any]) -> Any:
    return api(token_for(team["sam"], "status:write"))


def code(name: str) -> str:
    return Component.objects.get(name=name).code


def test_an_incident_opened_updated_and_resolved_through_the_api(
    steward: Any, eager: None, django_capture_on_commit_callbacks: Any
) -> None:
    Subscriber.objects.create(email="visitor@example.com", confirmed_at=clock.now())
    with django_capture_on_commit_callbacks(execute=True):
        opened = steward.post(
            "/api/v1/incidents/",
            {
                "name": "Payments failing for some cards",
                "impact": "major",
                "body": "We are investigating failed card payments.",
                "components": {code("Payment Processing"): "partial_outage"},
            },
            format="json",
        )
    assert opened.status_code == 201, opened.json()
    incident = opened.json()
    assert set(incident) == INCIDENT and set(incident["incident_updates"][0]) == UPDATE
    assert (incident["status"], incident["impact"]) == ("investigating", "major")
    # One moment for the whole write: no update that predates its incident.
    opened_at = incident["created_at"]
    assert incident["started_at"] == incident["updated_at"] == opened_at
    assert incident["incident_updates"][0]["display_at"] == opened_at
    assert [c["name"] for c in incident["components"]] == ["Payment Processing"]
    assert incident["incident_updates"][0]["affected_components"] == [
        {
            "code": code("Payment Processing"),
            "name": "Payment Processing",
            "old_status": "operational",
            "new_status": "partial_outage",
        }
    ]
    assert doc("/api/v2/status.json")["status"]["indicator"] == "minor"  # published at once
    assert mail.outbox[-1].subject.startswith("[investigating] Payments failing")

    updates = f"/api/v1/incidents/{incident['id']}/updates/"
    watching = steward.post(
        updates, {"status": "monitoring", "body": "A fix is deployed."}, format="json"
    )
    assert watching.status_code == 201
    assert watching.json()["monitoring_at"] and not watching.json()["resolved_at"]
    with django_capture_on_commit_callbacks(execute=True):
        done = steward.post(
            updates, {"status": "resolved", "body": "Card payments work again."}, format="json"
        ).json()
    assert done["status"] == "resolved" and done["resolved_at"]
    assert [u["status"] for u in done["incident_updates"]] == [
        "resolved",
        "monitoring",
        "investigating",
    ]
    assert Component.objects.get(name="Payment Processing").status == "operational"
    assert doc("/api/v2/incidents/unresolved.json")["incidents"] == []
    assert mail.outbox[-1].subject.startswith("[resolved]")
    actions = list(
        AuditEvent.objects.filter(action__startswith="incident.").values_list("action", flat=True)
    )
    assert actions == ["incident.opened", "incident.updated", "incident.updated"]


def test_a_component_status_set_through_the_api(steward: Any) -> None:
    url = f"/api/v1/components/{code('Database')}/"
    answer = steward.patch(url, {"status": "major_outage"}, format="json")
    assert answer.status_code == 200
    assert answer.json()["status"] == "major_outage" and answer.json()["name"] == "Database"
    assert Component.objects.get(name="Database").status == "major_outage"
    assert steward.patch(url, {"status": "major_outage"}, format="json").status_code == 200
    assert AuditEvent.objects.filter(action="component.status_changed").count() == 1
    publish()
    assert doc("/api/v2/status.json")["status"]["indicator"] == "major"


def test_writing_the_status_page_needs_status_write_and_a_steward_or_ops(
    team: dict[str, Any], token_for: Callable[..., str], api: Callable[..., Any]
) -> None:
    body = {"name": "x", "body": "y"}
    url = f"/api/v1/components/{code('Database')}/"
    assert api().post("/api/v1/incidents/", body, format="json").status_code == 401
    assert api().patch(url, {"status": "major_outage"}, format="json").status_code == 401
    for user, scope in (("sam", "read"), ("sam", "comms:write"), ("erin", "status:write")):
        client = api(token_for(team[user], scope))
        assert client.post("/api/v1/incidents/", body, format="json").status_code == 403
        assert client.patch(url, {"status": "major_outage"}, format="json").status_code == 403
    ops = api(token_for(team["oscar"], "status:write"))
    assert ops.post("/api/v1/incidents/", body, format="json").status_code == 201
    assert Incident.objects.count() == 1
    assert Component.objects.get(name="Database").status == "operational"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"body": "y"}, "name"),
        ({"name": "x"}, "body"),
        ({"name": "x", "body": "y", "status": "on_fire"}, "status"),
        ({"name": "x", "body": "y", "impact": "maintenance"}, "impact"),
        ({"name": "x", "body": "y", "components": {"nope": "major_outage"}}, "components"),
        ({"name": "x", "body": "y", "components": {"DB": "down"}}, "components"),
        ({"name": "x", "body": "y", "components": ["Database"]}, "components"),
        ({"name": "x", "body": "y", "colour": "red"}, "colour"),
    ],
)
def test_malformed_incidents_are_refused_naming_the_field(
    steward: Any, body: dict[str, Any], field: str
) -> None:
    if body.get("components") == {"DB": "down"}:
        body = {**body, "components": {code("Database"): "down"}}
    refused = steward.post("/api/v1/incidents/", body, format="json")
    assert refused.status_code == 400
    assert field in refused.json()["errors"], refused.json()
    assert not Incident.objects.exists() and not IncidentUpdate.objects.exists()
    assert not Component.objects.exclude(status="operational").exists()


def test_unknown_incidents_and_components_are_404_and_bad_bodies_400(steward: Any) -> None:
    assert (
        steward.post(
            "/api/v1/incidents/nope/updates/", {"status": "resolved", "body": "x"}, format="json"
        ).status_code
        == 404
    )
    assert steward.patch("/api/v1/components/nope/", {"status": "major_outage"}).status_code == 404
    group = Component.objects.create(name="Core", is_group=True)
    assert (
        steward.patch(f"/api/v1/components/{group.code}/", {"status": "major_outage"}).status_code
        == 404
    )
    url = f"/api/v1/components/{code('Database')}/"
    assert steward.patch(url, {"status": "down"}, format="json").status_code == 400
    assert steward.patch(url, ["major_outage"], format="json").status_code == 400
    assert steward.patch(url, b"{not json", content_type="application/json").status_code == 400
    assert (
        steward.post("/api/v1/incidents/", "[]", content_type="application/json").status_code == 400
    )
    assert Component.objects.get(name="Database").status == "operational"


def test_a_component_comes_back_only_when_its_last_open_incident_closes(steward: Any) -> None:
    database = {code("Database"): "partial_outage"}
    first, second = (
        steward.post(
            "/api/v1/incidents/", {"name": n, "body": "x", "components": database}, format="json"
        ).json()["id"]
        for n in ("Slow queries", "Replica lag")
    )
    resolve = {"status": "resolved", "body": "Fixed."}
    steward.post(f"/api/v1/incidents/{first}/updates/", resolve, format="json")
    assert Component.objects.get(name="Database").status == "partial_outage"
    steward.post(f"/api/v1/incidents/{second}/updates/", resolve, format="json")
    assert Component.objects.get(name="Database").status == "operational"
