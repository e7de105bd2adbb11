from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from governance.choices import ItemStatus
from governance.models import Release
from governance.services import checklist_sign, release_create


@pytest.fixture
def team(make_member: Callable[..., Any]) -> dict[str, Any]:
    """The personas: an engineer, two council members, and one signer per role."""
    return {
        "erin": make_member("erin", "engineer"),
        "carol": make_member("carol", "council"),
        "dave": make_member("dave", "council"),
        "sam": make_member("sam", "steward"),
        "oscar": make_member("oscar", "ops"),
        "fiona": make_member("fiona", "finance"),
        "sid": make_member("sid", "security"),
        "cora": make_member("cora", "compliance"),
        "olivia": make_member("olivia"),
    }


@pytest.fixture
def new_release(team: dict[str, Any]) -> Callable[..., Release]:
    def create(**fields: Any) -> Release:
        values: dict[str, Any] = {
            "service": "backend",
            "version": "v2.1.0",
            "tier": "medium",
            "changed_paths": [],
            "change_types": ["bug_fix"],
            "rollback_plan": "Redeploy v2.0.3",
        }
        values.update(fields)
        return release_create(author=team["erin"], **values)

    return create


@pytest.fixture
def sign_all(team: dict[str, Any]) -> Callable[[Release], None]:
    """Every required item passed, each by a member holding one of its signer roles."""
    by_role = {
        "engineer": "erin",
        "steward": "sam",
        "ops": "oscar",
        "finance": "fiona",
        "security": "sid",
        "compliance": "cora",
    }

    def sign(release: Release) -> None:
        for item in release.items.filter(required=True):
            signer = team[by_role[item.signer_roles[0]]]
            checklist_sign(release=release, key=item.key, user=signer, status=ItemStatus.PASSED)

    return sign
