"""Where each service's figures come from: its Prometheus when its `metrics` setting is
`prometheus`, the push store otherwise. `ServiceSources` answers the metrics-source
calls for every service at once, asking each service's own source; the engine, the
phase gates, the comparison and the dashboard all read through it (`metrics_source()`).

Settings: PROMETHEUS_TIMEOUT_S bounds every query; PROMETHEUS_SCRAPE_INTERVAL_S (how
often Prometheus scrapes the services) sets the shortest window, four intervals.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings

from governance.choices import MetricsSource as Kind
from governance.models import Service
from rollouts.metrics.base import MetricsSource, WindowStats
from rollouts.metrics.prometheus import PrometheusSource
from rollouts.metrics.promql import Prometheus, QueryFailed
from rollouts.metrics.push import PushStore
from rollouts.models import Rollout


def metrics_problems(service: Service) -> list[str]:
    """What stops the service's metrics source from being read: a missing or bad URL."""
    url = service.prometheus_url
    if not url:
        return (
            ["--metrics prometheus needs --prometheus-url"]
            if service.metrics == Kind.PROMETHEUS
            else []
        )
    parts = urlsplit(url)
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:  # not a number, or out of range
        port_ok = False
    if (
        not port_ok
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.query
        or parts.fragment
    ):
        return [f"--prometheus-url {url}: give http(s)://HOST[:PORT][/PATH], with no query"]
    return []


def prometheus_check(url: str) -> str:
    """Whether the Prometheus at `url` answers now (it may come up later: not an error)."""
    try:
        version = Prometheus(url, settings.PROMETHEUS_TIMEOUT_S).version()
    except QueryFailed as exc:
        return f"Prometheus does not answer yet ({exc}): its figures are no data until it does"
    return f"Prometheus {version} answers at {url}"


class ServiceSources:
    """Every service's figures from its own source (sources shared per Prometheus URL)."""

    def __init__(
        self,
        push: MetricsSource | None = None,
        *,
        timeout: float | None = None,
        scrape_interval_s: float | None = None,
    ) -> None:
        self.push = push or PushStore()
        self.timeout = settings.PROMETHEUS_TIMEOUT_S if timeout is None else timeout
        self.scrape_interval_s = (
            settings.PROMETHEUS_SCRAPE_INTERVAL_S
            if scrape_interval_s is None
            else scrape_interval_s
        )
        self._services: dict[str, MetricsSource] = {}
        self._servers: dict[str, PrometheusSource] = {}

    def prometheus(self, url: str) -> PrometheusSource:
        if url not in self._servers:
            self._servers[url] = PrometheusSource(
                url, timeout=self.timeout, scrape_interval_s=self.scrape_interval_s
            )
        return self._servers[url]

    def _load(self, names: set[str]) -> None:
        missing = names - self._services.keys()
        found = Service.objects.filter(name__in=missing).values_list(
            "name", "metrics", "prometheus_url"
        )
        for name, metrics, url in found:
            if metrics == Kind.PROMETHEUS:
                self._services[name] = self.prometheus(url)
        for name in missing:
            self._services.setdefault(name, self.push)

    def source_for(self, service: str) -> MetricsSource:
        self._load({service})
        return self._services[service]

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
        return self.source_for(service).window(
            service=service, variant=variant, start=start, end=end, version=version, detail=detail
        )

    def rule_windows(
        self, rollouts: list[Rollout], now: datetime, detailed: set[int], counting: set[int]
    ) -> dict[int, dict[int, WindowStats]]:
        self._load({rollout.service for rollout in rollouts})
        groups: dict[int, tuple[MetricsSource, list[Rollout]]] = {}
        for rollout in rollouts:
            source = self._services[rollout.service]
            groups.setdefault(id(source), (source, []))[1].append(rollout)
        windows: dict[int, dict[int, WindowStats]] = {}
        for source, mine in groups.values():
            windows.update(source.rule_windows(mine, now, detailed, counting))
        return windows

    def series(
        self, rollout: Rollout, start: datetime, end: datetime, step: timedelta
    ) -> dict[str, list[WindowStats]]:
        return self.source_for(rollout.service).series(rollout, start, end, step)
