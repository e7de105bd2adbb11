"""The Prometheus source against a real Prometheus scraping real upstreams: it reads what
they served (within scrape granularity), an error-rate canary as one, and anything it
cannot read as no data with the reason, never zero."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.core.management import call_command

from governance.models import Service
from rollouts.analysis.rules import rule_value
from rollouts.metrics.base import WindowStats, histogram_quantile, metrics_source
from rollouts.models import AbortRule, MetricQuery
from tests.metrics.conftest import CANARY, FAILING, RATES, STABLE, Served, Stack
from tests.metrics_process import wait_until
from tests.servers import closed_port

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("prometheus_settings")]


def use_prometheus(url: str) -> None:
    call_command("service_set", "backend", "--metrics=prometheus", f"--prometheus-url={url}")


def read(version: str, start: datetime, end: datetime, variant: str = "canary") -> WindowStats:
    return metrics_source().window(
        service="backend", variant=variant, version=version, start=start, end=end
    )


def p95_ms(served: Served) -> float | None:
    bounds = sorted(served.buckets)
    below, counts = 0.0, []
    for bound in bounds:
        counts.append(round(served.buckets[bound] - below))
        below = served.buckets[bound]
    return histogram_quantile(0.95, [bound * 1000 for bound in bounds], counts)


def test_it_reads_requests_errors_and_p95_as_the_upstreams_served_them(stack: Stack) -> None:
    use_prometheus(stack.prometheus.url)
    versions = (STABLE, CANARY, FAILING)
    start, before = time.time(), {version: stack.served(version) for version in versions}
    wait_until(lambda: time.time() >= start + 6, 10, "six seconds of traffic")
    end, after = time.time(), {version: stack.served(version) for version in versions}
    wait_until(lambda: stack.scraped_after(end), 10, "a scrape after the window")
    for version in versions:
        served = after[version] - before[version]
        stats = read(version, datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC))
        assert stats.error == "" and not stats.unavailable
        # increase() extrapolates from the samples inside the window: within a scrape's
        # worth of requests at the paced rate.
        assert abs(stats.requests - served.requests) <= 0.15 * served.requests + 5, version
        assert stats.status_5xx == stats.errors and stats.status_4xx == 0
        assert stats.error_rate is not None
        assert abs(stats.error_rate - served.errors / served.requests) <= 0.03, version
        p95, expected = stats.quantile(0.95), p95_ms(served)
        assert p95 is not None and expected is not None
        assert 0 < p95 <= 5 and abs(p95 - expected) <= 0.5, version
    failing = read(FAILING, datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC))
    assert failing.error_rate is not None and 0.05 <= failing.error_rate <= 0.16
    assert failing.requests > 2 * read(STABLE, failing.start, failing.end).requests


def test_an_error_rate_canary_reads_as_one_and_its_rules_see_it(stack: Stack) -> None:
    use_prometheus(stack.prometheus.url)
    now = datetime.now(UTC)
    stats = read(FAILING, now - timedelta(seconds=5), now)
    rule = AbortRule.objects.get(name="error_rate")
    assert stats.enough
    value = rule_value(rule, stats, [])
    assert value is not None and value >= rule.threshold
    healthy = read(CANARY, now - timedelta(seconds=5), now)
    assert rule_value(rule, healthy, []) == 0.0  # zero errors, read as zero: there was traffic


def test_a_short_window_is_widened_to_four_scrape_intervals(stack: Stack, settings: Any) -> None:
    use_prometheus(stack.prometheus.url)
    now = datetime.now(UTC)
    stats = read(CANARY, now - timedelta(seconds=1), now)
    assert stats.end - stats.start == timedelta(seconds=4)
    assert stats.requests >= 4 * RATES[CANARY] * 0.5
    settings.PROMETHEUS_SCRAPE_INTERVAL_S = 15  # Prometheus' default: a window of 60 s at least
    stats = read(CANARY, now - timedelta(seconds=10), now)
    assert stats.end - stats.start == timedelta(seconds=60)
    assert stats.requests > 0


def no_data(stats: WindowStats, *words: str) -> None:
    assert stats.requests == 0 and not stats.enough
    assert stats.error_rate is None and stats.quantile(0.95) is None
    assert rule_value(AbortRule.objects.get(name="error_rate"), stats, []) is None
    for word in words:
        assert word in stats.error


def test_a_query_prometheus_refuses_or_that_gives_nan_or_nothing_is_no_data(stack: Stack) -> None:
    use_prometheus(stack.prometheus.url)
    now = datetime.now(UTC)
    window = (now - timedelta(seconds=5), now)
    no_data(read("v9.9.9", *window), "requests: no data (an empty answer)")
    query = MetricQuery.objects.create(
        service="backend",
        metric="errors",
        query='sum(increase(http_requests_total{version="{version}"}[{window}])',
    )
    no_data(read(CANARY, *window), "errors: bad_data", "HTTP 400")
    query.query = 'sum(increase(http_requests_total{version="{version}"}[{window}])) * 0 / 0'
    query.save()
    no_data(read(CANARY, *window), "errors: the query gave nan")
    assert not read(CANARY, *window).unavailable
    query.delete()
    MetricQuery.objects.create(
        service="backend", metric="latency_buckets", query='no_such_histogram{version="{version}"}'
    )
    stats = read(CANARY, *window)
    assert stats.enough and stats.quantile(0.95) is None  # counts, but no percentile
    assert "latency_buckets: no data (an empty answer)" in stats.error


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


def test_an_unreachable_or_silent_prometheus_is_no_data_and_said_so(
    silent_port: int, settings: Any
) -> None:
    now = datetime.now(UTC)
    use_prometheus(f"http://127.0.0.1:{closed_port()}")
    stats = read(CANARY, now - timedelta(seconds=60), now)
    no_data(stats, "requests: http://127.0.0.1:")
    assert stats.unavailable

    settings.PROMETHEUS_TIMEOUT_S = 0.5
    use_prometheus(f"http://127.0.0.1:{silent_port}")
    source, started = metrics_source(), time.monotonic()
    first = source.window(service="backend", variant="canary", version=CANARY, start=now, end=now)
    again = source.window(service="backend", variant="stable", version=STABLE, start=now, end=now)
    elapsed = time.monotonic() - started
    for stats in (first, again):
        no_data(stats, "no answer within 0.5s")
        assert stats.unavailable
    assert elapsed < 1.5  # once it did not answer, the rest of the read does not wait again


def test_each_service_reads_its_own_source(stack: Stack) -> None:
    from tests.rollouts.conftest import feed

    use_prometheus(stack.prometheus.url)
    now = datetime.now(UTC)
    feed("checkout", "v1.0.0", "canary", now - timedelta(seconds=50), 50, requests=7)
    source = metrics_source()
    pushed = source.window(
        service="checkout",
        variant="canary",
        version="v1.0.0",
        start=now - timedelta(seconds=60),
        end=now,
    )
    assert (pushed.requests, pushed.error) == (35, "")
    assert read(CANARY, now - timedelta(seconds=5), now).requests > 0
    Service.objects.filter(name="backend").update(metrics="push")
    assert read(CANARY, now - timedelta(seconds=5), now).requests == 0  # nothing was pushed
