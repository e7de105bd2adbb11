"""A traffic simulator for the demo: every active rollout gets stable and canary samples
shaped like real traffic (split by the current weight, a latency histogram, checkout
conversions, payments, system load). Services named in `failing` start erroring once
their canary reaches 5%, so the error-rate rule rolls them back."""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta
from typing import Any

from portal import clock
from rollouts.choices import ACTIVE_STATES
from rollouts.metrics.ingest import ingest
from rollouts.models import Rollout, TrafficSplit

STABLE_RPS = 2000
BOUNDS = [25, 50, 100, 200, 300, 500, 1000, "+Inf"]
HEALTHY = [0.10, 0.30, 0.40, 0.15, 0.03, 0.015, 0.005, 0.0]


def _binomial(rnd: random.Random, n: int, p: float) -> int:
    """Successes out of n tries: unbiased at any n (normal approximation for large n)."""
    if n <= 200:
        return sum(rnd.random() < p for _ in range(n))
    return min(n, max(0, round(rnd.gauss(n * p, math.sqrt(n * p * (1 - p))))))


def _sample(
    rnd: random.Random,
    service: str,
    version: str,
    variant: str,
    start: datetime,
    end: datetime,
    requests: int,
    error_rate: float,
) -> dict[str, Any]:
    errors = sum(1 for _ in range(min(requests, 5000)) if rnd.random() < error_rate)
    errors = round(errors * requests / min(requests, 5000)) if requests > 5000 else errors
    counts = [round(requests * share) for share in HEALTHY]
    attempts = max(1, requests // 10)
    orders = max(1, requests // 50)
    return {
        "service": service,
        "version": version,
        "variant": variant,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "requests": requests,
        "errors": errors,
        "status_4xx": requests // 100,
        "status_5xx": errors,
        "latency_ms": {"le": BOUNDS, "counts": counts},
        "conversions": {
            "/checkout": {
                "attempts": attempts,
                "successes": _binomial(rnd, attempts, 0.86),
            }
        },
        "business": {
            "orders": orders,
            "order_value_total": round(orders * rnd.uniform(51, 53), 2),
            "payments_attempted": orders,
            "payments_failed": 0,
            "refunds": 0,
            "processing_cost_total": round(orders * 0.3, 2),
        },
        "system": {
            "cpu_pct": round(rnd.uniform(35, 50), 1),
            "memory_pct": 55,
            "disk_io_pct": 12,
            "db_connections_pct": 30,
            "queue_depth": 12,
        },
        "complaints": 0,
    }


def simulate(
    *, now: datetime, period_s: float, failing: set[str], rnd: random.Random | None = None
) -> int:
    """Push one period's samples for every active rollout; returns how many."""
    rnd = rnd or random.Random()  # noqa: S311  (simulated traffic, not secrets)
    start = now - timedelta(seconds=period_s)
    # Time runs CANARY_TIME_SCALE times faster, and so does traffic: at the demo's 60, a
    # second carries a minute of requests, so a 10-second phase has a 10-minute phase's data.
    requests = STABLE_RPS * period_s / clock.scaled(1).total_seconds()
    samples = []
    for rollout in Rollout.objects.filter(state__in=ACTIVE_STATES):
        split = TrafficSplit.objects.filter(service=rollout.service).first()
        weight = split.weight if split and split.canary_version else 0
        stable = round(requests * (100 - weight) / 100)
        canary = round(requests * weight / 100)
        bad = rollout.service in failing and weight >= 5
        if stable:
            samples.append(
                _sample(
                    rnd,
                    rollout.service,
                    rollout.stable_version or "stable",
                    "stable",
                    start,
                    now,
                    stable,
                    0.002,
                )
            )
        if canary:
            samples.append(
                _sample(
                    rnd,
                    rollout.service,
                    rollout.version,
                    "canary",
                    start,
                    now,
                    canary,
                    0.12 if bad else 0.002,
                )
            )
    return ingest({"samples": samples}) if samples else 0
