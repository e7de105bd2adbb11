"""Every answer under /api/ and /ops/ is JSON with `detail`, whatever its status and
whoever produced it; bodies are bounded (413)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from governance.models import Release
from tests.portal.refusals import refused, send

pytestmark = pytest.mark.django_db

KILL = "/ops/canary/abort"
SAMPLE = {
    "service": "backend",
    "version": "v2.1.0",
    "variant": "canary",
    "start": "2026-11-26T14:00:00Z",
    "end": "2026-11-26T14:00:10Z",
    "requests": 1000,
    "errors": 12,
}


# Body size.


def test_a_body_over_one_mib_is_a_413(client_for: Callable[..., APIClient]) -> None:
    body = {"service": "backend", "version": "v1", "tier": "low", "changelog": "x" * (1 << 20)}
    refused(send(client_for("erin", "releases:write"), "/api/v1/releases/", body), 413)
    assert not Release.objects.exists()


def test_metrics_ingest_takes_up_to_eight_mib(client_for: Callable[..., APIClient]) -> None:
    client = client_for("erin", "metrics:write")
    padding = " " * (3 << 20)  # whitespace is valid JSON, and makes a 3 MiB body
    accepted = send(
        client, "/api/v1/metrics/", '{"samples": [' + json.dumps(SAMPLE) + "]" + padding + "}"
    )
    assert accepted.status_code == 202, accepted.content[:300]
    refused(send(client, "/api/v1/metrics/", '{"samples": []' + " " * (8 << 20) + "}"), 413)


def test_an_unauthenticated_kill_switch_call_with_a_huge_body_is_refused_as_json() -> None:
    response = send(APIClient(), KILL, '{"reason": "' + "x" * (2 << 20) + '"}')
    assert 400 <= response.status_code < 500
    refused(response, response.status_code)


# JSON whatever the status.


@pytest.mark.parametrize("url", ["/api/nothing", "/ops/nothing", "/api/v1/releases/1/nothing/"])
def test_unknown_machine_urls_are_json_404s(url: str, settings: Any) -> None:
    settings.DEBUG = True  # Django's technical 404 page is HTML
    refused(Client().get(url), 404)


def test_an_unexpected_exception_is_a_json_500(settings: Any) -> None:
    # With DEBUG on, Django's CommonMiddleware raises RuntimeError for a POST to a URL it
    # would redirect to add the slash: a real exception outside any view.
    settings.DEBUG = True
    response = Client(raise_request_exception=False).post("/api/v1/releases", {})
    refused(response, 500)


def test_a_wrong_method_and_no_credentials_are_json(client_for: Callable[..., APIClient]) -> None:
    refused(client_for("erin", "read", "releases:write").delete("/api/v1/releases/"), 405)
    refused(APIClient().get("/api/v1/releases/"), 401)
    refused(client_for("olivia", "read").post("/api/v1/releases/", {}, format="json"), 403)
    refused(APIClient().get("/api/v2/nothing.json"), 404)


def test_errors_stay_json_for_a_browser_asking_for_html(
    client_for: Callable[..., APIClient],
) -> None:
    browser = {"HTTP_ACCEPT": "text/html"}
    body = refused(APIClient().get("/api/v1/releases/", **browser), 401)
    assert body["detail"] == "Authentication credentials were not provided."
    body = refused(client_for("erin", "read").get("/api/v1/releases/?limit=x", **browser))
    assert body["errors"] == {"limit": ["Must be a whole number."]}


def test_too_many_query_fields_is_a_json_400(client_for: Callable[..., APIClient]) -> None:
    query = "&".join(f"f{n}=1" for n in range(1500))
    refused(client_for("erin", "read").get(f"/api/v1/releases/?{query}"))
