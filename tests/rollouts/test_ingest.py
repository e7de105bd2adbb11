"""Metric batches: the contract's example accepted; a bad sample refuses the whole batch."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from rollouts.metrics.base import histogram_quantile
from rollouts.models import MetricSample

pytestmark = pytest.mark.django_db

SAMPLE = {
    "service": "backend",
    "version": "v2.1.0",
    "variant": "canary",
    "start": "2026-11-26T14:00:00Z",
    "end": "2026-11-26T14:00:10Z",
    "requests": 1000,
    "errors": 12,
    "status_4xx": 5,
    "status_5xx": 7,
    "latency_ms": {
        "le": [25, 50, 100, 200, 300, 500, 1000, "+Inf"],
        "counts": [100, 300, 400, 150, 30, 15, 5, 0],
    },
    "conversions": {"/checkout": {"attempts": 100, "successes": 85}},
    "business": {
        "orders": 40,
        "order_value_total": 2090.5,
        "payments_attempted": 41,
        "payments_failed": 0,
        "refunds": 1,
        "processing_cost_total": 12.3,
    },
    "system": {
        "cpu_pct": 41,
        "memory_pct": 55,
        "disk_io_pct": 12,
        "db_connections_pct": 30,
        "queue_depth": 12,
    },
    "complaints": 0,
}


@pytest.fixture
def client(engineer: Any, token_for: Callable[..., str], api: Callable[..., Any]) -> Any:
    return api(token_for(engineer, "metrics:write"))


def test_the_contract_example_is_accepted(client: Any) -> None:
    minimal = {
        k: SAMPLE[k]
        for k in ("service", "version", "variant", "start", "end", "requests", "errors")
    }
    response = client.post("/api/v1/metrics/", {"samples": [SAMPLE, minimal]}, format="json")
    assert response.status_code == 202
    assert response.json() == {"accepted": 2}
    assert MetricSample.objects.count() == 2


def broken(index_field: str, value: Any) -> dict[str, Any]:
    sample = copy.deepcopy(SAMPLE)
    target = sample
    *path, last = index_field.split(".")
    for part in path:
        target = target[part]
    if value is KeyError:
        del target[last]
    else:
        target[last] = value
    return sample


@pytest.mark.parametrize(
    ("sample", "field"),
    [
        (broken("errors", 1001), "errors"),
        (broken("requests", -1), "requests"),
        (broken("requests", 1.5), "requests"),
        (broken("requests", "10"), "requests"),
        (broken("errors", KeyError), "errors"),
        (broken("variant", "blue"), "variant"),
        (broken("end", "2026-11-26T14:00:00Z"), "end"),
        (broken("start", "yesterday"), "start"),
        (broken("start", "2026-11-26T14:00:00"), "start"),
        (broken("latency_ms.le", [25, 50, 50, 200, 300, 500, 1000, "+Inf"]), "latency_ms.le"),
        (broken("latency_ms.le", [25, 50, 100, 200, 300, 500, 1000, 2000]), "latency_ms.le"),
        (broken("latency_ms.counts", [1, 2]), "latency_ms.counts"),
        (broken("conversions./checkout.successes", 101), "conversions./checkout.successes"),
        (broken("system.cpu_pct", 140), "system.cpu_pct"),
        (broken("business.payments_failed", 42), "business.payments_failed"),
        (broken("business.bitcoin", 1), "business.bitcoin"),
    ],
)
def test_a_bad_sample_is_named_and_nothing_is_stored(
    client: Any, sample: dict[str, Any], field: str
) -> None:
    response = client.post("/api/v1/metrics/", {"samples": [SAMPLE, SAMPLE, sample]}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["detail"].startswith(f"Sample 2: {field}")
    assert field in body["errors"]["samples"]["2"]
    assert not MetricSample.objects.exists()


@pytest.mark.parametrize("body", [{}, {"samples": []}, {"samples": "x"}, [SAMPLE]])
def test_malformed_batches_are_400(client: Any, body: Any) -> None:
    assert client.post("/api/v1/metrics/", body, format="json").status_code == 400


def test_ingest_needs_the_scope(
    engineer: Any, token_for: Callable[..., str], api: Callable[..., Any], outsider: Any
) -> None:
    batch = {"samples": [SAMPLE]}
    assert api().post("/api/v1/metrics/", batch, format="json").status_code == 401
    assert (
        api(token_for(engineer, "read")).post("/api/v1/metrics/", batch, format="json").status_code
        == 403
    )
    assert (
        api(token_for(outsider, "metrics:write"))
        .post("/api/v1/metrics/", batch, format="json")
        .status_code
        == 403
    )


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        (0.5, 50 + 50 * (500 - 400) / 400),  # rank 500: inside (50, 100], 100 of 400 in
        (0.95, 100 + 100 * (950 - 800) / 150),  # rank 950 ends the (100, 200] bucket
        (0.99, 300 + 200 * (990 - 980) / 15),
        (0.1, 25.0),
    ],
)
def test_percentiles_as_histogram_quantile(q: float, expected: float) -> None:
    bounds = [25, 50, 100, 200, 300, 500, 1000, float("inf")]
    counts = [100, 300, 400, 150, 30, 15, 5, 0]
    assert histogram_quantile(q, bounds, counts) == pytest.approx(expected)


def test_quantile_in_the_inf_bucket_is_the_highest_finite_bound() -> None:
    assert histogram_quantile(0.99, [100, float("inf")], [1, 99]) == 100
    assert histogram_quantile(0.5, [100, float("inf")], [0, 0]) is None


def test_old_samples_are_pruned_after_the_retention(settings: Any) -> None:
    import time_machine

    from rollouts.metrics.push import metrics_prune
    from tests.rollouts.conftest import at, feed

    settings.METRICS_RETENTION_DAYS = 30
    feed("backend", "v1", "canary", at(0), 100)
    feed("backend", "v1", "canary", at(86_400), 100)
    with time_machine.travel(at(30 * 86_400 + 100), tick=False):
        # samples end at 10 s ... 100 s; the cutoff is 100 s: the last one is exactly 30 days old
        assert metrics_prune(batch=3) == 9
    assert MetricSample.objects.count() == 11
    assert MetricSample.objects.earliest("end").end == at(100)
