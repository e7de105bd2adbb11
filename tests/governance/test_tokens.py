"""API tokens: hashed at rest, scope AND role, revocation, deactivated users."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pytest
import time_machine
from django.core.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory, force_authenticate
from rest_framework.views import APIView

from governance.choices import SCOPE_ROLES, Role, Scope
from governance.models import ApiToken, AuditEvent
from governance.tokens import token_issue, token_revoke

pytestmark = pytest.mark.django_db

AUDIT = "/api/v1/audit/"


def test_only_the_hash_of_a_token_is_stored(engineer: Any) -> None:
    token, raw = token_issue(user=engineer, scopes=["read"], name="ci")
    assert raw.startswith("cnp_") and len(raw) > 40
    assert token.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert token.prefix == raw[:12]
    stored = [str(value) for value in ApiToken.objects.values().get()]
    historical = [str(value) for value in ApiToken.history.values().get()]
    assert not any(raw in value for value in stored + historical)
    assert AuditEvent.objects.filter(action="token.issued", object_id=str(token.pk)).exists()


def test_two_tokens_never_collide(engineer: Any) -> None:
    raws = {token_issue(user=engineer, scopes=["read"])[1] for _ in range(20)}
    assert len(raws) == 20


def test_a_valid_token_is_accepted_and_marked_used(engineer: Any, api: Callable[..., Any]) -> None:
    token, raw = token_issue(user=engineer, scopes=["read"])
    assert api(raw).get(AUDIT).status_code == 200
    token.refresh_from_db()
    assert token.last_used_at is not None


@pytest.mark.parametrize(
    "header",
    [
        "Bearer cnp_not-a-real-token",
        "Bearer",
        "Bearer a b",
        "Bearer ünïcode",
        "Bearer " + "x" * 500,
    ],
)
def test_missing_or_invalid_tokens_are_401(header: str, engineer: Any) -> None:
    from rest_framework.test import APIClient

    response = APIClient().get(AUDIT, HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["detail"]


def test_no_credentials_at_all_is_401(api: Callable[..., Any]) -> None:
    response = api().get(AUDIT)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_revoked_token_stops_working(engineer: Any, api: Callable[..., Any]) -> None:
    token, raw = token_issue(user=engineer, scopes=["read"])
    assert token_revoke(token=token) is True
    assert token_revoke(token=token) is False
    assert api(raw).get(AUDIT).status_code == 401


def test_a_token_of_a_deactivated_user_stops_working(
    engineer: Any, api: Callable[..., Any]
) -> None:
    _, raw = token_issue(user=engineer, scopes=["read"])
    engineer.is_active = False
    engineer.save()
    response = api(raw).get(AUDIT)
    assert response.status_code == 401
    assert "deactivated" in response.json()["detail"]


def test_no_token_can_be_issued_for_a_deactivated_user(engineer: Any) -> None:
    engineer.is_active = False
    engineer.save()
    with pytest.raises(ValidationError, match="deactivated"):
        token_issue(user=engineer, scopes=["read"])


def test_a_token_lacking_the_scope_is_403_naming_it(engineer: Any, api: Callable[..., Any]) -> None:
    _, raw = token_issue(user=engineer, scopes=["releases:write"])
    response = api(raw).get(AUDIT)
    assert response.status_code == 403
    assert "read" in response.json()["detail"]


def test_last_used_is_written_at_most_once_a_minute(engineer: Any, api: Callable[..., Any]) -> None:
    token, raw = token_issue(user=engineer, scopes=["read"])
    with time_machine.travel("2026-11-26T14:00:00Z", tick=False):
        api(raw).get(AUDIT)
    with time_machine.travel("2026-11-26T14:00:59Z", tick=False):
        api(raw).get(AUDIT)
    token.refresh_from_db()
    assert token.last_used_at.isoformat() == "2026-11-26T14:00:00+00:00"
    with time_machine.travel("2026-11-26T14:01:00Z", tick=False):
        api(raw).get(AUDIT)
    token.refresh_from_db()
    assert token.last_used_at.isoformat() == "2026-11-26T14:01:00+00:00"


class _ScopedView(APIView):
    """A minimal endpoint guarded by the real permission class, one per scope."""

    def get(self, request: Request) -> Response:
        return Response({"ok": True})


@pytest.mark.parametrize("scope", Scope.values)
def test_each_scope_needs_one_of_its_roles(scope: str, make_member: Callable[..., Any]) -> None:
    view = type("View", (_ScopedView,), {"required_scope": scope}).as_view()
    for role in Role.values:
        user = make_member(f"user-{role}", role)
        token, _ = token_issue(user=user, scopes=[scope])
        request = APIRequestFactory().get("/x")
        force_authenticate(request, user=user, token=token)
        expected = 200 if role in SCOPE_ROLES[scope] else 403
        assert view(request).status_code == expected, (scope, role)

        other_scope = next(s for s in Scope.values if s != scope)
        wrong, _ = token_issue(user=user, scopes=[other_scope])
        request = APIRequestFactory().get("/x")
        force_authenticate(request, user=user, token=wrong)
        assert view(request).status_code == 403, (scope, role, "wrong scope")


def test_a_view_can_narrow_the_roles_for_one_action(make_member: Callable[..., Any]) -> None:
    view = type(
        "Promote",
        (_ScopedView,),
        {
            "required_scope": Scope.CANARY_OPERATE,
            "required_roles": frozenset({Role.COUNCIL, Role.STEWARD}),
        },
    ).as_view()
    for role, expected in [("council", 200), ("steward", 200), ("engineer", 403), ("ops", 403)]:
        user = make_member(f"p-{role}", role)
        token, _ = token_issue(user=user, scopes=[Scope.CANARY_OPERATE])
        request = APIRequestFactory().get("/x")
        force_authenticate(request, user=user, token=token)
        response = view(request)
        assert response.status_code == expected, role
        if expected == 403:
            assert "council or steward" in response.data["detail"]


def test_a_browser_session_needs_a_role_too(engineer: Any, outsider: Any) -> None:
    from django.test import Client

    client = Client()
    client.force_login(engineer)
    assert client.get(AUDIT).status_code == 200
    client.force_login(outsider)
    assert client.get(AUDIT).status_code == 403


def test_history_keeps_the_actor_name_after_the_actor_is_deleted(
    engineer: Any, make_member: Callable[..., Any]
) -> None:
    admin = make_member("steve", "steward")
    token, _ = token_issue(user=engineer, scopes=["read"], acting_user=admin)
    token_revoke(token=token, acting_user=admin)
    admin.delete()
    rows = list(ApiToken.history.filter(id=token.pk).order_by("history_date"))
    assert [row.history_type for row in rows] == ["+", "~"]
    assert all(row.history_user is None for row in rows)
    assert [row.history_user_name for row in rows] == ["steve", "steve"]
    assert AuditEvent.objects.filter(action="token.revoked", actor="steve").exists()
