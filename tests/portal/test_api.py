"""The API root, the OpenAPI schema and its docs (served without any CDN), JSON 404s."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_api_root_lists_the_endpoints() -> None:
    body = Client().get("/api/v1/").json()
    assert body["audit"].endswith("/api/v1/audit/")
    assert body["schema"].endswith("/api/schema/")


def test_schema_describes_the_audit_endpoint() -> None:
    response = Client().get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    schema = response.json()
    assert "/api/v1/audit/" in schema["paths"]


def test_docs_load_their_assets_locally() -> None:
    client = Client()
    html = client.get("/api/docs/").content.decode()
    assert "cdn.jsdelivr" not in html and "unpkg" not in html
    asset = "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js"
    assert asset in html
    assert client.get(asset).status_code == 200


def test_unknown_api_paths_answer_json_404(settings: object) -> None:
    response = Client().get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


def test_root_leads_to_the_admin_which_signs_in_through_allauth() -> None:
    client = Client()
    assert client.get("/")["Location"] == "/admin/"
    response = client.get("/admin/", follow=True)
    assert response.redirect_chain[-1][0].startswith("/accounts/login/")


def test_the_schema_validates_without_warnings() -> None:
    import io

    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", stdout=io.StringIO())
