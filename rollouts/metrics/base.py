"""The engine's eyes: a metrics source gives window figures.

A source answers two questions: the figures of one service's variant over a window
(`window`), and, for a tick, the canary figures of every live rollout over each trailing
window the abort rules use (`rule_windows`, in a few queries for all rollouts at once);
the dashboard also asks for a rollout's figures bucket by bucket (`series`). The portal's
own push store (`rollouts.metrics.push`) and a service's Prometheus
(`rollouts.metrics.prometheus`, PromQL over its HTTP API) both answer; which one a
service reads is its `metrics` setting (`rollouts.metrics.selection`).

Both give latency as a histogram (bounds in ms, counts per bucket), so percentiles and
statistics work the same whatever the source. A figure the source could not read is no
data, never zero: its window says why in `error` (and `unavailable` when the source
could not be reached at all).

Percentiles come from merged latency histograms, estimated as Prometheus'
`histogram_quantile` does: find the bucket where the cumulative count reaches
q x total and interpolate linearly between its bounds (the lowest bucket starts at 0);
a quantile in the `+Inf` bucket is the highest finite bound; no requests → no value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from django.conf import settings
from django.utils.module_loading import import_string

if TYPE_CHECKING:
    from rollouts.models import Rollout

# Fewer attempts than this make a conversion rate noise, not a measurement.
MIN_CONVERSION_ATTEMPTS = 100


def histogram_quantile(q: float, bounds: list[float], counts: list[int]) -> float | None:
    total = sum(counts)
    if total <= 0:
        return None
    rank = q * total
    cumulative = 0.0
    finite = [b for b in bounds if not math.isinf(b)]
    for index, (upper, count) in enumerate(zip(bounds, counts, strict=True)):
        if cumulative + count >= rank and count > 0:
            if math.isinf(upper):
                return finite[-1] if finite else None
            lower = bounds[index - 1] if index > 0 else 0.0
            return lower + (upper - lower) * (rank - cumulative) / count
        cumulative += count
    return finite[-1] if finite else None


@dataclass
class WindowStats:
    """One window's figures. `unavailable` (with `error` saying why) when the source could
    not be asked (unreachable, an error, a timeout): no data, never a pass."""

    start: datetime
    end: datetime
    requests: int = 0
    errors: int = 0
    status_4xx: int = 0
    status_5xx: int = 0
    complaints: int = 0
    bounds: list[float] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    conversions: dict[str, list[int]] = field(default_factory=dict)
    business: dict[str, float] = field(default_factory=dict)
    system: dict[str, float] = field(default_factory=dict)
    # What could not be read (empty when everything was), and whether the source itself
    # could not be reached (refused, timed out, answered 5xx).
    error: str = ""
    unavailable: bool = False

    @property
    def enough(self) -> bool:
        return not self.unavailable and self.requests >= settings.CANARY_MIN_REQUESTS

    def rate(self, count: int) -> float | None:
        return count / self.requests if self.requests else None

    @property
    def error_rate(self) -> float | None:
        return self.rate(self.errors)

    @property
    def rps(self) -> float:
        return self.requests / max(1.0, (self.end - self.start).total_seconds())

    def quantile(self, q: float) -> float | None:
        return histogram_quantile(q, self.bounds, self.counts) if self.counts else None

    def conversion_rate(self, path: str) -> float | None:
        attempts, successes = self.conversions.get(path, (0, 0))
        return successes / attempts if attempts >= MIN_CONVERSION_ATTEMPTS else None


class MetricsSource(Protocol):
    def window(
        self,
        *,
        service: str,
        variant: str,
        start: datetime,
        end: datetime,
        version: str | None = None,
        detail: bool = True,
    ) -> WindowStats:
        """Totals over (start, end]; with `detail`, histograms, conversions, business sums
        and system averages too."""
        ...

    def rule_windows(
        self, rollouts: list[Rollout], now: datetime, detailed: set[int], counting: set[int]
    ) -> dict[int, dict[int, WindowStats]]:
        """For each rollout (by id), its canary's figures over each trailing window (in
        seconds, ending now): `detailed` windows in full, `counting` ones complaints only."""
        ...

    def series(
        self, rollout: Rollout, start: datetime, end: datetime, step: timedelta
    ) -> dict[str, list[WindowStats]]:
        """Per variant, the rollout's figures bucket by bucket (`step` long, ending after
        `start`, up to `end`): requests, errors and the latency histogram; buckets without
        figures are left out."""
        ...


def metrics_source() -> MetricsSource:
    return import_string(str(settings.CANARY_METRICS_SOURCE))()
