"""GET /ops/canary/metrics: the live comparison with the guide's levels."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import time_machine

from governance.models import Release
from rollouts import engine, lifecycle
from rollouts.models import ComplaintReport, Rollout
from tests.rollouts.conftest import T0, at, feed

pytestmark = pytest.mark.django_db
URL = "/ops/canary/metrics"


@pytest.fixture
def rollout(approved: Callable[..., Release], team: dict[str, Any]) -> Iterator[Rollout]:
    with time_machine.travel(T0, tick=False) as clock:
        started = lifecycle.rollout_start(
            release=approved(), actor=team["erin"], stable_version="v2.0.3"
        )
        biz = {
            "orders": 40,
            "order_value_total": 2000.0,
            "payments_attempted": 40,
            "payments_failed": 0,
            "refunds": 1,
            "processing_cost_total": 12.0,
        }
        feed(
            "backend",
            "v2.0.3",
            "stable",
            at(0),
            600,
            requests=20000,
            errors=60,
            status_4xx=100,
            business=biz,
            conversions={"/checkout": {"attempts": 100, "successes": 86}},
        )
        feed(
            "backend",
            "v2.1.0",
            "canary",
            at(0),
            600,
            requests=1000,
            errors=30,
            status_4xx=25,
            business={**biz, "order_value_total": 1920.0},
            conversions={
                "/checkout": {"attempts": 100, "successes": 81},
                "/signup": {"attempts": 100, "successes": 50},
            },
            system={"cpu_pct": 72, "memory_pct": 50, "db_connections_pct": 96},
        )
        clock.move_to(at(600))
        yield started


def test_the_comparison_has_the_contract_shape_and_levels(
    rollout: Rollout, team: dict[str, Any], token_for: Callable[..., str], api: Callable[..., Any]
) -> None:
    ComplaintReport.objects.create(
        service="backend", version="v2.1.0", count=3, reported_by="support", at=at(500)
    )
    engine.tick()
    body = api(token_for(team["fiona"], "read")).get(f"{URL}?version=v2.1.0").json()
    assert (body["version"], body["stable_version"], body["weight"]) == ("v2.1.0", "v2.0.3", 1)
    assert body["requests"] == {"canary": 60_000, "stable": 1_200_000}
    latency = body["latency_ms"]
    assert set(latency["canary"]) == {"p50", "p95", "p99"}
    assert latency["canary"]["p99"] == 433.3  # 300 + 200 x (990 - 980) / 15
    assert latency["levels"]["p95"] == "ok" and latency["levels"]["p99"] == "warning"
    assert body["error_rate"]["5m"] == {"canary": 0.03, "stable": 0.003, "level": "warning"}
    assert set(body["error_rate"]) == {"5m", "15m", "1h", "24h"}
    assert body["status_codes"]["4xx"] == {"canary": 0.025, "level": "warning"}
    assert body["status_codes"]["5xx"]["level"] == "critical"  # errors count as 5xx here: 3%
    checkout = body["conversions"]["/checkout"]
    assert checkout == {
        "canary": 0.81,
        "baseline": 0.855,
        "min_acceptable": 0.80,
        "level": "critical",
    }  # a 5.3% drop from baseline
    assert body["conversions"]["/signup"]["level"] == "critical"  # below min_acceptable
    assert body["conversions"]["/api/payments/process"]["level"] == "no_data"
    aov = body["margin"]["avg_order_value"]
    assert (aov["canary"], aov["stable"], aov["delta_pct"], aov["level"]) == (
        48.0,
        50.0,
        -4.0,
        "warning",
    )
    assert body["margin"]["refund_rate"]["level"] == "ok"
    assert body["system"]["cpu_pct"] == {"value": 72.0, "level": "warning"}
    assert body["system"]["db_connections_pct"]["level"] == "critical"
    assert body["system"]["queue_depth"]["level"] == "no_data"
    assert body["complaints"]["canary_1h"] == 3
    rules = {r["name"]: r["state"] for r in body["abort_rules"]}
    assert rules["db_connections"] == "pending" and rules["error_rate"] == "ok"


def test_too_few_requests_is_no_data(
    approved: Callable[..., Release],
    team: dict[str, Any],
    token_for: Callable[..., str],
    api: Callable[..., Any],
) -> None:
    lifecycle.rollout_start(release=approved(service="search", version="v1"), actor=team["erin"])
    body = api(token_for(team["fiona"], "read")).get(f"{URL}?version=v1&service=search").json()
    assert body["error_rate"]["5m"]["level"] == "no_data"
    assert body["latency_ms"]["levels"] == {"p50": "no_data", "p95": "no_data", "p99": "no_data"}


def test_refusals(
    rollout: Rollout, team: dict[str, Any], token_for: Callable[..., str], api: Callable[..., Any]
) -> None:
    client = api(token_for(team["fiona"], "read"))
    assert client.get(URL).status_code == 400
    assert client.get(f"{URL}?version=v9").status_code == 404
    assert client.get(f"{URL}?version=v2.1.0&service=frontend").status_code == 404
    assert api().get(f"{URL}?version=v2.1.0").status_code == 401
    assert api(token_for(team["olivia"], "read")).get(f"{URL}?version=v2.1.0").status_code == 403
