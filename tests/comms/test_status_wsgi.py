"""Under gunicorn alone, the published status files are answered before Django's middleware
(comms.wsgi.StatusFiles) with the headers the Django view sends; the rest is Django's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.test import Client

from comms.models import Incident
from comms.snapshot import publish
from tests.conftest import gunicorn

pytestmark = pytest.mark.django_db(transaction=True)

PATHS = [
    "/status/",
    "/status/feed.atom",
    "/api/v2/summary.json",
    "/api/v2/incidents/unresolved.json",
    "/api/v2/scheduled-maintenances/upcoming.json",
]
# Set per response by the server or per request: compared by presence only.
VARYING = {"date", "server", "x-request-id", "connection"}


@pytest.fixture
def server(settings: Any, tmp_path: Path) -> Iterator[tuple[str, Any]]:
    settings.STATUS_SNAPSHOT_DIR = str(tmp_path / "status")
    with gunicorn(
        capture=True, STATUS_SNAPSHOT_DIR=settings.STATUS_SNAPSHOT_DIR, LOG_LEVEL="DEBUG"
    ) as (url, proc):
        yield url, proc


@pytest.mark.parametrize("path", PATHS)
def test_the_files_answer_as_the_django_view_does(server: tuple[str, Any], path: str) -> None:
    url, _ = server
    Incident.objects.create(name="Slow logins", status="investigating")
    publish()
    direct = httpx.get(url + path, timeout=10)
    viewed = Client().get(path)
    assert direct.status_code == viewed.status_code == 200
    assert direct.content == b"".join(viewed.streaming_content)
    ours = {k.lower(): v for k, v in direct.headers.items()}
    django = {k.lower(): v for k, v in viewed.headers.items()}
    assert set(ours) == set(django) | {"date", "server", "connection"}
    for name, value in django.items():
        if name not in VARYING:
            assert ours[name] == value, name
    cached = httpx.get(url + path, headers={"If-None-Match": ours["etag"]}, timeout=10)
    assert cached.status_code == 304 and cached.content == b""
    assert (
        cached.headers["etag"] == ours["etag"]
        and "stale-if-error" in cached.headers["cache-control"]
    )
    head = httpx.head(url + path, timeout=10)
    assert head.status_code == 200 and head.headers["content-length"] == ours["content-length"]


def test_status_reads_skip_the_middleware_and_are_logged_at_debug(
    server: tuple[str, Any],
) -> None:
    url, proc = server
    publish()
    assert httpx.get(f"{url}/api/v2/status.json", timeout=10).status_code == 200
    assert httpx.get(f"{url}/health/live", timeout=10).status_code == 200
    proc.terminate()
    lines = [
        json.loads(line) for line in proc.communicate(timeout=10)[0].splitlines() if "{" in line
    ]
    reads = [line for line in lines if line["event"] == "status_read"]
    assert [(r["path"], r["status"], r["level"]) for r in reads] == [
        ("/api/v2/status.json", "200", "debug")
    ]
    requests = [line.get("request") for line in lines if line["event"] == "request_started"]
    assert "GET /health/live" in str(requests) and "status.json" not in str(requests)


def test_a_newer_publish_is_served_at_once_and_the_rest_is_django(
    server: tuple[str, Any],
) -> None:
    url, _ = server
    publish()
    first = httpx.get(f"{url}/api/v2/incidents.json", timeout=10)
    Incident.objects.create(name="Card payments failing", status="identified")
    publish()
    second = httpx.get(
        f"{url}/api/v2/incidents.json", headers={"If-None-Match": first.headers["etag"]}
    )
    assert second.status_code == 200
    assert [i["name"] for i in second.json()["incidents"]] == ["Card payments failing"]
    assert httpx.post(f"{url}/api/v2/summary.json", timeout=10).status_code == 403  # CSRF
    assert httpx.get(f"{url}/api/v2/nothing.json", timeout=10).status_code == 404
    assert httpx.get(f"{url}/status", timeout=10).status_code == 301  # Django's slash


def test_before_the_first_publish_django_publishes(server: tuple[str, Any]) -> None:
    url, _ = server
    answer = httpx.get(f"{url}/api/v2/summary.json", timeout=10)
    assert answer.status_code == 200 and answer.json()["status"]["indicator"] == "none"


def test_https_redirects_hosts_and_hsts_are_djangos(settings: Any, tmp_path: Path) -> None:
    settings.STATUS_SNAPSHOT_DIR = str(tmp_path / "status")
    publish()
    with gunicorn(
        STATUS_SNAPSHOT_DIR=settings.STATUS_SNAPSHOT_DIR,
        SECURE_SSL_REDIRECT="1",
        SECURE_PROXY_SSL_HEADER="1",
        SECURE_HSTS_SECONDS="3600",
    ) as (url, _):
        plain = httpx.get(f"{url}/api/v2/summary.json", timeout=10)
        assert plain.status_code == 301
        assert plain.headers["location"].startswith("https://")
        https = {"X-Forwarded-Proto": "https"}
        ours = httpx.get(f"{url}/api/v2/summary.json", headers=https, timeout=10)
        django = httpx.get(f"{url}/health/live", headers=https, timeout=10)
        assert ours.status_code == django.status_code == 200
        assert (
            ours.headers["strict-transport-security"]
            == (django.headers["strict-transport-security"])
        )
        refused = httpx.get(
            f"{url}/api/v2/summary.json", headers={**https, "Host": "evil.example"}, timeout=10
        )
        assert refused.status_code == 400
