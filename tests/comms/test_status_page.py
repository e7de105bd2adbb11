"""The public status page: Statuspage v2 shapes, the indicator, incidents from rollbacks,
maintenance windows at exact times, and a snapshot served without the database."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest
import time_machine
from django.test import Client

from comms.models import Component, Incident, Maintenance
from comms.services import maintenance_tick
from comms.snapshot import publish
from comms.statuspage import indicator
from governance.models import AuditEvent, Release
from rollouts import engine, lifecycle
from tests.conftest import gunicorn
from tests.rollouts.conftest import T0, at, feed
from tests.servers import closed_port

pytestmark = pytest.mark.django_db

# Field names from Statuspage's public API v2 documentation.
PAGE = {"id", "name", "url", "time_zone", "updated_at"}
COMPONENT = {
    "id",
    "name",
    "status",
    "created_at",
    "updated_at",
    "position",
    "description",
    "showcase",
    "start_date",
    "group_id",
    "page_id",
    "group",
    "only_show_if_degraded",
}
INCIDENT = {
    "id",
    "name",
    "status",
    "impact",
    "created_at",
    "updated_at",
    "started_at",
    "monitoring_at",
    "resolved_at",
    "shortlink",
    "page_id",
    "components",
    "incident_updates",
}
UPDATE = {
    "id",
    "incident_id",
    "status",
    "body",
    "created_at",
    "updated_at",
    "display_at",
    "affected_components",
    "deliver_notifications",
    "custom_tweet",
    "tweet_id",
}
MAINTENANCE = INCIDENT | {"scheduled_for", "scheduled_until"}


def get(path: str, **headers: str) -> Any:
    return Client().get(path, **headers)


def doc(path: str) -> Any:
    """A published JSON file, as a visitor reads it."""
    response = get(path)
    assert response.status_code == 200, path
    return json.loads(b"".join(response.streaming_content))


def test_the_five_components_are_seeded_and_the_page_is_operational() -> None:
    publish()
    body = doc("/api/v2/summary.json")
    assert set(body) == {"page", "components", "incidents", "scheduled_maintenances", "status"}
    assert set(body["page"]) == PAGE
    assert [c["name"] for c in body["components"]] == [
        "Frontend Application",
        "Backend API",
        "Payment Processing",
        "Database",
        "Authentication",
    ]
    assert all(set(c) == COMPONENT for c in body["components"])
    assert body["status"] == {"indicator": "none", "description": "All Systems Operational"}


def test_groups_list_their_members() -> None:
    group = Component.objects.create(name="Core", is_group=True)
    Component.objects.filter(name__in=["Database", "Backend API"]).update(group=group)
    publish()
    components = doc("/api/v2/components.json")["components"]
    core = next(c for c in components if c["name"] == "Core")
    assert core["group"] is True and len(core["components"]) == 2
    database = next(c for c in components if c["name"] == "Database")
    assert database["group_id"] == core["id"]


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([], "none"),
        (["degraded_performance"], "minor"),
        (["partial_outage"], "minor"),
        (["partial_outage", "partial_outage"], "major"),
        (["major_outage"], "major"),
        (["major_outage", "major_outage"], "critical"),
        (["under_maintenance"], "maintenance"),
        (["under_maintenance", "degraded_performance"], "minor"),
    ],
)
def test_the_indicator_follows_component_statuses(statuses: list[str], expected: str) -> None:
    components = list(Component.objects.all())
    for component, status in zip(components, statuses, strict=False):
        component.status = status
    assert indicator(components)["indicator"] == expected


def test_a_rollback_opens_an_incident_and_its_verification_resolves_it(
    approved: Callable[..., Release], team: dict[str, Any]
) -> None:
    with time_machine.travel(T0, tick=False) as clock:
        rollout = lifecycle.rollout_start(release=approved(), actor=team["erin"])
        lifecycle.rollout_abort(rollout=rollout, actor=team["oscar"], reason="errors up")
        engine.rollback_continue(rollout.pk)
        publish()
        body = doc("/api/v2/incidents/unresolved.json")
        assert len(body["incidents"]) == 1
        incident = body["incidents"][0]
        assert set(incident) == INCIDENT
        assert (incident["status"], incident["impact"]) == ("identified", "minor")
        assert [c["name"] for c in incident["components"]] == ["Backend API"]
        update = incident["incident_updates"][0]
        assert set(update) == UPDATE
        assert update["affected_components"][0]["new_status"] == "degraded_performance"
        assert doc("/api/v2/status.json")["status"]["indicator"] == "minor"

        feed("backend", "v2.0.3", "stable", at(0), 600, requests=1000, errors=1)
        clock.move_to(at(600))
        engine.tick()
        publish()
    assert doc("/api/v2/incidents/unresolved.json")["incidents"] == []
    resolved = doc("/api/v2/incidents.json")["incidents"][0]
    assert resolved["status"] == "resolved" and resolved["resolved_at"]
    assert [u["status"] for u in resolved["incident_updates"]] == ["resolved", "identified"]
    assert Component.objects.get(name="Backend API").status == "operational"
    assert Incident.objects.get().rollout == rollout
    posts = AuditEvent.objects.filter(action__startswith="incident.").order_by("seq")
    assert [(e.action, e.actor) for e in posts] == [
        ("incident.opened", "system"),
        ("incident.updated", "system"),
    ]
    assert json.loads(posts[0].data_json)["rollout"] == rollout.pk


def test_maintenance_moves_components_at_exact_times() -> None:
    database = Component.objects.get(name="Database")
    maintenance = Maintenance.objects.create(
        name="Database upgrade",
        body="Minor version upgrade.",
        scheduled_for=at(3600),
        scheduled_until=at(7200),
    )
    maintenance.components.add(database)
    with time_machine.travel(at(3599), tick=False):
        assert maintenance_tick() == 0
        publish()
        upcoming = doc("/api/v2/scheduled-maintenances/upcoming.json")
        assert set(upcoming["scheduled_maintenances"][0]) == MAINTENANCE
        assert upcoming["scheduled_maintenances"][0]["impact"] == "maintenance"
    with time_machine.travel(at(3600), tick=False):
        assert maintenance_tick() == 1
        database.refresh_from_db()
        assert database.status == "under_maintenance"
        publish()
        assert doc("/api/v2/status.json")["status"]["indicator"] == "maintenance"
        active = doc("/api/v2/scheduled-maintenances/active.json")
        assert active["scheduled_maintenances"][0]["status"] == "in_progress"
    with time_machine.travel(at(7199), tick=False):
        assert maintenance_tick() == 0
    with time_machine.travel(at(7200), tick=False):
        assert maintenance_tick() == 1
        database.refresh_from_db()
        assert database.status == "operational"
    moves = AuditEvent.objects.filter(action__startswith="maintenance.").order_by("seq")
    assert [(e.action, e.actor) for e in moves] == [
        ("maintenance.started", "system"),
        ("maintenance.completed", "system"),
    ]


def test_visitors_get_cache_headers_and_etags() -> None:
    publish()
    first = get("/api/v2/summary.json")
    assert first.status_code == 200
    assert first["Content-Type"] == "application/json"
    cache = first["Cache-Control"]
    assert "max-age=30" in cache and "stale-while-revalidate" in cache
    assert "stale-if-error" in cache
    again = get("/api/v2/summary.json", HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304
    html = get("/status/")
    assert html.status_code == 200
    text = b"".join(html.streaming_content).decode()
    assert "All Systems Operational" in text and "<main>" in text
    assert "Backend API" in text and "Operational" in text
    atom = b"".join(get("/status/feed.atom").streaming_content)
    assert ElementTree.fromstring(atom).tag.endswith("feed")  # noqa: S314 (our own output)


def test_every_contract_path_answers() -> None:
    publish()
    for name in [
        "summary",
        "status",
        "components",
        "incidents",
        "incidents/unresolved",
        "scheduled-maintenances",
        "scheduled-maintenances/upcoming",
        "scheduled-maintenances/active",
    ]:
        assert "page" in doc(f"/api/v2/{name}.json")


@pytest.fixture
def server_without_database(settings: Any) -> Iterator[str]:
    with gunicorn(
        DATABASE_URL=f"postgres://postgres@127.0.0.1:{closed_port()}/x",
        STATUS_SNAPSHOT_DIR=settings.STATUS_SNAPSHOT_DIR,
    ) as (url, _):
        yield url


def test_the_page_keeps_answering_while_the_database_is_down(
    server_without_database: str,
) -> None:
    publish()
    summary = httpx.get(f"{server_without_database}/api/v2/summary.json", timeout=10)
    assert summary.status_code == 200
    assert summary.json()["status"]["indicator"] == "none"
    page = httpx.get(f"{server_without_database}/status/", timeout=10)
    assert page.status_code == 200 and "All Systems Operational" in page.text
    assert httpx.get(f"{server_without_database}/health/db", timeout=10).status_code == 503
