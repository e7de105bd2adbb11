"""Customer notices: placeholders, escaping, exactly-once sending, retries; notifications."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.db import connection

from comms.models import Component, Incident, IncidentUpdate, Notice, Notification
from comms.notices import CLAIM_LEASE, notice_create, notice_send
from comms.tasks import sweep_notices
from comms.templating import render
from governance.models import AuditEvent
from portal.errors import Invalid
from tests.conftest import SmtpReceiver
from tests.servers import closed_port

pytestmark = pytest.mark.django_db
INCIDENT_VARS = {"STATUS": "Investigating", "SERVICES": "Backend API"}


def test_missing_and_unknown_placeholders_are_named(team: dict[str, Any]) -> None:
    with pytest.raises(Invalid) as refused:
        notice_create(
            template="incident_notification",
            actor=team["sam"],
            variables={"STATUS": "x", "COLOUR": "red"},
        )
    assert "[SERVICES]" in refused.value.detail and "[COLOUR]" in refused.value.detail
    assert not Notice.objects.exists()


def test_values_are_escaped_for_html_channels_only() -> None:
    values = {"FEATURE_NAME": "<script>alert(1)</script>"}
    assert render("Try [FEATURE_NAME]", values) == "Try <script>alert(1)</script>"
    assert render("Try [FEATURE_NAME]", values, html=True) == (
        "Try &lt;script&gt;alert(1)&lt;/script&gt;"
    )
    assert render("[NOT A PLACEHOLDER] [lower]", {}) == "[NOT A PLACEHOLDER] [lower]"


def test_the_api_creates_a_rendered_notice(
    team: dict[str, Any], token_for: Callable[..., str], api: Callable[..., Any]
) -> None:
    client = api(token_for(team["sam"], "comms:write"))
    response = client.post(
        "/api/v1/notices/",
        {"template": "incident_notification", "variables": INCIDENT_VARS},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["subject"] == "Service Degradation Detected"
    assert "Current status: Investigating" in body["body"]
    assert "Affected services: Backend API" in body["body"]
    assert body["channels"] == ["status_page", "webhook:twitter", "email"]
    bad = client.post(
        "/api/v1/notices/", {"template": "feature_rollout", "variables": {}}, format="json"
    )
    assert bad.status_code == 400
    assert "[FEATURE_NAME]" in bad.json()["detail"] and "[BLOG_POST_URL]" in bad.json()["detail"]
    assert client.post("/api/v1/notices/", {"template": "nope"}, format="json").status_code == 400
    assert (
        client.post(
            "/api/v1/notices/",
            {"template": "feature_rollout", "release": 999, "variables": {}},
            format="json",
        ).status_code
        == 400
    )


def test_notices_need_comms_write_and_a_steward_or_ops(
    team: dict[str, Any], token_for: Callable[..., str], api: Callable[..., Any]
) -> None:
    body = {"template": "incident_notification", "variables": INCIDENT_VARS}
    assert api().post("/api/v1/notices/", body, format="json").status_code == 401
    assert (
        api(token_for(team["sam"], "read"))
        .post("/api/v1/notices/", body, format="json")
        .status_code
        == 403
    )
    assert (
        api(token_for(team["erin"], "comms:write"))
        .post("/api/v1/notices/", body, format="json")
        .status_code
        == 403
    )
    assert not Notice.objects.exists()


def test_sending_reaches_email_and_members_in_app(team: dict[str, Any], settings: Any) -> None:
    settings.CUSTOMER_NOTICE_EMAILS = ["customers@example.com"]
    notice = notice_create(
        template="scheduled_maintenance",
        actor=team["sam"],
        variables={"DATE": "2026-12-01", "TIME": "02:00", "TIMEZONE": "UTC"},
    )
    assert notice_send(notice.pk) == "sent"
    assert notice_send(notice.pk) != "sent"
    notice.refresh_from_db()
    assert notice.state == "sent" and notice.deliveries == {"email": "sent", "in_app": "sent"}
    assert len(mail.outbox) == 1 and "2026-12-01 02:00 UTC" in mail.outbox[0].body
    members = {name for name in team if name != "olivia"}
    assert {n.user.username for n in Notification.objects.all()} == members


@pytest.mark.django_db(transaction=True)
def test_two_workers_send_a_notice_once(team: dict[str, Any], settings: Any) -> None:
    settings.CUSTOMER_NOTICE_EMAILS = ["customers@example.com"]
    notice = notice_create(
        template="scheduled_maintenance",
        actor=team["sam"],
        variables={"DATE": "d", "TIME": "t", "TIMEZONE": "z"},
    )
    barrier, results = threading.Barrier(2), []

    def worker() -> None:
        barrier.wait()
        try:
            results.append(notice_send(notice.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["not due, or another worker has it", "sent"]
    assert len(mail.outbox) == 1
    assert Notification.objects.filter(user=team["erin"]).count() == 1


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.server.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))  # type: ignore[attr-defined]
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.bodies = []  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_a_failing_webhook_is_retried_without_resending_the_rest(
    team: dict[str, Any], settings: Any, receiver: ThreadingHTTPServer
) -> None:
    settings.NOTICE_WEBHOOKS = {"blog": f"http://127.0.0.1:{closed_port()}/hook"}
    notice = notice_create(
        template="feature_rollout",
        actor=team["sam"],
        variables={"FEATURE_NAME": "Dark mode", "BLOG_POST_URL": "https://blog.example.com/dark"},
    )
    with pytest.raises(RuntimeError, match="webhook:blog"):
        notice_send(notice.pk)
    notice.refresh_from_db()
    assert (notice.state, notice.claimed_at, notice.attempts) == ("pending", None, 1)
    assert notice.deliveries == {"in_app": "sent"}
    assert "ConnectError" in notice.last_error
    settings.NOTICE_WEBHOOKS = {"blog": f"http://127.0.0.1:{receiver.server_address[1]}/hook"}
    assert notice_send(notice.pk) == "sent"
    assert Notification.objects.filter(user=team["erin"]).count() == 1
    assert b"Dark mode" in receiver.bodies[0]  # type: ignore[attr-defined]


def test_members_read_their_own_notifications(
    team: dict[str, Any], token_for: Callable[..., str], api: Callable[..., Any]
) -> None:
    notice = notice_create(
        template="feature_rollout",
        actor=team["sam"],
        variables={"FEATURE_NAME": "X", "BLOG_POST_URL": "u"},
    )
    notice_send(notice.pk)
    erin = api(token_for(team["erin"], "read"))
    listed = erin.get("/api/v1/notifications/").json()
    assert [n["title"] for n in listed] == ["New Feature Available"]
    assert listed[0]["unread"] is True
    theirs = Notification.objects.get(user=team["sam"])
    assert erin.post(f"/api/v1/notifications/{theirs.pk}/read/").status_code == 404
    assert erin.post(f"/api/v1/notifications/{listed[0]['id']}/read/").json()["unread"] is False
    assert erin.get("/api/v1/notifications/?unread=1").json() == []
    assert api().get("/api/v1/notifications/").status_code == 401


def test_the_admin_shows_an_unread_badge_and_the_list_marks_read(team: dict[str, Any]) -> None:
    from django.test import Client

    notice = notice_create(
        template="feature_rollout",
        actor=team["sam"],
        variables={"FEATURE_NAME": "Dark <b>mode</b>", "BLOG_POST_URL": "u"},
    )
    notice_send(notice.pk)
    client = Client()
    client.force_login(team["erin"])
    assert "(1 unread)" in client.get("/admin/").content.decode()
    page = client.get("/notifications/").content.decode()
    assert "New Feature Available" in page and 'data-unread="true"' in page
    assert "Dark &lt;b&gt;mode&lt;/b&gt;" in page  # escaped in HTML
    assert "unread)" not in client.get("/admin/").content.decode()


def test_a_status_page_notice_opens_then_updates_the_releases_incident(
    team: dict[str, Any], new_release: Callable[..., Any]
) -> None:
    release = new_release()
    opened = notice_create(
        template="incident_notification",
        actor=team["sam"],
        release=release,
        variables=INCIDENT_VARS,
    )
    assert notice_send(opened.pk) == "sent"
    incident = Incident.objects.get()
    assert (incident.name, incident.status, incident.impact) == (
        "Service Degradation Detected",
        "investigating",
        "minor",
    )
    assert [c.name for c in incident.components.all()] == ["Backend API"]
    assert Component.objects.get(name="Backend API").status == "degraded_performance"
    update = IncidentUpdate.objects.get()
    assert update.notice == opened and "Current status: Investigating" in update.body
    assert update.affected_components[0]["new_status"] == "degraded_performance"
    opened.refresh_from_db()
    assert opened.deliveries["status_page"] == f"sent: incident update {update.code}"

    # A worker that died between posting and recording: after the claim's lease another
    # worker takes the notice over and finds the update already written.
    died_at = opened.claimed_at
    Notice.objects.filter(pk=opened.pk).update(state="pending", deliveries={})
    with time_machine.travel(died_at + CLAIM_LEASE - timedelta(seconds=1), tick=False):
        assert notice_send(opened.pk) == "not due, or another worker has it"
    with time_machine.travel(died_at + CLAIM_LEASE, tick=False):
        assert sweep_notices() == 0
    with time_machine.travel(died_at + CLAIM_LEASE + timedelta(seconds=1), tick=False):
        assert sweep_notices() == 1
    assert IncidentUpdate.objects.count() == 1

    closed = notice_create(
        template="incident_notification",
        actor=team["sam"],
        release=release,
        variables={"STATUS": "Resolved", "SERVICES": "Backend API"},
    )
    assert notice_send(closed.pk) == "sent"
    incident.refresh_from_db()
    assert (incident.status, incident.updates.count()) == ("resolved", 2)
    assert incident.resolved_at is not None
    assert Component.objects.get(name="Backend API").status == "operational"
    assert Incident.objects.count() == 1
    posts = AuditEvent.objects.filter(action__startswith="incident.").order_by("seq")
    assert [(e.action, e.actor, json.loads(e.data_json)["notice"]) for e in posts] == [
        ("incident.opened", "system", opened.pk),
        ("incident.updated", "system", closed.pk),
    ]


def test_a_status_page_notice_names_components_by_name_or_service(team: dict[str, Any]) -> None:
    notice = notice_create(
        template="incident_notification",
        actor=team["sam"],
        variables={"STATUS": "Identified", "SERVICES": "Payment Processing, auth"},
    )
    notice_send(notice.pk)
    incident = Incident.objects.get()
    assert incident.status == "identified"
    assert sorted(c.name for c in incident.components.all()) == [
        "Authentication",
        "Payment Processing",
    ]


@pytest.mark.django_db(transaction=True)
def test_a_worker_retries_a_refusing_mail_server_with_backoff(
    team: dict[str, Any], celery_worker: subprocess.Popen, smtp_receiver: SmtpReceiver
) -> None:
    """Through the real worker: the relay says `451` twice, the task backs off and retries,
    the third attempt delivers; members get their in-app notice once, not three times."""
    smtp_receiver.refusals, smtp_receiver.refused = 2, 0
    before = len(smtp_receiver.messages)
    notice = notice_create(
        template="scheduled_maintenance",
        actor=team["sam"],
        variables={"DATE": "2026-12-01", "TIME": "02:00", "TIMEZONE": "UTC"},
    )
    deadline = time.monotonic() + 60
    while Notice.objects.get(pk=notice.pk).state == "pending":
        assert time.monotonic() < deadline, Notice.objects.get(pk=notice.pk).last_error
        time.sleep(0.2)
    notice.refresh_from_db()
    assert (notice.state, notice.attempts, notice.last_error) == ("sent", 3, "")
    assert notice.deliveries == {"email": "sent", "in_app": "sent"}
    assert smtp_receiver.refused == 2
    [message] = smtp_receiver.messages[before:]
    assert message.rcpt_tos == ["customers@example.com"]
    assert b"2026-12-01 02:00 UTC" in message.content
    assert Notification.objects.filter(user=team["erin"]).count() == 1
