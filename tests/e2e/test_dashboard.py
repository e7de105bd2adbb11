"""The release dashboard in a browser: charts rendered on the server, rule timers shown."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import time_machine
from django.core.management import call_command

from governance.members import member_set_roles
from portal import clock
from rollouts import engine
from rollouts.models import Rollout
from rollouts.simulator import simulate
from tests.e2e.conftest import screenshot
from tests.e2e.test_sign_in import sign_in


def test_a_steward_watches_the_dashboard(page: Any, transactional_db: None, settings: Any) -> None:
    settings.DEBUG = True
    now = clock.now()
    with time_machine.travel(now - timedelta(seconds=150), tick=False):
        call_command("seed_demo", "--rollouts")
    member_set_roles(username="sam", roles=["steward"], password="a-long-passphrase-42")
    rnd = random.Random(3)
    for seconds_ago in range(120, 0, -2):
        simulate(now=now - timedelta(seconds=seconds_ago), period_s=2, failing={"search"}, rnd=rnd)
    engine.tick()
    rollout = Rollout.objects.get(service="checkout")

    sign_in(page, "sam", "a-long-passphrase-42")
    page.wait_for_url("**/admin/")
    page.goto(f"/admin/rollouts/rollout/{rollout.pk}/change/")
    page.click("#dashboard-link")
    page.wait_for_selector("#rules")
    assert page.locator("svg.chart").count() == 5
    assert page.locator("svg.chart polyline").count() >= 4
    assert page.locator("#rules tr[data-rule=error_rate]").get_attribute("data-state") == "ok"
    assert "checkout" in page.inner_text("h1")
    screenshot(page, "rollout-dashboard")
