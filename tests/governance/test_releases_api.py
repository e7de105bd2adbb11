"""The release, gate, checklist and vote endpoints exactly as the contract says."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from governance.models import AuditEvent, Release
from governance.services import release_mark_deployed

pytestmark = pytest.mark.django_db

BODY = {
    "service": "backend",
    "version": "v2.1.0",
    "tier": "medium",
    "changed_paths": ["src/backend/payments/stripe.py", "frontend/pages/index.tsx"],
    "change_types": ["bug_fix"],
    "changelog": "text",
    "rollback_plan": "text",
}


@pytest.fixture
def as_member(team: dict[str, Any], token_for: Callable[..., str], api: Callable[..., Any]):
    def client(name: str, *scopes: str) -> Any:
        return api(token_for(team[name], *scopes))

    return client


@pytest.fixture
def created(as_member: Callable[..., Any]) -> dict[str, Any]:
    response = as_member("erin", "releases:write").post("/api/v1/releases/", BODY, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def test_create_returns_the_assessed_release_with_its_gate(created: dict[str, Any]) -> None:
    assert created["service"] == "backend" and created["version"] == "v2.1.0"
    assert (created["declared_tier"], created["tier"], created["risk"]) == (
        "medium",
        "high",
        "critical",
    )
    assert created["matched_rules"] == [
        {
            "pattern": "src/backend/payments/**",
            "risk": "critical",
            "approvals_required": 2,
            "extra_checks": ["pci_compliance", "fraud_detection"],
            "description": "Payments: PCI compliance and fraud detection",
        }
    ]
    assert created["notice_required"] is False
    assert created["state"] == "pending_approval"
    assert created["created_by"] == "erin"
    gate = created["gate"]
    assert gate["ready"] is False
    assert gate["blocking"][0] == "Council approval: 0 of 2"
    assert gate["approvals"] == {"required": 2, "approvals": 0, "rejections": 0, "votes": []}
    item = next(i for i in gate["checklist"] if i["key"] == "ci_tests")
    assert item == {
        "key": "ci_tests",
        "label": "CI tests pass",
        "section": "approvals",
        "status": "pending",
        "signer_roles": ["engineer"],
        "signed_by": None,
        "signed_at": None,
        "evidence_url": None,
        "note": "",
    }
    assert AuditEvent.objects.filter(action="release.created", release_id=created["id"]).exists()


def test_a_duplicate_is_409(created: dict[str, Any], as_member: Callable[..., Any]) -> None:
    response = as_member("erin", "releases:write").post("/api/v1/releases/", BODY, format="json")
    assert response.status_code == 409
    assert "already exists" in response.json()["detail"]


def test_list_filters_and_read(created: dict[str, Any], as_member: Callable[..., Any]) -> None:
    client = as_member("fiona", "read")
    assert [r["id"] for r in client.get("/api/v1/releases/?service=backend").json()] == [
        created["id"]
    ]
    assert client.get("/api/v1/releases/?service=frontend").json() == []
    assert len(client.get("/api/v1/releases/?version=v2.1.0&state=pending_approval").json()) == 1
    assert client.get("/api/v1/releases/?state=bogus").status_code == 400
    one = client.get(f"/api/v1/releases/{created['id']}/")
    assert one.status_code == 200 and one.json()["gate"] == created["gate"]
    assert client.get("/api/v1/releases/999999/").status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**BODY, "tier": "extreme"}, "tier"),
        ({**BODY, "change_types": ["yolo"]}, "change_types"),
        ({**BODY, "changed_paths": "src/a.py"}, "changed_paths"),
        ({**BODY, "changed_paths": [1, None]}, "changed_paths"),
        ({**BODY, "version": ""}, "version"),
        ({**BODY, "version": "v1 with spaces"}, "version"),
        ({**BODY, "state": "approved"}, "state"),
        ({k: v for k, v in BODY.items() if k != "service"}, "service"),
    ],
)
def test_malformed_bodies_are_400_naming_the_field_and_write_nothing(
    as_member: Callable[..., Any], body: dict[str, Any], field: str
) -> None:
    response = as_member("erin", "releases:write").post("/api/v1/releases/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert not Release.objects.exists()


def test_invalid_json_is_400(as_member: Callable[..., Any]) -> None:
    response = as_member("erin", "releases:write").post(
        "/api/v1/releases/", "{not json", content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["detail"]


def test_create_needs_token_scope_and_engineer_role(
    as_member: Callable[..., Any], api: Callable[..., Any]
) -> None:
    assert api().post("/api/v1/releases/", BODY, format="json").status_code == 401
    assert (
        as_member("erin", "read").post("/api/v1/releases/", BODY, format="json").status_code == 403
    )
    assert (
        as_member("carol", "releases:write")
        .post("/api/v1/releases/", BODY, format="json")
        .status_code
        == 403
    )
    assert as_member("olivia", "read").get("/api/v1/releases/").status_code == 403
    assert not Release.objects.exists()


def test_patch_recomputes_and_is_refused_after_deploy(
    created: dict[str, Any], as_member: Callable[..., Any], team: dict[str, Any]
) -> None:
    client = as_member("erin", "releases:write")
    url = f"/api/v1/releases/{created['id']}/"
    response = client.patch(
        url, {"changed_paths": ["docs/readme.md"], "tier": "low"}, format="json"
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["tier"], body["risk"], body["matched_rules"]) == ("low", "low", [])
    assert body["gate"]["approvals"]["required"] == 0
    assert {i["key"] for i in body["gate"]["checklist"]} >= {"ci_tests", "lint"}
    assert client.patch(url, {"service": "frontend"}, format="json").status_code == 400
    assert client.patch(url, {"tier": "huge"}, format="json").status_code == 400
    assert as_member("erin", "read").patch(url, {"tier": "high"}, format="json").status_code == 403

    release = Release.objects.get(pk=created["id"])
    for item in release.items.filter(required=True):
        item.status = "passed"
        item.save()
    release_mark_deployed(release=release, actor=team["erin"])
    response = client.patch(url, {"changelog": "late"}, format="json")
    assert response.status_code == 409
    assert Release.objects.get(pk=created["id"]).changelog == "text"


class TestChecklistEndpoint:
    def url(self, created: dict[str, Any], key: str) -> str:
        return f"/api/v1/releases/{created['id']}/checklist/{key}/"

    def test_finance_signs_business_validation(
        self, created: dict[str, Any], as_member: Callable[..., Any]
    ) -> None:
        response = as_member("fiona", "checklist:sign").post(
            self.url(created, "business_validation"),
            {"status": "passed", "evidence_url": "https://finance.example.com/bv/7", "note": "ok"},
            format="json",
        )
        assert response.status_code == 200
        body = response.json()
        assert (body["key"], body["status"], body["signed_by"]) == (
            "business_validation",
            "passed",
            "fiona",
        )
        assert body["evidence_url"] == "https://finance.example.com/bv/7"
        assert body["signed_at"]

    def test_a_member_without_the_signer_role_is_403(
        self, created: dict[str, Any], as_member: Callable[..., Any]
    ) -> None:
        response = as_member("sid", "checklist:sign").post(
            self.url(created, "business_validation"), {"status": "passed"}, format="json"
        )
        assert response.status_code == 403
        assert "finance" in response.json()["detail"]

    def test_a_key_the_release_does_not_need_is_404(
        self, created: dict[str, Any], as_member: Callable[..., Any]
    ) -> None:
        client = as_member("erin", "checklist:sign")
        assert (
            client.post(self.url(created, "lint"), {"status": "passed"}, format="json").status_code
            == 404
        )
        assert (
            client.post(self.url(created, "bogus"), {"status": "passed"}, format="json").status_code
            == 404
        )

    @pytest.mark.parametrize(
        "body",
        [
            {"status": "done"},
            {},
            {"status": "passed", "evidence_url": "javascript:alert(1)"},
            {"status": "passed", "extra": 1},
        ],
    )
    def test_malformed_sign_offs_are_400(
        self, created: dict[str, Any], as_member: Callable[..., Any], body: dict[str, Any]
    ) -> None:
        response = as_member("erin", "checklist:sign").post(
            self.url(created, "ci_tests"), body, format="json"
        )
        assert response.status_code == 400
        assert Release.objects.get().items.get(key="ci_tests").status == "pending"

    def test_needs_the_sign_scope(
        self, created: dict[str, Any], as_member: Callable[..., Any]
    ) -> None:
        response = as_member("erin", "read").post(
            self.url(created, "ci_tests"), {"status": "passed"}, format="json"
        )
        assert response.status_code == 403


class TestVoteEndpoint:
    def url(self, created: dict[str, Any]) -> str:
        return f"/api/v1/releases/{created['id']}/votes/"

    def test_first_vote_201_then_replaced_200(
        self, created: dict[str, Any], as_member: Callable[..., Any]
    ) -> None:
        client = as_member("carol", "votes:write", "read")
        first = client.post(
            self.url(created), {"decision": "reject", "comment": "why?"}, format="json"
        )
        assert first.status_code == 201
        assert (first.json()["voter"], first.json()["decision"]) == ("carol", "reject")
        second = client.post(
            self.url(created), {"decision": "approve", "comment": "ok now"}, format="json"
        )
        assert second.status_code == 200
        gate = client.get(f"/api/v1/releases/{created['id']}/gate/").json()
        assert gate["approvals"]["approvals"] == 1
        assert gate["approvals"]["rejections"] == 0
        assert [v["decision"] for v in gate["approvals"]["votes"]] == ["approve"]
        assert gate["approvals"]["votes"][0]["stale"] is False

    def test_non_council_and_the_author_are_403(
        self,
        created: dict[str, Any],
        as_member: Callable[..., Any],
        make_member: Any,
        token_for: Callable[..., str],
        api: Callable[..., Any],
    ) -> None:
        assert (
            as_member("sam", "votes:write")
            .post(self.url(created), {"decision": "approve"}, format="json")
            .status_code
            == 403
        )
        # An author who is also on the council still cannot vote on their own release.
        from django.contrib.auth import get_user_model

        from governance.members import member_set_roles

        member_set_roles(username="erin", roles=["engineer", "council"])
        erin = get_user_model().objects.get(username="erin")
        response = api(token_for(erin, "votes:write")).post(
            self.url(created), {"decision": "approve"}, format="json"
        )
        assert response.status_code == 403
        assert "own release" in response.json()["detail"]

    @pytest.mark.parametrize("body", [{"decision": "maybe"}, {}, {"decision": "approve", "x": 1}])
    def test_malformed_votes_are_400(
        self, created: dict[str, Any], as_member: Callable[..., Any], body: dict[str, Any]
    ) -> None:
        response = as_member("carol", "votes:write").post(self.url(created), body, format="json")
        assert response.status_code == 400
        assert not Release.objects.get().votes.exists()

    def test_votes_need_the_scope(
        self, created: dict[str, Any], as_member: Callable[..., Any]
    ) -> None:
        response = as_member("carol", "read").post(
            self.url(created), {"decision": "approve"}, format="json"
        )
        assert response.status_code == 403


def test_gate_and_audit_follow_every_step(
    created: dict[str, Any], as_member: Callable[..., Any]
) -> None:
    as_member("carol", "votes:write").post(
        f"/api/v1/releases/{created['id']}/votes/", {"decision": "approve"}, format="json"
    )
    events = as_member("fiona", "read").get(f"/api/v1/audit/?release={created['id']}").json()
    assert [e["action"] for e in events] == ["release.created", "vote.cast"]
