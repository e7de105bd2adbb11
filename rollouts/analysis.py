"""The engine's one analysis function: from stored metric samples to a verdict.

`analyse(rollout, now)` returns what the engine acts on: a verdict
(healthy/warning/failing/inconclusive), an action (none/pause/rollback), whether the
current phase's validation passed, and every input it used (values, thresholds,
windows) so that the rollout page and the incident report can say why.

Percentiles come from merged latency histograms, estimated as Prometheus'
`histogram_quantile` does: find the bucket where the cumulative count reaches
q x total and interpolate linearly between its bounds (the lowest bucket starts at
0); a quantile in the `+Inf` bucket is the highest finite bound; no requests → None.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Sum

from portal import clock
from rollouts.choices import Variant, Verdict
from rollouts.models import MetricSample, Rollout


def histogram_quantile(q: float, bounds: list[float], counts: list[int]) -> float | None:
    total = sum(counts)
    if total <= 0:
        return None
    rank = q * total
    cumulative = 0.0
    for index, (upper, count) in enumerate(zip(bounds, counts, strict=True)):
        if cumulative + count >= rank and count > 0:
            if math.isinf(upper):
                finite = [b for b in bounds if not math.isinf(b)]
                return finite[-1] if finite else None
            lower = bounds[index - 1] if index > 0 else 0.0
            return lower + (upper - lower) * (rank - cumulative) / count
        cumulative += count
    finite = [b for b in bounds if not math.isinf(b)]
    return finite[-1] if finite else None


@dataclass
class WindowStats:
    requests: int = 0
    errors: int = 0
    status_5xx: int = 0
    bounds: list[float] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    def quantile(self, q: float) -> float | None:
        return histogram_quantile(q, self.bounds, self.counts) if self.counts else None


def window_stats(
    *, service: str, variant: str, start: datetime, end: datetime, version: str | None = None
) -> WindowStats:
    """Totals and a merged latency histogram of the samples ending in (start, end]."""
    samples = MetricSample.objects.filter(
        service=service, variant=variant, end__gt=start, end__lte=end
    )
    if version:
        samples = samples.filter(version=version)
    totals = samples.aggregate(r=Sum("requests"), e=Sum("errors"), s=Sum("status_5xx"))
    stats = WindowStats(totals["r"] or 0, totals["e"] or 0, totals["s"] or 0)
    merged: dict[float, int] = {}
    for bounds, counts in samples.exclude(latency_le=None).values_list(
        "latency_le", "latency_counts"
    ):
        for bound, count in zip(bounds or [], counts or [], strict=True):
            key = math.inf if bound == "+Inf" else float(bound)
            merged[key] = merged.get(key, 0) + count
    stats.bounds = sorted(merged)
    stats.counts = [merged[bound] for bound in stats.bounds]
    return stats


@dataclass
class Analysis:
    at: datetime
    verdict: str
    action: str = "none"  # none | pause | rollback
    reason: str = ""
    rule: str = ""
    validation_passed: bool = False
    rules: list[dict[str, Any]] = field(default_factory=list)
    inputs: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["at"] = self.at.isoformat().replace("+00:00", "Z")
        return data


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def analyse(rollout: Rollout, now: datetime) -> Analysis:
    """Error rate ≥ 5% over the last 5 minutes rolls back; a phase passes validation
    when the canary served enough requests since it began, with an error rate ≤ 0.5%
    and p95 within 10% of stable's (or ≤ 300 ms without stable data)."""
    minimum = settings.CANARY_MIN_REQUESTS
    recent_start = now - clock.scaled(300)
    recent = window_stats(
        service=rollout.service,
        variant=Variant.CANARY,
        version=rollout.version,
        start=recent_start,
        end=now,
    )
    phase = window_stats(
        service=rollout.service,
        variant=Variant.CANARY,
        version=rollout.version,
        start=rollout.phase_started_at,
        end=now,
    )
    stable = window_stats(
        service=rollout.service, variant=Variant.STABLE, start=rollout.phase_started_at, end=now
    )
    p95, stable_p95 = phase.quantile(0.95), stable.quantile(0.95)
    p95_limit = stable_p95 * 1.10 if stable_p95 is not None else 300.0
    inputs = {
        "windows": {
            "recent": [recent_start.isoformat(), now.isoformat()],
            "phase": [rollout.phase_started_at.isoformat(), now.isoformat()],
        },
        "recent": {"requests": recent.requests, "error_rate": _round(recent.error_rate)},
        "phase": {
            "requests": phase.requests,
            "error_rate": _round(phase.error_rate),
            "p95_ms": _round(p95, 1),
        },
        "stable": {"requests": stable.requests, "p95_ms": _round(stable_p95, 1)},
        "thresholds": {
            "rollback_error_rate": 0.05,
            "max_error_rate": 0.005,
            "p95_limit_ms": _round(p95_limit, 1),
            "min_requests": minimum,
        },
    }
    result = Analysis(at=now, verdict=Verdict.INCONCLUSIVE, inputs=inputs)
    firing = recent.requests >= minimum and (recent.error_rate or 0) >= 0.05
    result.rules = [
        {
            "name": "error_rate",
            "state": "firing" if firing else "ok",
            "since": None,
            "value": _round(recent.error_rate),
            "threshold": 0.05,
        }
    ]
    if firing:
        result.verdict, result.action, result.rule = Verdict.FAILING, "rollback", "error_rate"
        result.reason = (
            f"Canary error rate {recent.error_rate:.2%} ≥ 5% over the last 5 minutes "
            f"({recent.errors} of {recent.requests} requests)"
        )
        return result
    if phase.requests < minimum:
        result.reason = f"{phase.requests} canary requests this phase; {minimum} needed"
        return result
    error_rate = phase.error_rate or 0.0
    result.validation_passed = error_rate <= 0.005 and (p95 is None or p95 <= p95_limit)
    degraded = error_rate > 0.01 or (p95 is not None and p95 > 250)
    result.verdict = (
        Verdict.WARNING if degraded or not result.validation_passed else Verdict.HEALTHY
    )
    result.reason = (
        f"error rate {error_rate:.2%}, p95 {p95 if p95 is None else round(p95)} ms "
        f"(limit {round(p95_limit)} ms)"
    )
    return result


def empty_analysis(now: datetime | None = None) -> Analysis:
    return Analysis(at=now or clock.now(), verdict=Verdict.INCONCLUSIVE)


def stable_window(service: str, start: datetime, minutes: int = 10) -> WindowStats:
    return window_stats(
        service=service, variant=Variant.STABLE, start=start, end=start + timedelta(minutes=minutes)
    )
