"""End to end: a real server and a real engine process, metrics pushed over HTTP. A
healthy canary is promoted; a canary with 10% errors is rolled back by the error-rate rule."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from governance.models import Release
from governance.tokens import token_issue
from rollouts.models import Rollout
from tests.conftest import ROOT, gunicorn, subprocess_env

pytestmark = pytest.mark.django_db(transaction=True)
SCALE = "600"  # a 10-minute phase lasts one second
BOUNDS = [25, 50, 100, 200, 300, 500, 1000, "+Inf"]
COUNTS = [100, 300, 400, 150, 30, 15, 5, 0]


@pytest.fixture
def portal() -> Iterator[str]:
    engine = subprocess.Popen(
        [sys.executable, "manage.py", "canary_tick", "--every", "0.25"],
        env=subprocess_env(CANARY_TIME_SCALE=SCALE),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with gunicorn(workers=2, CANARY_TIME_SCALE=SCALE) as (url, _):
            yield url
    finally:
        engine.terminate()
        engine.wait(timeout=10)


def sample(
    service: str,
    version: str,
    variant: str,
    end: datetime,
    requests: int,
    error_rate: float,
    span: timedelta,
) -> dict[str, Any]:
    errors = round(requests * error_rate)
    return {
        "service": service,
        "version": version,
        "variant": variant,
        "start": (end - span).isoformat(),
        "end": end.isoformat(),
        "requests": requests,
        "errors": errors,
        "status_5xx": errors,
        "latency_ms": {"le": BOUNDS, "counts": COUNTS},
    }


def test_metrics_over_http_promote_one_canary_and_roll_back_the_other(
    portal: str, approved: Callable[..., Release], team: dict[str, Any]
) -> None:
    healthy = approved(service="checkout", version="v1.2.0")
    failing = approved(service="search", version="v4.2.0")
    _, token = token_issue(user=team["erin"], scopes=["canary:operate", "metrics:write", "read"])
    http = httpx.Client(base_url=portal, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    for release in (healthy, failing):
        response = http.post(f"/api/v1/releases/{release.pk}/deploy/", json={})
        assert response.status_code == 201, response.text

    deadline = time.monotonic() + 90
    states: dict[str, str] = {}
    last = datetime.now(UTC)
    while time.monotonic() < deadline:
        rollouts = http.get("/api/v1/rollouts/").json()
        states = {r["service"]: r["state"] for r in rollouts}
        if states == {"checkout": "promoted", "search": "rolled_back"}:
            break
        # Samples about 50 ms apart since the last push, 400 requests each per weight point:
        # at this scale a phase's second holds its 10 minutes of traffic, and each of the
        # judge's intervals (a scaled minute: 100 ms) has samples of both variants.
        now = datetime.now(UTC)
        pieces = max(1, round((now - last).total_seconds() / 0.05))
        span, per_point = (now - last) / pieces, 400
        samples = []
        for r in rollouts:
            if r["state"] not in ("running", "monitoring"):
                continue
            weight = r["weight"]
            rate = 0.10 if r["service"] == "search" else 0.001
            for piece in range(1, pieces + 1):
                end = last + span * piece
                if weight < 100:
                    stable = per_point * (100 - weight)
                    samples.append(
                        sample(r["service"], "stable", "stable", end, stable, 0.001, span)
                    )
                canary = per_point * weight
                samples.append(
                    sample(r["service"], r["version"], "canary", end, canary, rate, span)
                )
        last = now
        if samples:
            response = http.post("/api/v1/metrics/", json={"samples": samples})
            assert response.status_code == 202, response.text
        time.sleep(0.25)
    assert states == {"checkout": "promoted", "search": "rolled_back"}

    promoted = Rollout.objects.get(service="checkout")
    assert [p.verdict for p in promoted.phases.all()] == ["passed", "passed", "passed", "promoted"]
    rolled_back = Rollout.objects.get(service="search")
    assert rolled_back.rollback.trigger == "rule error_rate"
    report = rolled_back.incident_report
    assert "rule error_rate" in report and "error_rate 0.1 ≥ 0.05" in report
    comparison = http.get("/ops/canary/metrics?version=v4.2.0").json()
    assert comparison["state"] == "rolled_back"
    assert {r["name"]: r["state"] for r in comparison["abort_rules"]}["error_rate"] == "firing"
