"""add_member and issue_token: exact roles, clear errors, non-zero exits, nothing half-written."""

from __future__ import annotations

import re
from typing import Any

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from governance.models import ApiToken, AuditEvent
from governance.roles import user_roles
from tests.conftest import run_manage

User = get_user_model()


def roles_of(username: str) -> set[str]:
    return set(user_roles(User.objects.get(username=username)))


@pytest.mark.django_db
class TestAddMember:
    def test_creates_a_member_with_exactly_those_roles(self) -> None:
        call_command(
            "add_member",
            "carol",
            "--role",
            "council",
            "--role",
            "steward",
            "--email",
            "Carol@Example.com",
            "--password",
            "a-long-passphrase-42",
        )
        carol = User.objects.get(username="carol")
        assert roles_of("carol") == {"council", "steward"}
        assert carol.email == "carol@example.com"
        assert carol.is_staff and carol.is_active and not carol.is_superuser
        assert carol.check_password("a-long-passphrase-42")
        address = EmailAddress.objects.get(user=carol)
        assert (address.email, address.verified, address.primary) == (
            "carol@example.com",
            True,
            True,
        )
        event = AuditEvent.objects.get(action="member.created")
        assert event.data["roles"] == ["council", "steward"]

    def test_running_again_sets_exactly_the_new_roles_and_keeps_other_groups(self) -> None:
        call_command("add_member", "carol", "--role", "council", "--role", "steward")
        carol = User.objects.get(username="carol")
        carol.groups.add(Group.objects.create(name="book-club"))
        call_command("add_member", "carol", "--role", "ops")
        assert roles_of("carol") == {"ops"}
        assert carol.groups.filter(name="book-club").exists()
        assert User.objects.filter(username="carol").count() == 1
        updated = AuditEvent.objects.get(action="member.updated")
        assert updated.data["previous_roles"] == ["council", "steward"]
        assert updated.data["roles"] == ["ops"]

    def test_is_idempotent(self) -> None:
        for _ in range(2):
            call_command("add_member", "sam", "--role", "steward", "--email", "sam@example.com")
        assert roles_of("sam") == {"steward"}
        assert EmailAddress.objects.filter(email="sam@example.com").count() == 1

    def test_a_new_member_without_password_cannot_log_in_until_one_is_set(self) -> None:
        call_command("add_member", "oscar", "--role", "ops")
        assert not User.objects.get(username="oscar").has_usable_password()

    def test_leaves_a_deactivated_member_deactivated(self) -> None:
        call_command("add_member", "oscar", "--role", "ops")
        User.objects.filter(username="oscar").update(is_active=False)
        call_command("add_member", "oscar", "--role", "steward")
        assert not User.objects.get(username="oscar").is_active

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["carol", "--role", "king"], "Unknown role"),
            (["carol", "--role", "council", "--role", "wizard"], "wizard"),
            (["carol", "--role", "council", "--email", "not-an-email"], "Invalid email"),
            (["bad name!", "--role", "council"], "Invalid username"),
            (["carol", "--role", "council", "--password", ""], "must not be empty"),
        ],
    )
    def test_bad_input_is_refused_and_writes_nothing(self, args: list[str], message: str) -> None:
        with pytest.raises(CommandError, match=message):
            call_command("add_member", *args)
        assert not User.objects.exists()
        assert not AuditEvent.objects.exists()

    def test_an_email_of_another_member_is_refused(self) -> None:
        call_command("add_member", "carol", "--role", "council", "--email", "c@example.com")
        with pytest.raises(CommandError, match="belongs to another member"):
            call_command("add_member", "dave", "--role", "council", "--email", "C@example.com")
        assert not User.objects.filter(username="dave").exists()

    def test_the_member_can_sign_in_with_email_or_username(self) -> None:
        call_command(
            "add_member",
            "fiona",
            "--role",
            "finance",
            "--email",
            "fiona@example.com",
            "--password",
            "a-long-passphrase-42",
        )
        for login in ("fiona@example.com", "fiona"):
            client = Client()
            response = client.post(
                "/accounts/login/", {"login": login, "password": "a-long-passphrase-42"}
            )
            assert response.status_code == 302, login
            assert client.get("/admin/").status_code == 200

    def test_nobody_can_sign_up_on_their_own(self) -> None:
        response = Client().post(
            "/accounts/signup/",
            {
                "username": "eve",
                "email": "eve@example.com",
                "password1": "a-long-passphrase-42",
                "password2": "a-long-passphrase-42",
            },
        )
        assert not User.objects.filter(username="eve").exists()
        assert response.status_code in (200, 403)


@pytest.mark.django_db
class TestIssueToken:
    def test_prints_the_token_and_nothing_else(self, capsys: Any) -> None:
        call_command("add_member", "erin", "--role", "engineer")
        capsys.readouterr()
        call_command(
            "issue_token", "erin", "--scope", "read", "--scope", "releases:write", "--name", "ci"
        )
        out = capsys.readouterr().out
        assert re.fullmatch(r"cnp_[A-Za-z0-9_-]{43}\n", out)
        token = ApiToken.objects.get()
        assert token.scopes == ["read", "releases:write"]
        assert token.name == "ci"

    def test_warns_but_issues_when_the_user_lacks_the_role(self, capsys: Any) -> None:
        call_command("add_member", "erin", "--role", "engineer")
        capsys.readouterr()
        call_command("issue_token", "erin", "--scope", "votes:write")
        captured = capsys.readouterr()
        assert captured.out.startswith("cnp_")
        assert "votes:write" in captured.err and "council" in captured.err

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["nobody", "--scope", "read"], "No member named 'nobody'"),
            (["erin", "--scope", "root"], "Unknown scope"),
            (["erin", "--scope", "read", "--name", "n" * 101], "longer than 100"),
        ],
    )
    def test_bad_input_is_refused(self, args: list[str], message: str) -> None:
        call_command("add_member", "erin", "--role", "engineer")
        with pytest.raises(CommandError, match=message):
            call_command("issue_token", *args)
        assert not ApiToken.objects.exists()

    def test_refused_for_a_deactivated_member(self) -> None:
        call_command("add_member", "erin", "--role", "engineer")
        User.objects.filter(username="erin").update(is_active=False)
        with pytest.raises(CommandError, match="deactivated"):
            call_command("issue_token", "erin", "--scope", "read")


def test_commands_exit_non_zero_with_a_clear_message(transactional_db: None) -> None:
    missing_role = run_manage("add_member", "carol")
    assert missing_role.returncode != 0
    assert "--role" in missing_role.stderr

    bad_role = run_manage("add_member", "carol", "--role", "king")
    assert bad_role.returncode != 0
    assert "Unknown role(s): king" in bad_role.stderr

    created = run_manage("add_member", "carol", "--role", "council")
    assert created.returncode == 0, created.stderr

    token = run_manage("issue_token", "carol", "--scope", "votes:write")
    assert token.returncode == 0, token.stderr
    assert re.fullmatch(r"cnp_\S+\n", token.stdout)

    unknown = run_manage("issue_token", "nobody", "--scope", "read")
    assert unknown.returncode != 0
    assert unknown.stdout == ""
    assert "No member named" in unknown.stderr
