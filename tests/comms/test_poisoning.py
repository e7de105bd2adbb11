"""Publishing cannot be poisoned: control characters are refused where text enters (API and
admin, one validator), a bad stored row is left out or cleaned by the publisher, and the
embedded engine keeps ticking whatever one of its jobs does."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
import time_machine
from django.core import mail
from django.core.management import call_command

from comms.models import Component, Incident, IncidentUpdate, Notice
from comms.snapshot import publish
from governance.models import Release
from rollouts import lifecycle
from tests.comms.test_admin import compose
from tests.comms.test_status_api import code, steward  # noqa: F401  (the same fixture)
from tests.conftest import logged_in
from tests.rollouts.conftest import T0, at, feed

pytestmark = pytest.mark.django_db


@pytest.fixture
def snapshot(settings: Any, tmp_path: Path) -> Path:
    settings.STATUS_SNAPSHOT_DIR = str(tmp_path / "status")
    return tmp_path / "status"


def poisoned_incident() -> Incident:
    """As if written before the API checked its input, or straight into the database."""
    incident = Incident.objects.create(name="Slow\x01 logins", status="investigating")
    incident.components.add(Component.objects.get(name="Authentication"))
    IncidentUpdate.objects.create(incident=incident, status="investigating", body="a\x01b")
    return incident


@pytest.mark.parametrize(
    ("url", "body", "field"),
    [
        ("/api/v1/incidents/", {"name": "Logins", "body": "a\u0001b"}, "body"),
        ("/api/v1/incidents/", {"name": "Log\u001bins", "body": "ab"}, "name"),
        ("/api/v1/incidents/", {"name": "Logins", "body": "a\u007fb"}, "body"),
        ("/api/v1/incidents/", {"name": "Logins", "body": "a\u0085b"}, "body"),
        ("{updates}", {"status": "monitoring", "body": "fi\u000bxed"}, "body"),
    ],
)
def test_the_api_refuses_control_characters_naming_the_field(
    steward: Any,  # noqa: F811
    url: str,
    body: dict[str, str],
    field: str,
) -> None:
    incident = Incident.objects.create(name="Existing", status="investigating")
    answer = steward.post(
        url.format(updates=f"/api/v1/incidents/{incident.code}/updates/"), body, format="json"
    )
    assert answer.status_code == 400, answer.content
    assert "control character" in answer.json()["errors"][field][0]
    assert answer.json()["detail"]
    assert Incident.objects.count() == 1 and not IncidentUpdate.objects.exists()


def test_line_breaks_and_tabs_are_text(steward: Any) -> None:  # noqa: F811
    body = {"name": "Logins", "body": "Line one.\r\n\tLine two."}
    answer = steward.post("/api/v1/incidents/", body, format="json")
    assert answer.status_code == 201, answer.content
    assert answer.json()["incident_updates"][0]["body"] == "Line one.\r\n\tLine two."


def test_a_component_status_is_one_of_the_enum(steward: Any) -> None:  # noqa: F811
    url = f"/api/v1/components/{code('Database')}/"
    answer = steward.patch(url, {"status": "operational\u0001"}, format="json")
    assert answer.status_code == 400 and "status" in answer.json()["errors"]


def test_notice_variables_with_control_characters_are_refused(
    team: dict[str, Any], token_for: Callable[..., str], api: Callable[..., Any]
) -> None:
    client = api(token_for(team["sam"], "comms:write"))
    variables = {"STATUS": "Investigating", "SERVICES": "Checkout\u0002"}
    answer = client.post(
        "/api/v1/notices/",
        {"template": "incident_notification", "variables": variables},
        format="json",
    )
    assert answer.status_code == 400, answer.content
    assert "control characters in: SERVICES" in answer.json()["errors"]["variables"]
    assert not Notice.objects.exists()


def test_the_admin_refuses_control_characters_on_every_status_page_form(
    team: dict[str, Any],
) -> None:
    client = logged_in(team["sam"])
    component = client.post(
        "/admin/comms/component/add/",
        {"name": "Search", "description": "Finds\x01 things", "status": "operational"},
    )
    assert component.status_code == 200
    assert "control character" in str(component.context["adminform"].form.errors["description"])
    incident = client.post(
        "/admin/comms/incident/add/",
        {
            "name": "Logins\x07",
            "status": "investigating",
            "impact": "minor",
            "started_at_0": "2026-11-26",
            "started_at_1": "10:00:00",
            "updates-TOTAL_FORMS": "1",
            "updates-INITIAL_FORMS": "0",
            "updates-0-status": "investigating",
            "updates-0-body": "We are\x08 looking.",
            "updates-0-display_at_0": "2026-11-26",
            "updates-0-display_at_1": "10:00:00",
        },
    )
    assert incident.status_code == 200
    assert "name" in incident.context["adminform"].form.errors
    assert "body" in incident.context["inline_admin_formsets"][0].formset.errors[0]
    maintenance = client.post(
        "/admin/comms/maintenance/add/",
        {
            "name": "Upgrade",
            "body": "Down\x1f for an hour",
            "scheduled_for_0": "2026-11-26",
            "scheduled_for_1": "10:00:00",
            "scheduled_until_0": "2026-11-26",
            "scheduled_until_1": "11:00:00",
            "status": "scheduled",
        },
    )
    assert "body" in maintenance.context["adminform"].form.errors
    notice = compose(client, "incident_notification", "STATUS: Investigating\nSERVICES: A\x01PI")
    assert "variables_text" in notice.context["adminform"].form.errors
    assert not Component.objects.filter(name="Search").exists()
    assert not Incident.objects.exists() and not Notice.objects.exists()


def test_a_control_character_in_a_stored_row_does_not_stop_publishing(snapshot: Path) -> None:
    poisoned_incident()
    publish()  # raised UnserializableContentError from the Atom feed
    entries = ElementTree.parse(snapshot / "feed.atom").getroot()  # noqa: S314 (our own output)
    text = ElementTree.tostring(entries, encoding="unicode")
    assert "Slow logins (investigating)" in text and "investigating: ab" in text
    summary = json.loads((snapshot / "api/v2/summary.json").read_bytes())
    assert summary["incidents"][0]["incident_updates"][0]["body"] == "a\x01b"  # JSON escapes it
    assert "\x01" not in (snapshot / "index.html").read_text()


def test_a_row_that_cannot_be_rendered_is_left_out_and_the_rest_published(
    snapshot: Path,
) -> None:
    Incident.objects.create(name="Card payments failing", status="identified", impact="major")
    broken = Incident.objects.create(name="Broken", status="investigating")
    broken.components.add(Component.objects.get(name="Database"))
    Incident.objects.filter(pk=broken.pk).update(impact="enormous")  # no such impact
    publish()  # raised KeyError in the uptime bars
    html = (snapshot / "index.html").read_text()
    assert "Card payments failing" in html
    incidents = json.loads((snapshot / "api/v2/incidents.json").read_bytes())["incidents"]
    assert {i["name"] for i in incidents} == {"Card payments failing", "Broken"}


@pytest.fixture
def clock() -> Iterator[Any]:
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


def test_after_a_control_character_incident_the_engine_still_rolls_back_and_publishes(
    approved: Callable[..., Release],
    team: dict[str, Any],
    steward: Any,  # noqa: F811
    snapshot: Path,
    clock: Any,
) -> None:
    """The finding: the incident was accepted, every publish then failed and the engine's
    loop exited, so no abort rule was evaluated any more."""
    refused = steward.post("/api/v1/incidents/", {"name": "x", "body": "a\u0001b"}, format="json")
    assert refused.status_code == 400
    poisoned_incident()
    rollout = lifecycle.rollout_start(release=approved(), actor=team["erin"])
    feed("backend", "v2.1.0", "canary", at(0), 600, requests=1000, errors=100)
    clock.move_to(at(60))
    call_command("canary_tick")  # the error-rate rule starts pending
    clock.move_to(at(360))
    call_command("canary_tick", "--every", "0.01", "--loops", "2")
    rollout.refresh_from_db()
    assert rollout.state == "rolled_back"
    unresolved = json.loads((snapshot / "api/v2/incidents/unresolved.json").read_bytes())
    names = {i["name"] for i in unresolved["incidents"]}
    assert names == {"Slow\x01 logins", "Degraded service: backend release rolled back"}
    assert "rolled back" in (snapshot / "feed.atom").read_text()


def test_a_job_failing_on_every_loop_is_alerted_once_and_the_loop_goes_on(
    settings: Any,
) -> None:
    from rollouts.management.commands.canary_tick import Jobs, run_loop

    settings.ALERT_EMAILS = ["oncall@example.com"]
    calls = {"broken": 0, "fine": 0}
    failing = {"now": True}

    def broken() -> None:
        calls["broken"] += 1
        if failing["now"]:
            raise RuntimeError("disk full")

    def fine() -> None:
        calls["fine"] += 1

    jobs = Jobs([("broken", broken), ("fine", fine)])
    run_loop(jobs, every=0.001, loops=4)
    assert calls == {"broken": 4, "fine": 4}
    assert [m.subject for m in mail.outbox] == ["[warning] canary_tick: broken is failing"]
    assert "RuntimeError: disk full" in mail.outbox[0].body
    failing["now"] = False
    run_loop(jobs, every=0.001, loops=2)  # recovers: no alert
    failing["now"] = True
    run_loop(jobs, every=0.001, loops=2)  # fails again: alerted again, once
    assert len(mail.outbox) == 2 and calls["fine"] == 8


def test_a_failing_job_that_runs_every_few_loops_is_not_realerted_in_between(
    settings: Any,
) -> None:
    from rollouts.management.commands.canary_tick import Every, Jobs, run_loop

    settings.ALERT_EMAILS = ["oncall@example.com"]
    runs = []

    def publish_fails() -> None:
        runs.append(1)
        raise OSError("read-only file system")

    run_loop(Jobs([("publish_status", Every(0.02, publish_fails))]), every=0.01, loops=8)
    assert len(runs) >= 2
    assert len(mail.outbox) == 1
