"""A release names a service of the catalogue; paths outside its modules are warnings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from governance.models import Release
from tests.conftest import logged_in

pytestmark = pytest.mark.django_db

BODY = {
    "service": "backend",
    "version": "v2.1.0",
    "tier": "medium",
    "changed_paths": [
        "src/backend/payments/stripe.py",
        "frontend/pages/index.tsx",
        "src/backend/migrations/0002_x.py",
    ],
    "change_types": ["bug_fix"],
    "rollback_plan": "text",
}


@pytest.fixture
def writer(team: dict[str, Any], token_for: Callable[..., str], api: Callable[..., Any]) -> Any:
    return api(token_for(team["erin"], "releases:write", "read"))


def test_an_unknown_service_is_refused_by_name(writer: Any) -> None:
    response = writer.post("/api/v1/releases/", {**BODY, "service": "nowhere"}, format="json")
    assert response.status_code == 400
    assert "nowhere" in str(response.json())
    assert response.json()["detail"]
    assert not Release.objects.exists()


def test_uncovered_paths_are_warnings_that_never_block(
    writer: Any, team: dict[str, Any], sign_all: Callable[[Release], None]
) -> None:
    response = writer.post("/api/v1/releases/", BODY, format="json")
    assert response.status_code == 201, response.json()
    gate = writer.get(f"/api/v1/releases/{response.json()['id']}/gate/").json()
    assert gate["warnings"] == ["frontend/pages/index.tsx is not covered by any module of backend"]
    assert response.json()["gate"]["warnings"] == gate["warnings"]
    assert not any("frontend/pages" in reason for reason in gate["blocking"])

    covered = writer.post(
        "/api/v1/releases/",
        {**BODY, "version": "v2.1.1", "changed_paths": ["src/backend/api/x.py"]},
        format="json",
    ).json()
    assert covered["gate"]["warnings"] == []
    sign_all(Release.objects.get(pk=covered["id"]))
    page = logged_in(team["sam"]).get(f"/admin/governance/release/{response.json()['id']}/change/")
    assert (
        "frontend/pages/index.tsx is not covered by any module of backend" in page.content.decode()
    )
