"""The stewards' admin shows what the API says, and lets each role do only its part."""

from __future__ import annotations

import re
from collections.abc import Callable
from html.parser import HTMLParser
from typing import Any

import pytest
from django.test import Client

from governance.models import Release
from governance.services import checklist_sign, vote_cast

pytestmark = pytest.mark.django_db


class Rows(HTMLParser):
    """Collects the data-* attributes of table rows on the release page."""

    def __init__(self) -> None:
        super().__init__()
        self.items: list[dict[str, str]] = []
        self.votes: list[dict[str, str]] = []
        self.blocking: list[str] = []
        self._in_blocking = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        data = {k: v or "" for k, v in attrs}
        if tag == "tr" and "data-key" in data:
            self.items.append(data)
        if tag == "tr" and "data-voter" in data:
            self.votes.append(data)
        if tag == "ul" and data.get("id") == "blocking":
            self._in_blocking = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "ul":
            self._in_blocking = False

    def handle_data(self, text: str) -> None:
        if self._in_blocking and text.strip():
            self.blocking.append(text.strip())


def page(client: Client, release: Release) -> tuple[str, Rows]:
    response = client.get(f"/admin/governance/release/{release.pk}/change/")
    assert response.status_code == 200
    html = response.content.decode()
    rows = Rows()
    rows.feed(html)
    return html, rows


def logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def payments(new_release: Callable[..., Release], team: dict[str, Any]) -> Release:
    release = new_release(changed_paths=["src/backend/payments/stripe.py"])
    checklist_sign(release=release, key="ci_tests", user=team["erin"], status="passed")
    checklist_sign(release=release, key="security_scan", user=team["sid"], status="failed")
    vote_cast(release=release, voter=team["carol"], decision="approve", comment="fine")
    return release


def test_the_release_page_shows_what_the_api_returns(
    payments: Release,
    team: dict[str, Any],
    token_for: Callable[..., str],
    api: Callable[..., Any],
) -> None:
    gate = api(token_for(team["sam"], "read")).get(f"/api/v1/releases/{payments.pk}/gate/").json()
    html, rows = page(logged_in(team["sam"]), payments)
    assert rows.blocking == gate["blocking"]
    assert [(r["data-key"], r["data-status"], r["data-signed-by"]) for r in rows.items] == [
        (i["key"], i["status"], i["signed_by"] or "") for i in gate["checklist"]
    ]
    assert [(r["data-voter"], r["data-decision"], r["data-stale"]) for r in rows.votes] == [
        (v["voter"], v["decision"], str(v["stale"]).lower()) for v in gate["approvals"]["votes"]
    ]
    assert "src/backend/payments/**" in html
    assert "1 of 2 approvals" in html


def test_council_approves_from_the_release_page(payments: Release, team: dict[str, Any]) -> None:
    client = logged_in(team["dave"])
    html, _ = page(client, payments)
    assert 'id="approve-button"' in html
    response = client.post(
        f"/admin/governance/release/{payments.pk}/vote/",
        {"decision": "approve", "comment": "PCI evidence reviewed"},
    )
    assert response.status_code == 302
    vote = payments.votes.get(voter=team["dave"])
    assert (vote.decision, vote.comment) == ("approve", "PCI evidence reviewed")


def test_a_vote_without_a_comment_is_refused(payments: Release, team: dict[str, Any]) -> None:
    logged_in(team["dave"]).post(
        f"/admin/governance/release/{payments.pk}/vote/", {"decision": "approve", "comment": "  "}
    )
    assert not payments.votes.filter(voter=team["dave"]).exists()


@pytest.mark.parametrize("name", ["erin", "sam", "fiona", "oscar"])
def test_non_council_members_see_no_approve_action_and_cannot_post_one(
    payments: Release, team: dict[str, Any], name: str
) -> None:
    client = logged_in(team[name])
    html, _ = page(client, payments)
    assert 'id="approve-button"' not in html
    client.post(
        f"/admin/governance/release/{payments.pk}/vote/",
        {"decision": "approve", "comment": "sneaky"},
    )
    assert not payments.votes.filter(voter=team[name]).exists()


def test_the_author_sees_no_approve_action_even_as_council(
    new_release: Callable[..., Release], team: dict[str, Any], make_member: Callable[..., Any]
) -> None:
    from governance.services import release_create

    chief = make_member("chief", "council", "engineer")
    release = release_create(author=chief, service="api", version="v1", tier="high")
    client = logged_in(chief)
    html, _ = page(client, release)
    assert 'id="approve-button"' not in html
    client.post(
        f"/admin/governance/release/{release.pk}/vote/", {"decision": "approve", "comment": "mine"}
    )
    assert not release.votes.exists()


def test_finance_sees_and_signs_only_its_items(payments: Release, team: dict[str, Any]) -> None:
    client = logged_in(team["fiona"])
    _, rows = page(client, payments)
    assert [r["data-key"] for r in rows.items] == ["business_validation"]
    html = client.get(f"/admin/governance/release/{payments.pk}/change/").content.decode()
    options = re.findall(
        r'<option value="([a-z_]+)">', html.split('id="sign-key"')[1].split("</select>")[0]
    )
    assert options == ["business_validation"]
    client.post(
        f"/admin/governance/release/{payments.pk}/sign/",
        {
            "key": "business_validation",
            "status": "passed",
            "evidence_url": "https://finance.example.com/7",
            "note": "ok",
        },
    )
    item = payments.items.get(key="business_validation")
    assert (item.status, item.signed_by_name) == ("passed", "fiona")
    # and cannot sign what is not theirs, even by posting directly
    client.post(
        f"/admin/governance/release/{payments.pk}/sign/", {"key": "ci_tests", "status": "failed"}
    )
    assert payments.items.get(key="ci_tests").status == "passed"


def test_finance_lists_only_releases_needing_its_sign_off(
    payments: Release, new_release: Callable[..., Release], team: dict[str, Any]
) -> None:
    plain = new_release(version="v2.2.0")
    html = logged_in(team["fiona"]).get("/admin/governance/release/").content.decode()
    assert f"/admin/governance/release/{payments.pk}/change/" in html
    assert f"/admin/governance/release/{plain.pk}/change/" not in html
    everything = logged_in(team["sam"]).get("/admin/governance/release/").content.decode()
    assert f"/admin/governance/release/{plain.pk}/change/" in everything


def test_the_list_shows_badges_and_filters(payments: Release, team: dict[str, Any]) -> None:
    client = logged_in(team["sam"])
    html = client.get("/admin/governance/release/?risk=critical").content.decode()
    assert "badge-crit" in html and "blocked (" in html
    assert str(payments) in html
    assert str(payments) not in client.get("/admin/governance/release/?risk=low").content.decode()
    assert str(payments) in client.get("/admin/governance/release/?gate=blocked").content.decode()


def test_engineers_create_releases_through_the_admin(team: dict[str, Any]) -> None:
    client = logged_in(team["erin"])
    response = client.post(
        "/admin/governance/release/add/",
        {
            "service": "backend",
            "version": "v3.0.0",
            "declared_tier": "low",
            "paths": "src/backend/auth/login.py\n./docs/x.md\n",
            "types": ["feature"],
            "changelog": "login",
            "rollback_plan": "redeploy",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    release = Release.objects.get(version="v3.0.0")
    assert release.changed_paths == ["src/backend/auth/login.py", "docs/x.md"]
    assert (release.tier, release.created_by_name) == ("high", "erin")
    assert release.items.filter(key="security_audit", required=True).exists()
    assert release.history.count() == 1


def test_non_engineers_cannot_add_releases(team: dict[str, Any]) -> None:
    assert logged_in(team["carol"]).get("/admin/governance/release/add/").status_code == 403


def test_history_shows_who_changed_what(payments: Release, team: dict[str, Any]) -> None:
    response = logged_in(team["sam"]).get(f"/admin/governance/release/{payments.pk}/history/")
    assert response.status_code == 200
    assert "erin" in response.content.decode()


def test_stewards_edit_risk_rules_and_open_releases_follow(
    new_release: Callable[..., Release], team: dict[str, Any]
) -> None:
    release = new_release(changed_paths=["frontend/pages/index.tsx"])
    client = logged_in(team["sam"])
    response = client.post(
        "/admin/governance/riskrule/add/",
        {
            "pattern": "frontend/pages/**",
            "risk": "critical",
            "approvals_required": "2",
            "extra_checks": '["privacy_review"]',
            "description": "pages",
            "is_active": "on",
        },
    )
    assert response.status_code == 302
    release.refresh_from_db()
    assert (release.tier, release.risk) == ("high", "critical")
    bad = client.post(
        "/admin/governance/riskrule/add/",
        {
            "pattern": "x/**",
            "risk": "critical",
            "approvals_required": "2",
            "extra_checks": '["nope"]',
            "is_active": "on",
        },
    )
    assert bad.status_code == 200 and "Unknown checklist key" in bad.content.decode()
    assert logged_in(team["erin"]).get("/admin/governance/riskrule/add/").status_code == 403


def test_council_approves_several_releases_with_one_comment(
    payments: Release, new_release: Callable[..., Release], team: dict[str, Any]
) -> None:
    other = new_release(version="v2.2.0", tier="high")
    client = logged_in(team["dave"])
    selected = {"action": "approve_selected", "_selected_action": [payments.pk, other.pk]}
    asks = client.post("/admin/governance/release/", selected)
    assert asks.status_code == 200 and 'id="action-comment"' in asks.content.decode()
    assert not payments.votes.filter(voter=team["dave"]).exists()
    client.post("/admin/governance/release/", {**selected, "confirm": "yes", "comment": ""})
    assert not payments.votes.filter(voter=team["dave"]).exists()
    client.post("/admin/governance/release/", {**selected, "confirm": "yes", "comment": "ok"})
    assert payments.votes.get(voter=team["dave"]).comment == "ok"
    assert other.votes.get(voter=team["dave"]).decision == "approve"


def test_the_vote_actions_are_offered_to_council_only(
    payments: Release, team: dict[str, Any]
) -> None:
    assert (
        "approve_selected"
        in logged_in(team["carol"]).get("/admin/governance/release/").content.decode()
    )
    for name in ("erin", "sam", "fiona"):
        html = logged_in(team[name]).get("/admin/governance/release/").content.decode()
        assert "approve_selected" not in html, name
        logged_in(team[name]).post(
            "/admin/governance/release/",
            {
                "action": "approve_selected",
                "_selected_action": [payments.pk],
                "confirm": "yes",
                "comment": "x",
            },
        )
        assert not payments.votes.filter(voter=team[name]).exists()
