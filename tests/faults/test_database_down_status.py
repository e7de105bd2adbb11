"""PostgreSQL unreachable: the status page, its feed and every v2 document are still served
(200, with their ETags) from the snapshot published before, by gunicorn alone."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from comms.models import Component, Incident
from comms.services import incident_post
from comms.snapshot import publish
from tests.conftest import gunicorn
from tests.servers import closed_port

pytestmark = pytest.mark.django_db(transaction=True)

DOCUMENTS = [
    "summary",
    "status",
    "components",
    "incidents",
    "incidents/unresolved",
    "scheduled-maintenances",
    "scheduled-maintenances/upcoming",
    "scheduled-maintenances/active",
]


@pytest.fixture
def published(settings: Any, tmp_path: Path) -> Path:
    """A snapshot with an open incident, written before the database goes away."""
    settings.STATUS_SNAPSHOT_DIR = str(tmp_path / "status")
    incident_post(
        None,
        name="Card payments failing",
        status="identified",
        body="We found the cause.",
        components={Component.objects.get(name="Payment Processing"): "partial_outage"},
    )
    assert Incident.objects.count() == 1
    publish()
    return tmp_path / "status"


@pytest.fixture
def server(published: Path) -> Iterator[str]:
    with gunicorn(
        DATABASE_URL=f"postgres://postgres@127.0.0.1:{closed_port()}/canary",
        STATUS_SNAPSHOT_DIR=str(published),
    ) as (url, _):
        yield url


def test_the_status_page_is_served_while_postgresql_is_unreachable(
    server: str, published: Path
) -> None:
    assert httpx.get(f"{server}/health/db", timeout=10).status_code == 503  # really down
    for name in DOCUMENTS:
        answer = httpx.get(f"{server}/api/v2/{name}.json", timeout=10)
        assert answer.status_code == 200, name
        assert answer.content == (published / "api" / "v2" / f"{name}.json").read_bytes()
        assert answer.headers["etag"] and "stale-if-error" in answer.headers["cache-control"]
    summary = httpx.get(f"{server}/api/v2/summary.json", timeout=10)
    assert summary.json()["status"]["indicator"] == "minor"
    assert [i["name"] for i in summary.json()["incidents"]] == ["Card payments failing"]
    again = httpx.get(
        f"{server}/api/v2/summary.json",
        headers={"If-None-Match": summary.headers["etag"]},
        timeout=10,
    )
    assert again.status_code == 304
    page = httpx.get(f"{server}/status/", timeout=10)
    assert page.status_code == 200 and "Card payments failing" in page.text
    feed = httpx.get(f"{server}/status/feed.atom", timeout=10)
    assert feed.status_code == 200 and "Card payments failing" in feed.text
    # Nothing was written or lost: the snapshot on disk is the one published before.
    assert (
        json.loads((published / "api/v2/incidents.json").read_bytes())["incidents"][0]["name"]
        == "Card payments failing"
    )
