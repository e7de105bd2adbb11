"""The push store: samples services send to `POST /api/v1/metrics/` (validated and
written by `rollouts.metrics.ingest`), read back as window figures. The embedded
metrics source."""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Sum

from portal import clock
from rollouts.choices import Variant
from rollouts.metrics.base import WindowStats
from rollouts.models import ComplaintReport, MetricSample, Rollout

_DETAIL_FIELDS = (
    "requests",
    "errors",
    "status_4xx",
    "status_5xx",
    "complaints",
    "latency_le",
    "latency_counts",
    "conversions",
    "business",
    "system",
)


def _accumulate(stats: WindowStats, rows: Iterable[tuple[Any, ...]]) -> None:
    """Add sample rows (the _DETAIL_FIELDS, in order) into the window's figures."""
    merged: dict[float, int] = defaultdict(int)
    conversions: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    business: dict[str, float] = defaultdict(float)
    system_sum: dict[str, float] = defaultdict(float)
    system_n: dict[str, int] = defaultdict(int)
    for requests, errors, c4, c5, complaints, bounds, counts, conv, biz, system in rows:
        stats.requests += requests
        stats.errors += errors
        stats.status_4xx += c4
        stats.status_5xx += c5
        stats.complaints += complaints
        for bound, count in zip(bounds or [], counts or [], strict=True):
            merged[math.inf if bound == "+Inf" else float(bound)] += count
        for path, block in (conv or {}).items():
            conversions[path][0] += block["attempts"]
            conversions[path][1] += block["successes"]
        for key, value in (biz or {}).items():
            business[key] += value
        for key, value in (system or {}).items():
            system_sum[key] += value
            system_n[key] += 1
    stats.bounds = sorted(merged)
    stats.counts = [merged[bound] for bound in stats.bounds]
    stats.conversions = dict(conversions)
    stats.business = dict(business)
    stats.system = {key: system_sum[key] / system_n[key] for key in system_sum}


class PushStore:
    """Figures from the MetricSample table (and the complaints support counted)."""

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
        """Totals of the samples ending in (start, end]; with `detail`, merged histograms,
        conversions, business sums and system averages too (all from one query)."""
        samples = MetricSample.objects.filter(
            service=service, variant=variant, end__gt=start, end__lte=end
        )
        if version:
            samples = samples.filter(version=version)
        stats = WindowStats(start, end)
        if version:
            stats.complaints += reported_complaints(service, version, start, end)
        if not detail:
            totals = samples.aggregate(
                r=Sum("requests"),
                e=Sum("errors"),
                c4=Sum("status_4xx"),
                c5=Sum("status_5xx"),
                cp=Sum("complaints"),
            )
            stats.requests, stats.errors = totals["r"] or 0, totals["e"] or 0
            stats.status_4xx, stats.status_5xx = totals["c4"] or 0, totals["c5"] or 0
            stats.complaints += totals["cp"] or 0
            return stats
        _accumulate(stats, samples.values_list(*_DETAIL_FIELDS))
        return stats

    def windows(
        self,
        *,
        service: str,
        variant: str,
        spans: list[tuple[datetime, datetime]],
        version: str | None = None,
    ) -> list[WindowStats]:
        """Consecutive windows' detailed figures (complaint reports aside) in one query: as
        `window` for each span, which sources without this method are asked instead."""
        samples = MetricSample.objects.filter(
            service=service, variant=variant, end__gt=spans[0][0], end__lte=spans[-1][1]
        )
        if version:
            samples = samples.filter(version=version)
        ends, rows = [end for _, end in spans], defaultdict(list)
        for end, *values in samples.values_list("end", *_DETAIL_FIELDS):
            rows[bisect_left(ends, end)].append(tuple(values))
        found = [WindowStats(start, end) for start, end in spans]
        for index, stats in enumerate(found):
            _accumulate(stats, rows[index])
        return found

    def rule_windows(
        self, rollouts: list[Rollout], now: datetime, detailed: set[int], counting: set[int]
    ) -> dict[int, dict[int, WindowStats]]:
        services = {rollout.service for rollout in rollouts}
        rows: dict[tuple[str, str], list[tuple[datetime, tuple[Any, ...]]]] = defaultdict(list)
        if detailed:
            for service, version, end, *values in MetricSample.objects.filter(
                variant=Variant.CANARY,
                service__in=services,
                end__gt=now - timedelta(seconds=max(detailed)),
                end__lte=now,
            ).values_list("service", "version", "end", *_DETAIL_FIELDS):
                rows[(service, version)].append((end, tuple(values)))
        complaints = {seconds: self._complaints(services, now, seconds) for seconds in counting}
        windows: dict[int, dict[int, WindowStats]] = {}
        for rollout in rollouts:
            key = (rollout.service, rollout.version)
            mine: dict[int, WindowStats] = {}
            for seconds in detailed:
                start = now - timedelta(seconds=seconds)
                mine[seconds] = stats = WindowStats(start, now)
                _accumulate(stats, (values for end, values in rows[key] if end > start))
            for seconds in counting:
                mine[seconds] = WindowStats(
                    now - timedelta(seconds=seconds), now, complaints=complaints[seconds][key]
                )
            windows[rollout.pk] = mine
        return windows

    def series(
        self, rollout: Rollout, start: datetime, end: datetime, step: timedelta
    ) -> dict[str, list[WindowStats]]:
        rows = MetricSample.objects.filter(service=rollout.service, end__gt=start, end__lte=end)
        buckets: dict[tuple[int, str], list[tuple[Any, ...]]] = defaultdict(list)
        for variant, version, end_at, *values in rows.values_list(
            "variant", "version", "end", *_DETAIL_FIELDS
        ):
            if variant == Variant.CANARY and version != rollout.version:
                continue
            buckets[(int((end_at - start) / step), variant)].append(tuple(values))
        series: dict[str, list[WindowStats]] = {Variant.CANARY: [], Variant.STABLE: []}
        for (index, variant), values in sorted(buckets.items()):
            moment = start + step * (index + 1)
            series[variant].append(stats := WindowStats(moment - step, moment))
            _accumulate(stats, values)
        return series

    @staticmethod
    def _complaints(services: set[str], now: datetime, seconds: int) -> dict[tuple[str, str], int]:
        start = now - timedelta(seconds=seconds)
        sums: dict[tuple[str, str], int] = defaultdict(int)
        for row in (
            MetricSample.objects.filter(
                variant=Variant.CANARY, service__in=services, end__gt=start, end__lte=now
            )
            .values("service", "version")
            .annotate(n=Sum("complaints"))
        ):
            sums[(row["service"], row["version"])] += row["n"] or 0
        for row in (
            ComplaintReport.objects.filter(service__in=services, at__gt=start, at__lte=now)
            .values("service", "version")
            .annotate(n=Sum("count"))
        ):
            sums[(row["service"], row["version"])] += row["n"] or 0
        return sums


def reported_complaints(service: str, version: str, start: datetime, end: datetime) -> int:
    """What support counted about a version in (start, end] (admin → Complaint reports)."""
    return (
        ComplaintReport.objects.filter(
            service=service, version=version, at__gt=start, at__lte=end
        ).aggregate(n=Sum("count"))["n"]
        or 0
    )


def metrics_prune(*, batch: int = 10_000) -> int:
    """Delete raw samples older than METRICS_RETENTION_DAYS, a batch at a time."""
    cutoff = clock.now() - timedelta(days=settings.METRICS_RETENTION_DAYS)
    deleted = 0
    while True:
        ids = list(MetricSample.objects.filter(end__lt=cutoff).values_list("pk", flat=True)[:batch])
        if not ids:
            return deleted
        deleted += MetricSample.objects.filter(pk__in=ids).delete()[0]
