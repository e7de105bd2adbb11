"""The status page's documents in Atlassian Statuspage v2 shapes (field names and enums).

The page indicator comes from component statuses: any major outage → `major` (two or
more: `critical`); any partial outage → `minor` (two or more: `major`); any degraded
performance → `minor`; only maintenance → `maintenance`; else `none`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, TypeVar

import structlog
from django.conf import settings

from comms.models import (
    Component,
    ComponentStatus,
    Incident,
    IncidentStatus,
    Maintenance,
    MaintenanceStatus,
)
from portal import clock

logger = structlog.get_logger(__name__)
Row = TypeVar("Row")


def each(rows: Iterable[Row], render: Callable[[Row], Any]) -> list[Any]:
    """`render` of every row; a row that cannot be rendered is logged and left out, so one
    bad row never keeps the rest of the page from being published."""
    rendered = []
    for row in rows:
        try:
            rendered.append(render(row))
        except Exception:
            logger.exception(
                "status_row_skipped", row=type(row).__name__, id=getattr(row, "pk", None)
            )
    return rendered


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def _base() -> str:
    return settings.STATUS_PAGE_URL.rstrip("/")


def page(updated_at: datetime) -> dict[str, Any]:
    return {
        "id": settings.STATUS_PAGE_ID,
        "name": settings.STATUS_PAGE_NAME,
        "url": settings.STATUS_PAGE_URL,
        "time_zone": "Etc/UTC",
        "updated_at": iso(updated_at),
    }


def indicator(components: list[Component]) -> dict[str, str]:
    statuses = [c.status for c in components if not c.is_group]
    major = statuses.count(ComponentStatus.MAJOR)
    partial = statuses.count(ComponentStatus.PARTIAL)
    if major:
        return (
            {"indicator": "critical", "description": "Major System Outage"}
            if major > 1
            else {"indicator": "major", "description": "Partial System Outage"}
        )
    if partial:
        return (
            {"indicator": "major", "description": "Partial System Outage"}
            if partial > 1
            else {"indicator": "minor", "description": "Minor Service Outage"}
        )
    if ComponentStatus.DEGRADED in statuses:
        return {"indicator": "minor", "description": "Partially Degraded Service"}
    if ComponentStatus.MAINTENANCE in statuses:
        return {"indicator": "maintenance", "description": "Service Under Maintenance"}
    return {"indicator": "none", "description": "All Systems Operational"}


def component_json(component: Component) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": component.code,
        "name": component.name,
        "status": component.status,
        "created_at": iso(component.created_at),
        "updated_at": iso(component.updated_at),
        "position": component.position,
        "description": component.description or None,
        "showcase": component.showcase,
        "start_date": component.created_at.date().isoformat(),
        "group_id": component.group.code if component.group else None,
        "page_id": settings.STATUS_PAGE_ID,
        "group": component.is_group,
        "only_show_if_degraded": component.only_show_if_degraded,
    }
    if component.is_group:
        data["components"] = [member.code for member in component.members.all()]
    return data


def _update_json(update: Any, incident_code: str) -> dict[str, Any]:
    return {
        "id": update.code,
        "incident_id": incident_code,
        "status": update.status,
        "body": update.body,
        "created_at": iso(update.created_at),
        "updated_at": iso(update.created_at),
        "display_at": iso(update.display_at),
        "affected_components": update.affected_components,
        "deliver_notifications": True,
        "custom_tweet": None,
        "tweet_id": None,
    }


def incident_json(incident: Incident) -> dict[str, Any]:
    return {
        "id": incident.code,
        "name": incident.name,
        "status": incident.status,
        "impact": incident.impact,
        "created_at": iso(incident.created_at),
        "updated_at": iso(incident.updated_at),
        "started_at": iso(incident.started_at),
        "monitoring_at": iso(incident.monitoring_at),
        "resolved_at": iso(incident.resolved_at),
        "shortlink": f"{_base()}/status/#incident-{incident.code}",
        "page_id": settings.STATUS_PAGE_ID,
        "components": each(incident.components.all(), component_json),
        "incident_updates": each(incident.updates.all(), lambda u: _update_json(u, incident.code)),
    }


def maintenance_json(maintenance: Maintenance) -> dict[str, Any]:
    body = {
        "id": maintenance.code,
        "name": maintenance.name,
        "status": maintenance.status,
        "impact": "maintenance",
        "created_at": iso(maintenance.created_at),
        "updated_at": iso(maintenance.updated_at),
        # Never null in Statuspage's responses: the creation time until the window starts.
        "started_at": iso(maintenance.started_at or maintenance.created_at),
        "monitoring_at": None,
        "resolved_at": iso(maintenance.resolved_at),
        "shortlink": f"{_base()}/status/#maintenance-{maintenance.code}",
        "page_id": settings.STATUS_PAGE_ID,
        "components": each(maintenance.components.all(), component_json),
        "incident_updates": (
            [
                {
                    "id": f"{maintenance.code}-0",
                    "incident_id": maintenance.code,
                    "status": maintenance.status,
                    "body": maintenance.body,
                    "created_at": iso(maintenance.created_at),
                    "updated_at": iso(maintenance.updated_at),
                    "display_at": iso(maintenance.created_at),
                    "affected_components": None,
                    "deliver_notifications": True,
                    "custom_tweet": None,
                    "tweet_id": None,
                }
            ]
            if maintenance.body
            else []
        ),
        "scheduled_for": iso(maintenance.scheduled_for),
        "scheduled_until": iso(maintenance.scheduled_until),
    }
    return body


def documents() -> dict[str, dict[str, Any]]:
    """Every JSON file of the public API, keyed by its path under /api/v2/."""
    now = clock.now()
    components = list(Component.objects.select_related("group").prefetch_related("members"))
    incidents = list(Incident.objects.prefetch_related("components", "updates")[:50])
    unresolved = [
        i
        for i in Incident.objects.prefetch_related("components", "updates").exclude(
            status__in=[IncidentStatus.RESOLVED, IncidentStatus.POSTMORTEM]
        )
    ]
    maintenances = list(
        Maintenance.objects.prefetch_related("components").order_by("-scheduled_for")[:50]
    )
    upcoming = [m for m in maintenances if m.status == MaintenanceStatus.SCHEDULED]
    active = [
        m
        for m in maintenances
        if m.status in (MaintenanceStatus.IN_PROGRESS, MaintenanceStatus.VERIFYING)
    ]
    updated = max(
        [now if not components else max(c.updated_at for c in components)]
        + [i.updated_at for i in incidents]
    )
    head = {"page": page(updated)}
    status = {"status": indicator(components)}
    components_json = each(components, component_json)
    incidents_json = each(incidents, incident_json)
    unresolved_json = each(unresolved, incident_json)
    upcoming_json = each(upcoming, maintenance_json)
    active_json = each(active, maintenance_json)
    return {
        "summary.json": {
            **head,
            "components": components_json,
            "incidents": unresolved_json,
            "scheduled_maintenances": upcoming_json + active_json,
            **status,
        },
        "status.json": {**head, **status},
        "components.json": {**head, "components": components_json},
        "incidents.json": {**head, "incidents": incidents_json},
        "incidents/unresolved.json": {**head, "incidents": unresolved_json},
        "scheduled-maintenances.json": {
            **head,
            "scheduled_maintenances": each(maintenances, maintenance_json),
        },
        "scheduled-maintenances/upcoming.json": {
            **head,
            "scheduled_maintenances": upcoming_json,
        },
        "scheduled-maintenances/active.json": {
            **head,
            "scheduled_maintenances": active_json,
        },
    }
