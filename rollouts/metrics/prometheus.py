"""A service's Prometheus as its metrics source: the figures of the push store, read with
PromQL instant queries at the window's end, one query per figure. Every query is data
(admin → Metric queries: a service's own query, else the default for every service),
with `{service}`, `{version}` and `{window}` filled in.

A variant is a version: the canary is the rollout's version, stable its stable_version
(of the service's latest rollout started by the window's end, when the caller names no
version). Counters are read with `increase()`, so a window is never shorter than four
scrape intervals (with fewer than two samples in it `increase()` answers nothing): a
shorter one, as compressed demo time asks for, is widened to that floor, and the
window's `start` says so. Latency is the classic histogram's buckets (`le` in seconds)
turned into the same histogram the push store keeps (ms, counts per bucket).

No data, never zero: a count query (requests, errors, 4xx, 5xx) that errors, times out,
answers NaN or nothing leaves the whole window without requests, with the reason in
`error`; a latency query that does leaves it without a histogram (no percentile). Once
Prometheus cannot be reached, the rest of this read does not wait for it again.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from rollouts.choices import MetricKey, Variant
from rollouts.metrics.base import WindowStats
from rollouts.metrics.promql import Prometheus, QueryFailed, Series
from rollouts.metrics.push import reported_complaints
from rollouts.models import MetricQuery, Rollout
from rollouts.seeds import DEFAULT_QUERIES

COUNTS = (MetricKey.REQUESTS, MetricKey.ERRORS, MetricKey.STATUS_4XX, MetricKey.STATUS_5XX)
MIN_SCRAPES = 4


def duration(seconds: float) -> str:
    """A PromQL duration: whole seconds as such (60s), else milliseconds (6500ms)."""
    ms = max(1, round(seconds * 1000))
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def promql(template: str, *, service: str, version: str, window_s: float) -> str:
    """The template with its placeholders filled in (names quoted for a PromQL string)."""

    def quoted(value: str) -> str:
        return value.replace("\\", "\\\\").replace('"', '\\"')

    return (
        template.replace("{service}", quoted(service))
        .replace("{version}", quoted(version))
        .replace("{window}", duration(window_s))
    )


def _count(value: float) -> int:
    return max(0, round(value))


def _histogram(cumulative: dict[float, float]) -> tuple[list[float], list[int]]:
    """Cumulative bucket counts by `le` (seconds) → bounds in ms and counts per bucket."""
    bounds, counts, below = sorted(cumulative), [], 0
    for bound in bounds:
        total = max(below, _count(cumulative[bound]))
        counts.append(total - below)
        below = total
    return [bound * 1000 for bound in bounds], counts


def _le(series: Series) -> float:
    if "le" not in series.labels:
        raise QueryFailed(f"a series without an le label: {series.labels}")
    try:
        return float(series.labels["le"])
    except ValueError:
        raise QueryFailed(f"le {series.labels['le']!r} is not a bound") from None


class PrometheusSource:
    """One Prometheus server's figures; `scrape_interval_s` sets the shortest window."""

    def __init__(self, url: str, *, timeout: float, scrape_interval_s: float) -> None:
        self.server = Prometheus(url, timeout)
        self.min_window_s = MIN_SCRAPES * scrape_interval_s
        self._queries: dict[str, dict[str, str]] = {}
        self._versions: dict[tuple[str, datetime], tuple[str, str]] = {}
        self._answers: dict[tuple[str, float], list[Series]] = {}
        self._down: QueryFailed | None = None

    def queries(self, service: str) -> dict[str, str]:
        """Metric key → PromQL template for the service: its own, else the default."""
        if service not in self._queries:
            merged = {metric: query for metric, (query, _text) in DEFAULT_QUERIES.items()}
            rows = MetricQuery.objects.filter(service__in=["", service]).order_by("service")
            merged.update(rows.values_list("metric", "query"))  # the service's own come last
            self._queries[service] = merged
        return self._queries[service]

    def window_s(self, start: datetime, end: datetime) -> float:
        return max(self.min_window_s, (end - start).total_seconds())

    def instant(self, promql: str, at: datetime) -> list[Series]:
        """One query (answers kept for this read: the same figure is often asked twice)."""
        key = (promql, at.timestamp())
        if key not in self._answers:
            if self._down is not None:
                raise self._down
            try:
                self._answers[key] = self.server.instant(promql, at)
            except QueryFailed as exc:
                if exc.unavailable:
                    self._down = exc
                raise
        return self._answers[key]

    def read(
        self, service: str, version: str, end: datetime, seconds: float, *, detail: bool = True
    ) -> WindowStats:
        """The version's figures over the `seconds` before `end` (no complaints)."""
        stats = WindowStats(end - timedelta(seconds=seconds), end)
        queries, problems = self.queries(service), []

        def ask(metric: str, required: bool = True) -> list[Series]:
            filled = promql(queries[metric], service=service, version=version, window_s=seconds)
            try:
                answer = self.instant(filled, end)
            except QueryFailed as exc:
                raise QueryFailed(f"{metric}: {exc}", unavailable=exc.unavailable) from None
            if required and not answer:
                raise QueryFailed(f"{metric}: no data (an empty answer)")
            return answer

        try:
            counts = {metric: _count(sum(s.value for s in ask(metric))) for metric in COUNTS}
        except QueryFailed as exc:
            stats.error, stats.unavailable = str(exc), exc.unavailable
            return stats
        stats.requests, stats.errors = counts[MetricKey.REQUESTS], counts[MetricKey.ERRORS]
        stats.status_4xx = counts[MetricKey.STATUS_4XX]
        stats.status_5xx = counts[MetricKey.STATUS_5XX]
        if detail:
            try:
                cumulative: dict[float, float] = defaultdict(float)
                for series in ask(MetricKey.LATENCY):
                    cumulative[_le(series)] += series.value
                stats.bounds, stats.counts = _histogram(cumulative)
            except QueryFailed as exc:
                problems.append(str(exc))
                stats.unavailable |= exc.unavailable
            try:
                attempts = ask(MetricKey.CHECKOUT_ATTEMPTS, required=False)
                successes = ask(MetricKey.CHECKOUT_SUCCESSES, required=False)
                won = {s.labels.get("path", ""): s.value for s in successes}
                for s in attempts:
                    path = s.labels.get("path", "")
                    stats.conversions[path] = [_count(s.value), _count(won.get(path, 0))]
            except QueryFailed as exc:
                problems.append(str(exc))
                stats.unavailable |= exc.unavailable
        stats.error = "; ".join(problems)
        return stats

    def _versions_at(self, service: str, end: datetime) -> tuple[str, str]:
        """(canary, stable) of the service's latest rollout started by `end`."""
        if (service, end) not in self._versions:
            row = (
                Rollout.objects.filter(service=service, started_at__lte=end)
                .order_by("-started_at")
                .values_list("version", "stable_version")
                .first()
            )
            self._versions[(service, end)] = row or ("", "")
        return self._versions[(service, end)]

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
        named = version
        if version is None:
            canary, stable = self._versions_at(service, end)
            version = canary if variant == Variant.CANARY else stable
        seconds = self.window_s(start, end)
        if not version:
            return WindowStats(
                end - timedelta(seconds=seconds),
                end,
                error=f"no {variant} version of {service} to ask Prometheus about",
            )
        stats = self.read(service, version, end, seconds, detail=detail)
        if named:
            stats.complaints += reported_complaints(service, named, stats.start, end)
        return stats

    def rule_windows(
        self, rollouts: list[Rollout], now: datetime, detailed: set[int], counting: set[int]
    ) -> dict[int, dict[int, WindowStats]]:
        windows: dict[int, dict[int, WindowStats]] = {}
        for rollout in rollouts:
            mine = windows[rollout.pk] = {}
            for seconds in detailed:
                start = now - timedelta(seconds=seconds)
                mine[seconds] = self.read(
                    rollout.service, rollout.version, now, self.window_s(start, now)
                )
            for seconds in counting:
                start = now - timedelta(seconds=seconds)
                mine[seconds] = WindowStats(
                    start,
                    now,
                    complaints=reported_complaints(rollout.service, rollout.version, start, now),
                )
        return windows

    def series(
        self, rollout: Rollout, start: datetime, end: datetime, step: timedelta
    ) -> dict[str, list[WindowStats]]:
        seconds = max(self.min_window_s, step.total_seconds())
        queries = self.queries(rollout.service)

        def run(metric: str, version: str) -> list[Series]:
            filled = promql(
                queries[metric], service=rollout.service, version=version, window_s=seconds
            )
            if self._down is not None:
                raise self._down
            return self.server.range(filled, min(start + step, end), end, step)

        series: dict[str, list[WindowStats]] = {}
        for variant, version in (
            (Variant.CANARY, rollout.version),
            (Variant.STABLE, rollout.stable_version),
        ):
            try:
                series[variant] = _buckets(run, version, step) if version else []
            except QueryFailed as exc:
                self._down = exc if exc.unavailable else self._down
                series[variant] = []
        return series

    def try_query(
        self, template: str, *, service: str, version: str, window_s: float
    ) -> dict[str, Any]:
        """Run a query now as the source would, for a person: the raw answer or the error."""
        seconds = max(self.min_window_s, window_s)
        filled = promql(template, service=service, version=version, window_s=seconds)
        found: dict[str, Any] = {"url": self.server.url, "promql": filled, "window_s": seconds}
        try:
            answer = self.server.answer("/api/v1/query", {"query": filled})
        except QueryFailed as exc:
            return {**found, "error": str(exc), "unavailable": exc.unavailable}
        return {**found, "result": json.dumps(answer, indent=2), "empty": not answer.get("result")}


def _buckets(
    run: Callable[[str, str], list[Series]], version: str, step: timedelta
) -> list[WindowStats]:
    """The range answers of requests, errors and latency, bucket by bucket."""

    def by_time(answer: list[Series]) -> dict[float, float]:
        sums: dict[float, float] = defaultdict(float)
        for one in answer:
            for at, value in one.points:
                sums[at] += value
        return sums

    requests, errors = (
        by_time(run(MetricKey.REQUESTS, version)),
        by_time(run(MetricKey.ERRORS, version)),
    )
    cumulative: dict[float, dict[float, float]] = defaultdict(lambda: defaultdict(float))
    for one in run(MetricKey.LATENCY, version):
        for at, value in one.points:
            cumulative[at][_le(one)] += value
    buckets = []
    for at in sorted(requests):
        end = datetime.fromtimestamp(at, tz=UTC)
        stats = WindowStats(end - step, end, requests=_count(requests[at]))
        stats.errors = _count(errors.get(at, 0))
        stats.bounds, stats.counts = _histogram(cumulative.get(at, {}))
        buckets.append(stats)
    return buckets
