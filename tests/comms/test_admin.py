"""Stewards in the admin: composing a notice (placeholders checked and named), template
channels checked, incident updates that set the incident's status and reach subscribers."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail
from django.test import Client

from comms.models import Component, Incident, IncidentUpdate, MessageTemplate, Notice
from comms.notices import notice_create
from comms.services import incident_open_for_rollout
from governance.models import AuditEvent
from tests.conftest import logged_in

pytestmark = pytest.mark.django_db


def compose(client: Client, template: str, variables: str, **fields: str) -> Any:
    chosen = MessageTemplate.objects.get(key=template)
    return client.post(
        "/admin/comms/notice/add/",
        {"template": chosen.pk, "variables_text": variables, **fields},
    )


def test_a_steward_composes_a_notice_and_bad_placeholders_are_named(
    team: dict[str, Any],
) -> None:
    sam = logged_in(team["sam"])
    form = sam.get("/admin/comms/notice/add/").content.decode()
    assert "incident_notification: [SERVICES] [STATUS]" in form  # the help lists them

    refused = compose(sam, "incident_notification", "STATUS: Investigating\nCOLOUR: red")
    assert refused.status_code == 200
    text = refused.content.decode()
    assert "Missing placeholder(s): [SERVICES]" in text and "[COLOUR]" in text
    assert "Line 1: write NAME: value." in compose(sam, "feature_rollout", "oops").content.decode()
    assert not Notice.objects.exists()

    done = compose(
        sam,
        "incident_notification",
        "STATUS: Investigating\n[SERVICES]: Backend API <beta>\n",
    )
    assert done.status_code == 302, done.content.decode()
    notice = Notice.objects.get()
    assert notice.created_by == "sam" and notice.state == "pending"
    assert "Affected services: Backend API <beta>" in notice.body
    assert AuditEvent.objects.filter(action="notice.created").count() == 1

    # What was said stays as it was: the change page is read-only, a POST changes nothing.
    page = sam.get(f"/admin/comms/notice/{notice.pk}/change/").content.decode()
    assert 'name="_save"' not in page and "Backend API &lt;beta&gt;" in page
    sam.post(f"/admin/comms/notice/{notice.pk}/change/", {"subject": "edited"})
    notice.refresh_from_db()
    assert notice.subject == "Service Degradation Detected"


def test_only_operators_compose_and_the_council_may_read(team: dict[str, Any]) -> None:
    assert logged_in(team["erin"]).get("/admin/comms/notice/add/").status_code == 403
    assert logged_in(team["carol"]).get("/admin/comms/notice/add/").status_code == 403
    assert logged_in(team["carol"]).get("/admin/comms/notice/").status_code == 200
    assert logged_in(team["oscar"]).get("/admin/comms/notice/add/").status_code == 200
    assert compose(logged_in(team["erin"]), "feature_rollout", "").status_code == 403
    assert not Notice.objects.exists()


def test_template_channels_must_be_ones_we_can_send_on(team: dict[str, Any]) -> None:
    template = MessageTemplate.objects.get(key="feature_rollout")
    fields = {
        "key": template.key,
        "name": template.name,
        "subject": template.subject,
        "body": template.body,
        "lead_time_s": template.lead_time_s,
    }
    url = f"/admin/comms/messagetemplate/{template.pk}/change/"
    sam = logged_in(team["sam"])
    refused = sam.post(url, {**fields, "channels": '["in_app", "fax", "webhook:"]'})
    assert "Unknown channel(s): fax, webhook:." in refused.content.decode()
    assert sam.post(url, {**fields, "channels": '"email"'}).status_code == 200
    template.refresh_from_db()
    assert template.channels == ["in_app", "webhook:blog"]
    assert sam.post(url, {**fields, "channels": '["email", "webhook:blog"]'}).status_code == 302
    template.refresh_from_db()
    assert template.channels == ["email", "webhook:blog"]
    assert template.history.first().history_user == team["sam"]  # type: ignore[union-attr]


def test_a_stewards_update_resolves_the_incident_and_mails_subscribers(
    team: dict[str, Any],
    approved: Any,
    eager: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from comms.models import Subscriber
    from portal import clock
    from rollouts import lifecycle

    Subscriber.objects.create(email="visitor@example.com", confirmed_at=clock.now())
    with django_capture_on_commit_callbacks(execute=True):
        rollout = lifecycle.rollout_start(release=approved(), actor=team["erin"])
    incident = incident_open_for_rollout(rollout, "errors up")
    assert Component.objects.get(name="Backend API").status == "degraded_performance"
    mail.outbox.clear()

    prefix = "updates"
    form = {
        "name": incident.name,
        "status": incident.status,
        "impact": incident.impact,
        "components": [c.pk for c in incident.components.all()],
        "started_at_0": "2026-11-26",
        "started_at_1": "10:00:00",
        f"{prefix}-TOTAL_FORMS": "2",
        f"{prefix}-INITIAL_FORMS": "1",
        f"{prefix}-0-id": incident.updates.get().pk,
        f"{prefix}-0-incident": incident.pk,
        f"{prefix}-0-status": "identified",
        f"{prefix}-0-body": incident.updates.get().body,
        f"{prefix}-0-display_at_0": "2026-11-26",
        f"{prefix}-0-display_at_1": "10:00:00",
        f"{prefix}-1-incident": incident.pk,
        f"{prefix}-1-status": "resolved",
        f"{prefix}-1-body": "Fixed for everyone.",
        f"{prefix}-1-display_at_0": "2026-11-26",
        f"{prefix}-1-display_at_1": "11:00:00",
    }
    with django_capture_on_commit_callbacks(execute=True):
        saved = logged_in(team["sam"]).post(f"/admin/comms/incident/{incident.pk}/change/", form)
    assert saved.status_code == 302, saved.content.decode()
    incident.refresh_from_db()
    assert (incident.status, incident.updates.count()) == ("resolved", 2)
    assert incident.resolved_at is not None
    assert Component.objects.get(name="Backend API").status == "operational"
    newest = IncidentUpdate.objects.get(body="Fixed for everyone.")
    assert newest.affected_components[0]["new_status"] == "operational"
    assert [m.subject.split("]")[0] for m in mail.outbox] == ["[resolved"]
    assert Incident.objects.count() == 1
    edited = AuditEvent.objects.filter(action="incident.updated").get()
    assert (edited.actor, edited.object_id) == ("sam", str(incident.pk))
    assert newest.code in edited.data_json


def test_a_notice_composed_in_the_admin_is_the_one_the_api_would_make(
    team: dict[str, Any],
) -> None:
    compose(logged_in(team["sam"]), "feature_rollout", "FEATURE_NAME: Dark\nBLOG_POST_URL: u")
    via_api = notice_create(
        template="feature_rollout",
        actor=team["sam"],
        variables={"FEATURE_NAME": "Dark", "BLOG_POST_URL": "u"},
    )
    composed = Notice.objects.exclude(pk=via_api.pk).get()
    assert (composed.subject, composed.body, composed.channels) == (
        via_api.subject,
        via_api.body,
        via_api.channels,
    )


def test_a_status_edited_in_the_component_list_is_audited_and_republished(
    team: dict[str, Any],
    eager: None,
    settings: Any,
    tmp_path: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.STATUS_SNAPSHOT_DIR = str(tmp_path)
    components = list(Component.objects.all())
    database = next(c for c in components if c.name == "Database")
    form = {
        "form-TOTAL_FORMS": str(len(components)),
        "form-INITIAL_FORMS": str(len(components)),
        "_save": "Save",
    }
    for n, component in enumerate(components):
        form[f"form-{n}-id"] = str(component.pk)
        form[f"form-{n}-status"] = "major_outage" if component == database else component.status
    with django_capture_on_commit_callbacks(execute=True):
        saved = logged_in(team["sam"]).post("/admin/comms/component/", form)
    assert saved.status_code == 302, saved.content.decode()
    assert Component.objects.get(pk=database.pk).status == "major_outage"
    event = AuditEvent.objects.get(action="component.status_changed")
    assert (event.actor, event.object_id) == ("sam", str(database.pk))
    assert '"new_status":"major_outage"' in event.data_json.replace(" ", "")
    summary = (tmp_path / "api" / "v2" / "status.json").read_text()
    assert '"indicator":"major"' in summary
