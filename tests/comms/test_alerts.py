"""Alert channels post real HTTP to a local receiver; the payloads are what Slack and
PagerDuty Events v2 expect."""

from __future__ import annotations

import json
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.core import mail

from comms.models import Notification
from governance.models import Release
from rollouts import engine, followups, lifecycle
from tests.rollouts.conftest import T0, at, feed

pytestmark = pytest.mark.django_db


class _Vendor(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.calls.append((self.path, body))  # type: ignore[attr-defined]
        if self.path == "/v2/enqueue":
            status = self.server.pagerduty_status  # type: ignore[attr-defined]
            reply = {
                "status": "success",
                "message": "Event processed",
                "dedup_key": body.get("dedup_key") or "k",
            }
        else:
            status, reply = 200, None
        self.send_response(status)
        self.end_headers()
        self.wfile.write(json.dumps(reply).encode() if reply else b"ok")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def vendor(
    settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ThreadingHTTPServer]:
    """A local HTTPS receiver (PagerDuty's client accepts https:// only) with a throwaway
    self-signed certificate that the test trusts."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Vendor)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    server.calls, server.pagerduty_status = [], 202  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"https://127.0.0.1:{server.server_address[1]}"
    settings.SLACK_WEBHOOK_URL = f"{base}/slack"
    settings.PAGERDUTY_ROUTING_KEY = "routing-key-1"
    settings.PAGERDUTY_EVENTS_URL = base
    settings.ALERT_EMAILS = ["oncall@codexdominion.app"]
    yield server
    server.shutdown()
    server.server_close()


def calls(vendor: ThreadingHTTPServer, path: str) -> list[dict[str, Any]]:
    return [body for p, body in vendor.calls if p == path]  # type: ignore[attr-defined]


def test_a_rollback_notifies_on_call_on_slack_pagerduty_and_email(
    vendor: ThreadingHTTPServer, approved: Callable[..., Release], team: dict[str, Any]
) -> None:
    rollout = lifecycle.rollout_start(release=approved(), actor=team["erin"])
    lifecycle.rollout_abort(rollout=rollout, actor=team["oscar"], reason="High error rate")
    engine.rollback_continue(rollout.pk)
    step = rollout.rollback.steps.get(name="notify_oncall")
    assert step.status == "ok"
    assert step.detail == "slack sent, pagerduty sent, email sent"
    [slack] = calls(vendor, "/slack")
    assert slack["channel"] == "#codex-alerts"
    assert "Rollback of backend v2.1.0: High error rate" in slack["text"]
    [page] = calls(vendor, "/v2/enqueue")
    assert page["routing_key"] == "routing-key-1" and page["event_action"] == "trigger"
    assert page["dedup_key"] == f"rollout-{rollout.pk}"
    assert page["payload"]["severity"] == "critical"
    assert page["payload"]["source"] == "canary-portal/backend"
    assert page["payload"]["summary"].startswith("Rollback of backend v2.1.0")
    assert page["payload"]["custom_details"]["trigger"] == "aborted by oscar"
    assert mail.outbox[0].to == ["oncall@codexdominion.app"]


def test_a_failing_channel_fails_the_step_but_not_the_others(
    vendor: ThreadingHTTPServer, approved: Callable[..., Release], team: dict[str, Any]
) -> None:
    vendor.pagerduty_status = 400  # an event PagerDuty rejects  # type: ignore[attr-defined]
    rollout = lifecycle.rollout_start(release=approved(), actor=team["erin"])
    lifecycle.rollout_abort(rollout=rollout, actor=team["oscar"], reason="bad")
    engine.rollback_continue(rollout.pk)
    step = rollout.rollback.steps.get(name="notify_oncall")
    assert step.status == "failed" and "pagerduty failed" in step.detail
    assert len(calls(vendor, "/slack")) == 1 and len(mail.outbox) == 1
    assert rollout.rollback.steps.get(name="incident_report").status == "ok"


def test_a_business_trigger_alerts_the_stakeholders_without_paging(
    vendor: ThreadingHTTPServer,
    approved: Callable[..., Release],
    team: dict[str, Any],
    django_capture_on_commit_callbacks: Any,
) -> None:
    with time_machine.travel(T0, tick=False) as clock:
        rollout = lifecycle.rollout_start(release=approved(), actor=team["erin"])
        feed("backend", "v2.1.0", "canary", at(0), 3600, complaints=11)
        clock.move_to(at(60))
        with django_capture_on_commit_callbacks(execute=True):
            engine.tick()
    rollout.refresh_from_db()
    assert rollout.state == "paused"
    # Complaints belong to the council and the stewards (admin → Alert routes), not on-call.
    assert calls(vendor, "/slack") == [] and calls(vendor, "/v2/enqueue") == []
    notes = Notification.objects.order_by("user__username")
    assert [n.user.username for n in notes] == ["carol", "dave", "sam"]
    assert notes[0].title.startswith(
        "[warning] backend v2.1.0 paused at 1% (rule): Rule complaints"
    )
    assert "@customer-success" in notes[0].body


def test_overdue_follow_ups_are_reminded_on_the_channels(
    vendor: ThreadingHTTPServer, approved: Callable[..., Release], team: dict[str, Any]
) -> None:
    with time_machine.travel(T0, tick=False) as clock:
        rollout = lifecycle.rollout_start(release=approved(), actor=team["erin"])
        lifecycle.rollout_abort(rollout=rollout, actor=team["oscar"], reason="bad")
        engine.rollback_continue(rollout.pk)
        vendor.calls.clear()  # type: ignore[attr-defined]
        clock.move_to(at(86_400))
        assert followups.actions_remind_overdue() == 5
    texts = [body["text"] for body in calls(vendor, "/slack")]
    assert len(texts) == 5 and any("Root cause analysis" in text for text in texts)
