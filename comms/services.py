"""Every write to the status page goes through here: incidents opened, updated and
resolved (by the API, the admin, notices and rollbacks), components' statuses, maintenance
windows moving components in and out of `under_maintenance`. Each write is audited and
the page republished once its transaction commits."""

from __future__ import annotations

from typing import Any

import structlog
from django.db import transaction

from comms.models import (
    Component,
    ComponentStatus,
    Impact,
    Incident,
    IncidentStatus,
    IncidentUpdate,
    Maintenance,
    MaintenanceStatus,
)
from comms.subscriptions import request_notify
from governance.audit import audit_append
from portal import clock
from portal.enqueue import enqueue_after_commit

logger = structlog.get_logger(__name__)


def request_publish() -> None:
    """Republish once the current transaction commits (the 5-minute publish catches up)."""
    from comms.tasks import publish_status

    enqueue_after_commit(publish_status)


def _services(component: Component) -> set[str]:
    return {s.strip() for s in component.services.split(",") if s.strip()}


def components_for_service(service: str) -> list[Component]:
    return [c for c in Component.objects.filter(is_group=False) if service in _services(c)]


def _set_status(components: list[Component], status: str) -> list[dict[str, Any]]:
    changes = []
    for component in components:
        if component.status != status:
            changes.append(
                {
                    "code": component.code,
                    "name": component.name,
                    "old_status": component.status,
                    "new_status": status,
                }
            )
            component.status, component.updated_at = status, clock.now()
            component.save(update_fields=["status", "updated_at"])
    return changes


CLOSED = [IncidentStatus.RESOLVED, IncidentStatus.POSTMORTEM]


def component_set_status(
    component: Component, status: str, *, actor: Any = None
) -> list[dict[str, Any]]:
    """A direct change to one component (API or admin); audited, and the page follows."""
    with transaction.atomic():
        changes = _set_status([component], status)
        if changes:
            audit_append(
                action="component.status_changed", actor=actor, obj=component, data=changes[0]
            )
            request_publish()
    return changes


def _calm(incident: Incident) -> list[Component]:
    """The incident's components that no other unresolved incident covers."""
    others = Incident.objects.exclude(pk=incident.pk).exclude(status__in=CLOSED)
    return list(incident.components.exclude(pk__in=Component.objects.filter(incidents__in=others)))


def _take_status(incident: Incident, status: str, now: Any) -> list[dict[str, Any]]:
    """The incident takes `status` and its milestones; closing it gives back the components
    no other open incident covers (the changes are returned). The caller saves."""
    changes = []
    if status in CLOSED:
        changes = _set_status(_calm(incident), ComponentStatus.OPERATIONAL)
        incident.resolved_at = incident.resolved_at or now
    else:
        incident.resolved_at = None
    if status == IncidentStatus.MONITORING and incident.monitoring_at is None:
        incident.monitoring_at = now
    incident.status, incident.updated_at = status, now
    return changes


def incident_post(
    incident: Incident | None,
    *,
    status: str,
    body: str,
    components: dict[Component, str | None],
    name: str = "",
    impact: str = Impact.MINOR,
    rollout: Any = None,
    notice: Any = None,
    actor: Any = None,
) -> IncidentUpdate:
    """One entry on the status page's timeline, opening the incident when there is none:
    the named components join it (set to the given status, or left as they are for None),
    the incident takes the update's status and its milestones, and a closing update gives
    back the components no other open incident covers. Audited (`actor` None: the system);
    subscribers and the page follow."""
    now = clock.now()
    opened = incident is None
    with transaction.atomic():
        if incident is None:
            incident = Incident.objects.create(
                name=name,
                impact=impact,
                status=status,
                rollout=rollout,
                created_at=now,
                started_at=now,
            )
        incident.components.add(*components)
        changes = []
        for component, wanted in components.items():
            if wanted is not None:
                changes += _set_status([component], wanted)
        changes += _take_status(incident, status, now)
        incident.save()
        update = IncidentUpdate.objects.create(
            incident=incident,
            status=status,
            body=body,
            affected_components=changes or None,
            notice=notice,
            created_at=now,
            display_at=now,
        )
        audit_append(
            action="incident.opened" if opened else "incident.updated",
            actor=actor,
            obj=incident,
            data={
                "incident": incident.code,
                "update": update.code,
                "status": status,
                "components": {c.code: v for c, v in components.items()},
                **({"notice": notice.pk} if notice is not None else {}),
                **({"rollout": rollout.pk} if rollout is not None else {}),
            },
        )
        request_notify(update)
        request_publish()
    return update


def incident_open_for_rollout(rollout: Any, reason: str) -> Incident:
    """A rollback tells visitors: the release's components are degraded while it runs."""
    return incident_post(
        None,
        name=f"Degraded service: {rollout.service} release rolled back",
        rollout=rollout,
        status=IncidentStatus.IDENTIFIED,
        components=dict.fromkeys(components_for_service(rollout.service), ComponentStatus.DEGRADED),
        body="A new version showed problems and is being rolled back. "
        "Your data is safe. Updates will follow.",
    ).incident


def incident_update_for_rollout(rollout: Any, *, verified: bool, detail: str) -> None:
    """After the rollback's verification: resolve on success, keep investigating otherwise."""
    for incident in Incident.objects.filter(rollout=rollout).exclude(status__in=CLOSED):
        if verified:
            status = IncidentStatus.RESOLVED
            body = "The previous version is serving everyone and the checks are healthy again."
        else:
            status = IncidentStatus.INVESTIGATING
            body = f"The rollback completed, but the checks are not healthy yet: {detail}"
        incident_post(incident, status=status, body=body, components={})


def _maintenance_start(maintenance: Maintenance, now: Any) -> None:
    maintenance.status, maintenance.started_at = MaintenanceStatus.IN_PROGRESS, now
    maintenance.updated_at = now
    maintenance.save()
    changes = _set_status(list(maintenance.components.all()), ComponentStatus.MAINTENANCE)
    _audit_maintenance(maintenance, "maintenance.started", changes)


def _maintenance_end(maintenance: Maintenance, now: Any) -> None:
    maintenance.status, maintenance.resolved_at = MaintenanceStatus.COMPLETED, now
    maintenance.updated_at = now
    maintenance.save()
    components = [
        c for c in maintenance.components.all() if c.status == ComponentStatus.MAINTENANCE
    ]
    changes = _set_status(components, ComponentStatus.OPERATIONAL)
    _audit_maintenance(maintenance, "maintenance.completed", changes)


def _audit_maintenance(maintenance: Maintenance, action: str, changes: list[dict]) -> None:
    audit_append(
        action=action,
        obj=maintenance,
        data={"maintenance": maintenance.code, "components": changes},
    )


def maintenance_tick() -> int:
    """Start and end maintenance windows on time; returns how many moved. Each window
    moves in its own transaction: one that fails is logged and tried again next tick."""
    now, moved = clock.now(), 0
    due = [
        (_maintenance_start, m)
        for m in Maintenance.objects.filter(
            status=MaintenanceStatus.SCHEDULED, scheduled_for__lte=now
        )
    ] + [
        (_maintenance_end, m)
        for m in Maintenance.objects.filter(
            status__in=[MaintenanceStatus.IN_PROGRESS, MaintenanceStatus.VERIFYING],
            scheduled_until__lte=now,
        )
    ]
    for move, maintenance in due:
        try:
            with transaction.atomic():
                move(maintenance, now)
            moved += 1
        except Exception:
            logger.exception("maintenance_move_failed", maintenance=maintenance.pk)
    if moved:
        request_publish()
    return moved


def other_open_incidents(rollout: Any) -> int:
    """Unresolved incidents on the rollout's components, other than its own rollback's."""
    return (
        Incident.objects.filter(components__in=components_for_service(rollout.service))
        .exclude(status__in=CLOSED)
        .exclude(rollout=rollout)
        .distinct()
        .count()
    )


def _incident_status(text: str) -> str:
    """The guide's free-text [STATUS] read as a Statuspage incident status."""
    wanted = text.strip().lower()
    for value, label in IncidentStatus.choices:
        if wanted in (value, str(label).lower()):
            return value
    return IncidentStatus.INVESTIGATING


def _components_named(text: str) -> list[Component]:
    """Components a notice's [SERVICES] names: by component name or by service."""
    names = {part.strip().lower() for part in text.split(",") if part.strip()}
    return [
        c
        for c in Component.objects.filter(is_group=False)
        if c.name.lower() in names or names & {s.lower() for s in _services(c)}
    ]


def incident_post_notice(notice: Any) -> IncidentUpdate:
    """A notice's `status_page` channel: an update on the release's open incident, or a new
    incident on the components the notice names. Once per notice: a retry after a crash
    finds the update it already wrote."""
    existing = IncidentUpdate.objects.filter(notice=notice).first()
    if existing is not None:
        return existing
    is_incident = notice.template.key == "incident_notification"
    status = _incident_status(notice.variables.get("STATUS", ""))
    components = _components_named(notice.variables.get("SERVICES", ""))
    incident = None
    if notice.release_id:  # the release's open incident: its rollback's, or an earlier notice's
        components += components_for_service(notice.release.service)
        open_incidents = Incident.objects.exclude(status__in=CLOSED)
        incident = (
            open_incidents.filter(rollout__release_id=notice.release_id).first()
            or open_incidents.filter(updates__notice__release_id=notice.release_id).first()
        )
    # An incident notice marks its components degraded, never better than they are.
    degrade = is_incident and status not in CLOSED
    calm = (ComponentStatus.OPERATIONAL, ComponentStatus.MAINTENANCE)
    return incident_post(
        incident,
        name=notice.subject,
        impact=Impact.MINOR if is_incident else Impact.NONE,
        status=status,
        body=notice.body,
        components={
            c: ComponentStatus.DEGRADED if degrade and c.status in calm else None
            for c in components
        },
        notice=notice,
    )


def incident_settle(
    incident: Incident, *, added: list[IncidentUpdate], actor: Any, opened: bool = False
) -> None:
    """After a steward's edit in the admin (the form saved the incident and the updates it
    `added`): the newest update (when one was added) sets the incident's status, else the
    status the steward chose stands; milestones and components follow as for any update.
    Audited; subscribers get each added update once; the page follows."""
    with transaction.atomic():
        newest = incident.updates.order_by("-display_at", "-id").first()
        updated = bool(added) and newest is not None
        status = newest.status if updated and newest is not None else incident.status
        changes = _take_status(incident, status, clock.now())
        incident.save()
        if changes and updated and newest is not None and not newest.affected_components:
            newest.affected_components = changes
            newest.save(update_fields=["affected_components"])
        audit_append(
            action="incident.opened" if opened else "incident.updated",
            actor=actor,
            obj=incident,
            data={
                "incident": incident.code,
                "status": incident.status,
                "updates": [u.code for u in added],
                "components": {c["code"]: c["new_status"] for c in changes},
            },
        )
        for update in added:
            request_notify(update)
        request_publish()
