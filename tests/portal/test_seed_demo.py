from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from governance.roles import user_roles
from portal.management.commands.seed_demo import DEMO_MEMBERS

pytestmark = pytest.mark.django_db


def test_seed_demo_creates_one_member_per_role_and_is_idempotent(settings: object) -> None:
    settings.DEBUG = True  # type: ignore[attr-defined]
    call_command("seed_demo")
    call_command("seed_demo")
    User = get_user_model()
    for username, roles in DEMO_MEMBERS:
        assert set(user_roles(User.objects.get(username=username))) == set(roles)
    assert User.objects.get(username="admin").is_superuser
    assert User.objects.count() == len(DEMO_MEMBERS) + 1


def test_seed_demo_refuses_with_debug_off(settings: object) -> None:
    settings.DEBUG = False  # type: ignore[attr-defined]
    with pytest.raises(CommandError, match="DEBUG is off"):
        call_command("seed_demo")
    assert not get_user_model().objects.exists()
