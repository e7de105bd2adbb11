"""A visitor opens /status/ (no JavaScript), sees the incident a rollback opened,
subscribes, and follows the link in the confirmation email (the file backend's file)."""

from __future__ import annotations

import email
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from comms.models import Subscriber
from comms.snapshot import publish
from governance.models import Release
from rollouts import lifecycle
from tests.e2e.conftest import screenshot
from tests.rollouts.conftest import approved  # noqa: F401  (fixture)


def test_a_visitor_sees_a_rollbacks_incident_subscribes_and_confirms_by_email(
    browser: Any,
    live_server: Any,
    approved: Callable[..., Release],  # noqa: F811
    team: dict[str, Any],
    settings: Any,
    tmp_path: Path,
) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path / "mail")
    settings.STATUS_PAGE_URL = live_server.url
    rollout = lifecycle.rollout_start(release=approved(), actor=team["erin"])
    lifecycle.rollout_abort(rollout=rollout, actor=team["oscar"], reason="errors up")
    publish()
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    page = context.new_page()
    page.goto("/status/")
    assert page.inner_text("[role=status]") == "Partially Degraded Service"
    assert "rolled back" in page.inner_text("section[aria-labelledby=open-incidents]")
    assert "Degraded performance" in page.inner_text("section[aria-labelledby=components]")
    assert page.locator("main").count() == 1 and page.locator("header").count() == 1
    screenshot(page, "status-page-incident")

    page.fill("#subscribe-email", "visitor@example.com")
    page.click("section[aria-labelledby=subscribe] button[type=submit]")
    assert "Check your inbox" in page.inner_text("#message")
    [sent] = (tmp_path / "mail").iterdir()  # the file backend: one file per connection
    message = email.message_from_bytes(sent.read_bytes().split(b"\n" + b"-" * 79)[0])
    assert message["To"] == "visitor@example.com"
    body = message.get_payload(decode=True).decode()
    found = re.search(rf"{re.escape(live_server.url)}/status/subscriptions/confirm/\S+/", body)
    assert found, body
    page.goto(found.group(0))
    assert page.inner_text("#message").startswith("Subscribed: visitor@example.com")
    assert Subscriber.objects.get(email="visitor@example.com").confirmed_at is not None
    context.close()
