"""The published status page: HTML, Statuspage v2 JSON and an Atom feed rendered from
the database and written atomically to STATUS_SNAPSHOT_DIR, from where visitors are
served without a database query (and still served while the database is down).

Publishing cannot be poisoned by one row: a row that cannot be rendered is logged and left
out (`statuspage.each`), control characters are stripped from the HTML and the feed, and
each file is written even when another could not be."""

from __future__ import annotations

import json
import os
import tempfile
from collections import defaultdict
from datetime import timedelta
from pathlib import Path
from typing import Any

import structlog
from django.conf import settings
from django.template.loader import render_to_string
from django.utils.feedgenerator import Atom1Feed

from comms.models import Component, Impact, Incident, IncidentStatus, Maintenance
from comms.statuspage import documents, each
from comms.text import strip_control
from portal import clock

logger = structlog.get_logger(__name__)

SEVERITY = {"none": 0, "maintenance": 1, Impact.MINOR: 2, Impact.MAJOR: 3, Impact.CRITICAL: 4}


def snapshot_dir() -> Path:
    return Path(settings.STATUS_SNAPSHOT_DIR)


def _write(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(content)
        os.chmod(temp, 0o644)
        os.replace(temp, path)  # atomic: a visitor sees the old file or the new, never half
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def uptime(days: int = 90) -> dict[int, list[dict[str, Any]]]:
    """Per component, a day-by-day worst impact of its incidents and maintenance."""
    today = clock.now().date()
    first = today - timedelta(days=days - 1)
    worst: dict[int, dict[Any, str]] = defaultdict(dict)
    since = clock.now() - timedelta(days=days)

    def mark(incident: Incident) -> None:
        severity = SEVERITY[incident.impact]
        end = (incident.resolved_at or clock.now()).date()
        day = incident.started_at.date()
        while day <= end:
            for component in incident.components.all():
                current = worst[component.pk].get(day, "none")
                if severity > SEVERITY[current]:
                    worst[component.pk][day] = incident.impact
            day += timedelta(days=1)

    each(Incident.objects.filter(started_at__gte=since).prefetch_related("components"), mark)
    for maintenance in Maintenance.objects.filter(
        scheduled_for__gte=since, started_at__isnull=False
    ):
        for component in maintenance.components.all():
            day = maintenance.scheduled_for.date()
            worst[component.pk].setdefault(day, "maintenance")
    return {
        component_id: [
            {
                "day": first + timedelta(days=n),
                "impact": days_map.get(first + timedelta(days=n), "none"),
            }
            for n in range(days)
        ]
        for component_id, days_map in {
            c.pk: worst.get(c.pk, {}) for c in Component.objects.all()
        }.items()
    }


def _feed(incidents: list[Incident]) -> bytes:
    base = settings.STATUS_PAGE_URL.rstrip("/")
    feed = Atom1Feed(
        title=f"{settings.STATUS_PAGE_NAME} status",
        link=f"{base}/status/",
        description="Incidents and their updates",
        language="en",
        feed_url=f"{base}/status/feed.atom",
    )

    def add(incident: Incident) -> None:
        updates = "\n".join(
            f"{u.display_at:%Y-%m-%d %H:%M} UTC {u.status}: {u.body}"
            for u in incident.updates.all()
        )
        feed.add_item(
            title=strip_control(f"{incident.name} ({incident.status})"),
            link=f"{base}/status/#incident-{incident.code}",
            description=strip_control(updates or incident.name),
            unique_id=f"incident-{incident.code}",
            updateddate=incident.updated_at,
            pubdate=incident.created_at,
        )

    each(incidents, add)
    return feed.writeString("utf-8").encode()


class PublishIncomplete(Exception):
    """Some files could not be written; the others were."""


def publish() -> dict[str, Any]:
    """Render everything and write it; returns the summary document. Each file is written
    on its own: one that fails is logged and PublishIncomplete raised after the rest."""
    docs = documents()
    root = snapshot_dir()
    failed = []
    files: list[tuple[str, Any]] = [
        (f"api/v2/{name}", lambda body=body: json.dumps(body, separators=(",", ":")).encode())
        for name, body in docs.items()
    ]
    files += [
        ("index.html", lambda: strip_control(_html(docs["summary.json"])).encode()),
        ("feed.atom", lambda: _feed(list(Incident.objects.prefetch_related("updates")[:50]))),
    ]
    for name, render in files:
        try:
            _write(root / name, render())
        except Exception:
            logger.exception("status_file_failed", file=name)
            failed.append(name)
    if failed:
        raise PublishIncomplete(f"Not published: {', '.join(failed)}.")
    return docs["summary.json"]


def _html(summary: dict[str, Any]) -> str:
    incidents = list(Incident.objects.prefetch_related("components", "updates")[:50])
    components = list(Component.objects.filter(is_group=False))
    bars = uptime()
    return render_to_string(
        "comms/status_page.html",
        {
            "summary": summary,
            "components": [
                {
                    "component": c,
                    "bars": bars.get(c.pk, []),
                    "visible": not c.only_show_if_degraded or c.status != "operational",
                }
                for c in components
            ],
            "open": [
                i
                for i in incidents
                if i.status not in (IncidentStatus.RESOLVED, IncidentStatus.POSTMORTEM)
            ],
            "past": [
                i
                for i in incidents
                if i.status in (IncidentStatus.RESOLVED, IncidentStatus.POSTMORTEM)
            ][:10],
            "page": summary["page"],
        },
    )
