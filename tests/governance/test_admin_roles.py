"""The admin and the API share one role check, superusers included: a superuser with no
role reads everything and changes nothing; with a role, they do what the role allows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages

from comms.models import Component, Incident, Notice
from governance.models import ApiToken, Release, RiskRule
from governance.tokens import token_issue
from tests.conftest import logged_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def root(db: None) -> Any:
    return get_user_model().objects.create_superuser("root", "root@example.com", "pw-root-1")


@pytest.fixture
def release(new_release: Callable[..., Release]) -> Release:
    return new_release(tier="high")


def superuser(make_member: Callable[..., Any], name: str, role: str) -> Any:
    user = make_member(name, role)
    user.is_superuser = True
    user.save()
    return user


def said(response: Any) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


@pytest.mark.parametrize(
    "url",
    [
        "/admin/governance/release/",
        "/admin/governance/riskrule/",
        "/admin/governance/auditevent/",
        "/admin/governance/apitoken/",
        "/admin/comms/component/",
        "/admin/comms/incident/",
        "/admin/comms/notice/",
    ],
)
def test_a_superuser_without_a_role_reads(root: Any, url: str) -> None:
    assert logged_in(root).get(url).status_code == 200


def test_the_release_page_is_read_only_for_them(root: Any, release: Release) -> None:
    client = logged_in(root)
    html = client.get(f"/admin/governance/release/{release.pk}/change/").content.decode()
    assert 'name="version"' not in html  # no form field: read-only
    assert f'action="/admin/governance/release/{release.pk}/vote/"' not in html
    assert client.get("/admin/governance/release/add/").status_code == 403
    response = client.post(
        f"/admin/governance/release/{release.pk}/change/",
        {"version": "v9", "declared_tier": "low", "changelog": "", "rollback_plan": ""},
    )
    assert response.status_code == 403
    release.refresh_from_db()
    assert release.version == "v2.1.0"


class TestVotesAndSignOffs:
    def test_the_approve_action_is_refused_with_a_message(
        self, root: Any, release: Release
    ) -> None:
        response = logged_in(root).post(
            "/admin/governance/release/",
            {
                "action": "approve_selected",
                "_selected_action": [release.pk],
                "confirm": "yes",
                "comment": "fine",
            },
        )
        [message] = said(response)
        assert message.startswith("Refused:") and "council" in message
        assert not release.votes.exists()

    def test_a_vote_on_the_page_is_refused(self, root: Any, release: Release) -> None:
        response = logged_in(root).post(
            f"/admin/governance/release/{release.pk}/vote/",
            {"decision": "approve", "comment": "fine"},
        )
        assert said(response) == ["Only council members vote on releases."]
        assert not release.votes.exists()

    def test_a_sign_off_is_refused(self, root: Any, release: Release) -> None:
        item = release.items.get(key="ci_tests")
        response = logged_in(root).post(
            f"/admin/governance/release/{release.pk}/sign/",
            {"key": item.key, "status": "passed"},
        )
        [message] = said(response)
        assert "you hold no role" in message
        item.refresh_from_db()
        assert item.status == "pending"

    def test_a_superuser_on_the_council_votes(
        self, make_member: Callable[..., Any], release: Release
    ) -> None:
        boss = superuser(make_member, "boss", "council")
        response = logged_in(boss).post(
            f"/admin/governance/release/{release.pk}/vote/",
            {"decision": "approve", "comment": "fine"},
        )
        assert said(response) == [f"You approved {release}."]
        assert release.votes.get().voter == boss


def test_rules_and_tokens_are_not_theirs_to_change(root: Any, team: dict[str, Any]) -> None:
    client = logged_in(root)
    rule = RiskRule.objects.get(pattern="src/backend/auth/**")
    response = client.post(
        f"/admin/governance/riskrule/{rule.pk}/change/",
        {"pattern": "nothing/**", "risk": "low", "approvals_required": 0, "extra_checks": "[]"},
    )
    assert response.status_code == 403
    rule.refresh_from_db()
    assert rule.pattern == "src/backend/auth/**"
    token, _raw = token_issue(user=team["erin"], scopes=["read"])
    response = client.post(
        "/admin/governance/apitoken/", {"action": "revoke", "_selected_action": [token.pk]}
    )
    [message] = said(response)
    assert message.startswith("Refused:") and "steward" in message
    assert ApiToken.objects.get(pk=token.pk).revoked_at is None


def test_a_steward_superuser_revokes_a_token(
    make_member: Callable[..., Any], team: dict[str, Any]
) -> None:
    token, _raw = token_issue(user=team["erin"], scopes=["read"])
    response = logged_in(superuser(make_member, "boss", "steward")).post(
        "/admin/governance/apitoken/", {"action": "revoke", "_selected_action": [token.pk]}
    )
    assert said(response) == ["Revoked 1 token(s)."]
    assert ApiToken.objects.get(pk=token.pk).revoked_at is not None


class TestStatusPage:
    def test_a_superuser_without_a_role_changes_nothing(self, root: Any) -> None:
        client = logged_in(root)
        component = Component.objects.exclude(is_group=True).first()
        assert component is not None
        listing = client.get("/admin/comms/component/").content.decode()
        assert "form-0-status" not in listing  # the list's status is not editable
        response = client.post(
            f"/admin/comms/component/{component.pk}/change/",
            {"name": component.name, "status": "major_outage", "position": 0},
        )
        assert response.status_code == 403
        component.refresh_from_db()
        assert component.status == "operational"
        assert client.post("/admin/comms/incident/add/", {"name": "x"}).status_code == 403
        assert not Incident.objects.exists()
        assert client.get("/admin/comms/notice/add/").status_code == 403
        assert not Notice.objects.exists()

    def test_an_ops_superuser_may(self, make_member: Callable[..., Any]) -> None:
        client = logged_in(superuser(make_member, "boss", "ops"))
        assert "form-0-status" in client.get("/admin/comms/component/").content.decode()
        assert client.get("/admin/comms/incident/add/").status_code == 200
        assert client.get("/admin/comms/notice/add/").status_code == 200


class TestApi:
    def test_a_superuser_without_a_role_reads_but_cannot_act(
        self, root: Any, release: Release, api: Callable[..., Any]
    ) -> None:
        _token, raw = token_issue(user=root, scopes=["read", "releases:write", "votes:write"])
        client = api(raw)
        assert client.get("/api/v1/releases/").status_code == 200
        assert client.get(f"/api/v1/releases/{release.pk}/gate/").status_code == 200
        response = client.post(
            f"/api/v1/releases/{release.pk}/votes/",
            {"decision": "approve", "comment": "fine"},
            format="json",
        )
        assert response.status_code == 403
        assert "council" in response.json()["detail"]
        assert not release.votes.exists()
