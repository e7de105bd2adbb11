"""A visitor opens /status/ (no JavaScript) and sees the incident a rollback opened."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from django.core import mail

from comms.snapshot import publish
from governance.models import Release
from rollouts import services
from tests.e2e.conftest import screenshot
from tests.rollouts.conftest import approved  # noqa: F401  (fixture)


def test_a_visitor_sees_the_incident_a_rollback_opened(
    browser: Any,
    live_server: Any,
    approved: Callable[..., Release],  # noqa: F811
    team: dict[str, Any],
) -> None:
    rollout = services.rollout_start(release=approved(), actor=team["erin"])
    services.rollout_abort(rollout=rollout, actor=team["oscar"], reason="errors up")
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
    found = re.search(
        r"http://127\.0\.0\.1:8000(/status/subscriptions/confirm/\S+/)", mail.outbox[-1].body
    )
    assert found, mail.outbox[-1].body
    page.goto(found.group(1))
    assert page.inner_text("#message").startswith("Subscribed: visitor@example.com")
    context.close()
