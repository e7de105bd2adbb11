"""Every published JSON file against a Statuspage-shaped fixture written from the public
documentation (`statuspage/`): the same fields at every level, values of the same JSON
type (null only where the documentation allows it), timestamps in ISO 8601 with a zone,
and every enum value one Statuspage documents."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import time_machine

from comms.models import Component, Incident, IncidentUpdate, Maintenance
from comms.services import maintenance_tick
from comms.snapshot import publish
from governance.models import Release
from rollouts import lifecycle
from tests.comms.test_status_page import doc
from tests.rollouts.conftest import T0, at

pytestmark = pytest.mark.django_db
FIXTURES = Path(__file__).parent / "statuspage"

NULLABLE = {
    "description",
    "start_date",
    "group_id",
    "monitoring_at",
    "resolved_at",
    "affected_components",
    "custom_tweet",
    "tweet_id",
}
TIMESTAMPS = {
    "created_at",
    "updated_at",
    "started_at",
    "monitoring_at",
    "resolved_at",
    "display_at",
    "scheduled_for",
    "scheduled_until",
}
COMPONENT_STATUSES = {
    "operational",
    "degraded_performance",
    "partial_outage",
    "major_outage",
    "under_maintenance",
}
INCIDENT_STATUSES = {"investigating", "identified", "monitoring", "resolved", "postmortem"}
MAINTENANCE_STATUSES = {"scheduled", "in_progress", "verifying", "completed"}
IMPACTS = {"none", "minor", "major", "critical"}
INDICATORS = IMPACTS | {"maintenance"}

# Each published file and the fixture of its shape.
FILES = {
    "summary": "summary",
    "status": "status",
    "components": "components",
    "incidents": "incidents",
    "incidents/unresolved": "incidents",
    "scheduled-maintenances": "scheduled-maintenances",
    "scheduled-maintenances/upcoming": "scheduled-maintenances",
    "scheduled-maintenances/active": "scheduled-maintenances",
}


def kind(value: Any) -> str:
    return {bool: "boolean", int: "number", float: "number", str: "string"}.get(
        type(value), type(value).__name__
    )


def same_shape(ours: Any, theirs: Any, path: str) -> None:
    if isinstance(theirs, dict):
        assert isinstance(ours, dict), path
        assert set(ours) == set(theirs), f"{path}: {sorted(set(ours) ^ set(theirs))}"
        for key, value in theirs.items():
            field = f"{path}.{key}"
            if ours[key] is None or value is None:
                assert key in NULLABLE or ours[key] == value, f"{field} may not be null"
            elif key in TIMESTAMPS:
                assert datetime.fromisoformat(ours[key]).tzinfo is not None, field
            else:
                same_shape(ours[key], value, field)
    elif isinstance(theirs, list):
        assert isinstance(ours, list), path
        for index, item in enumerate(ours):
            # Lists mix shapes only for components: groups carry their members' ids.
            like = [t for t in theirs if not isinstance(t, dict) or set(t) == set(item)]
            assert like, f"{path}[{index}]: no documented shape has {sorted(item)}"
            same_shape(item, like[0], f"{path}[{index}]")
    else:
        assert kind(ours) == kind(theirs), f"{path}: {kind(ours)} is not {kind(theirs)}"


def enums(body: dict[str, Any]) -> None:
    for component in body.get("components", []):
        assert component["status"] in COMPONENT_STATUSES
    for incident in body.get("incidents", []):
        assert incident["status"] in INCIDENT_STATUSES and incident["impact"] in IMPACTS
        assert {u["status"] for u in incident["incident_updates"]} <= INCIDENT_STATUSES
    for maintenance in body.get("scheduled_maintenances", []):
        assert maintenance["status"] in MAINTENANCE_STATUSES
        assert maintenance["impact"] == "maintenance"
        assert {u["status"] for u in maintenance["incident_updates"]} <= MAINTENANCE_STATUSES
    if "status" in body:
        assert body["status"]["indicator"] in INDICATORS


def test_every_published_file_has_statuspages_shape(
    approved: Callable[..., Release], team: dict[str, Any]
) -> None:
    """A page with everything in it: a group, an incident a rollback opened (with affected
    components), a resolved one, maintenance in progress and upcoming."""
    core = Component.objects.create(name="Core", is_group=True, description="")
    Component.objects.filter(name__in=["Backend API", "Database"]).update(group=core)
    with time_machine.travel(T0, tick=False) as clock:
        old = Incident.objects.create(name="Delayed sign-ins", status="resolved", resolved_at=T0)
        old.components.add(Component.objects.get(name="Authentication"))
        IncidentUpdate.objects.create(incident=old, status="resolved", body="Resolved.")
        rollout = lifecycle.rollout_start(release=approved(), actor=team["erin"])
        lifecycle.rollout_abort(rollout=rollout, actor=team["oscar"], reason="errors up")
        for name, component, start in (
            ("Database upgrade", "Database", 60),
            ("Frontend rebuild", "Frontend Application", 86_400),
        ):
            window = Maintenance.objects.create(
                name=name,
                body="Planned.",
                scheduled_for=at(start),
                scheduled_until=at(start + 3600),
            )
            window.components.add(Component.objects.get(name=component))
        clock.move_to(at(60))
        maintenance_tick()
        publish()

    for name, fixture in FILES.items():
        ours = doc(f"/api/v2/{name}.json")
        theirs = json.loads((FIXTURES / f"{fixture}.json").read_text())
        same_shape(ours, theirs, name)
        enums(ours)
        for key in set(ours) - {"page", "status"}:
            assert ours[key], f"{name}.{key} is empty: nothing was compared"

    summary = doc("/api/v2/summary.json")
    assert summary["status"] == {"indicator": "minor", "description": "Partially Degraded Service"}
    assert [i["name"] for i in summary["incidents"]] == [
        "Degraded service: backend release rolled back"
    ]
    maintenances = {m["name"]: m["status"] for m in summary["scheduled_maintenances"]}
    assert maintenances == {"Database upgrade": "in_progress", "Frontend rebuild": "scheduled"}
    group = next(c for c in summary["components"] if c["group"])
    members = [c["id"] for c in summary["components"] if c["group_id"] == group["id"]]
    assert sorted(group["components"]) == sorted(members) and len(members) == 2


def test_the_comparison_catches_a_missing_field_and_a_wrong_type() -> None:
    theirs = json.loads((FIXTURES / "status.json").read_text())
    ours = json.loads(json.dumps(theirs))
    del ours["page"]["time_zone"]
    with pytest.raises(AssertionError, match="time_zone"):
        same_shape(ours, theirs, "status")
    ours = json.loads(json.dumps(theirs))
    ours["page"]["name"] = None
    with pytest.raises(AssertionError, match="may not be null"):
        same_shape(ours, theirs, "status")
    components = json.loads((FIXTURES / "components.json").read_text())
    ours = json.loads(json.dumps(components))
    ours["components"][1]["position"] = "2"
    with pytest.raises(AssertionError, match="string is not number"):
        same_shape(ours, components, "components")
