"""Stewards in the browser admin: a council member approves a high-risk release with a
comment, finance signs business validation, an engineer sees no Approve action."""

from __future__ import annotations

from typing import Any

import pytest

from governance.members import member_set_roles
from governance.models import Release
from governance.services import release_create
from tests.e2e.conftest import screenshot
from tests.e2e.test_sign_in import sign_in

PASSWORD = "a-long-passphrase-42"


@pytest.fixture
def high_risk(transactional_db: None) -> Release:
    people = {"erin": ["engineer"], "carol": ["council"], "fiona": ["finance"]}
    users = {
        name: member_set_roles(
            username=name, roles=roles, email=f"{name}@example.com", password=PASSWORD
        ).user
        for name, roles in people.items()
    }
    return release_create(
        author=users["erin"],
        service="backend",
        version="v2.1.0",
        tier="medium",
        changed_paths=["src/backend/payments/stripe.py", "frontend/pages/index.tsx"],
        change_types=["bug_fix"],
        changelog="Retry gateway timeouts.",
        rollback_plan="Redeploy v2.0.3.",
    )


def open_release(page: Any, release: Release) -> None:
    page.goto("/admin/governance/release/")
    page.click(f"text={release}")
    page.wait_for_selector("#gate-state")


def test_council_approves_finance_signs_engineer_cannot_approve(
    page: Any, high_risk: Release
) -> None:
    sign_in(page, "carol", PASSWORD)
    page.wait_for_url("**/admin/")
    page.goto("/admin/governance/release/")
    assert page.locator("select[name=action] option[value=approve_selected]").count() == 1
    open_release(page, high_risk)
    assert "Council approval: 0 of 2" in page.inner_text("#blocking")
    page.fill("#vote-comment", "PCI evidence reviewed; fine to canary.")
    page.click("#approve-button")
    page.wait_for_selector("text=You approved backend v2.1.0")
    row = page.locator("#votes tr[data-voter=carol]")
    assert row.get_attribute("data-decision") == "approve"
    assert "PCI evidence reviewed" in row.inner_text()
    assert "Council approval: 1 of 2" in page.inner_text("#blocking")
    screenshot(page, "release-approved-by-council")
    page.goto("/accounts/logout/")
    page.click("button[type=submit]")

    sign_in(page, "fiona@example.com", PASSWORD)
    page.wait_for_url("**/admin/")
    open_release(page, high_risk)
    keys = page.locator("#checklist tr[data-key]").evaluate_all(
        "rows => rows.map(r => r.dataset.key)"
    )
    assert keys == ["business_validation"]
    assert page.locator("#approve-button").count() == 0
    page.select_option("#sign-key", "business_validation")
    page.fill("#sign-evidence", "https://finance.example.com/reviews/2.1.0")
    page.fill("#sign-note", "Margin impact within budget.")
    page.click("#sign-button")
    page.wait_for_selector("text=Business validation (finance): passed.")
    row = page.locator("#checklist tr[data-key=business_validation]")
    assert row.get_attribute("data-status") == "passed"
    assert row.get_attribute("data-signed-by") == "fiona"
    screenshot(page, "release-signed-by-finance")
    page.goto("/accounts/logout/")
    page.click("button[type=submit]")

    sign_in(page, "erin", PASSWORD)
    page.wait_for_url("**/admin/")
    page.goto("/admin/governance/release/")
    assert page.locator("option[value=approve_selected]").count() == 0
    open_release(page, high_risk)
    assert page.locator("#approve-button").count() == 0
    assert page.locator("#vote-form").count() == 0
    screenshot(page, "release-seen-by-engineer")

    item = high_risk.items.get(key="business_validation")
    assert (item.status, item.signed_by_name) == ("passed", "fiona")
    assert high_risk.votes.get().comment == "PCI evidence reviewed; fine to canary."
