"""A real Prometheus scraping three demo upstreams of `backend` every second, with a paced
load keeping their counters moving: stable v2.0.0, a healthy canary v2.1.0 and a failing
canary v2.2.0 (10% of answers a 500). Started once for the package."""

from __future__ import annotations

import subprocess
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.metrics_process import (
    Prometheus,
    paced_load,
    running_prometheus,
    upstream_command,
    wait_until,
)
from tests.routers.conftest import require
from tests.servers import free_port, serving

STABLE, CANARY, FAILING = "v2.0.0", "v2.1.0", "v2.2.0"
ERROR_RATES = {STABLE: 0.0, CANARY: 0.0, FAILING: 0.1}
RATES = {STABLE: 20.0, CANARY: 20.0, FAILING: 50.0}  # requests a second
LATENCY_MS = 0  # every answer in the first bucket (up to 5 ms), whichever version


@dataclass(frozen=True)
class Served:
    """What one upstream counted itself (its own /metrics)."""

    requests: int
    errors: int
    buckets: dict[float, float]  # cumulative count by le (seconds)

    def __sub__(self, earlier: Served) -> Served:
        return Served(
            self.requests - earlier.requests,
            self.errors - earlier.errors,
            {le: count - earlier.buckets.get(le, 0) for le, count in self.buckets.items()},
        )


@dataclass(frozen=True)
class Stack:
    prometheus: Prometheus
    ports: dict[str, int]
    answers: dict[int, Counter[int]]

    def served(self, version: str) -> Served:
        address = f"http://127.0.0.1:{self.ports[version]}/metrics"
        with urllib.request.urlopen(address, timeout=5) as response:
            text = response.read().decode()
        requests = errors = 0
        buckets: dict[float, float] = defaultdict(float)
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "http_requests_total":
                    requests += int(sample.value)
                    errors += int(sample.value) if sample.labels["code"].startswith("5") else 0
                elif sample.name == "http_request_duration_seconds_bucket":
                    buckets[float(sample.labels["le"])] += sample.value
        return Served(requests, errors, dict(buckets))

    def scraped_after(self, moment: float) -> bool:
        """Prometheus holds a sample of every upstream taken after `moment` (unix time)."""
        newest = self.prometheus.query("min(timestamp(up))")
        return bool(newest) and float(newest[0]["value"][1]) > moment


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    require("prometheus")
    ports = {version: free_port() for version in RATES}
    with ExitStack() as started:
        for version, port in ports.items():
            command = upstream_command(
                port, version, error_rate=ERROR_RATES[version], latency_ms=LATENCY_MS
            )
            started.enter_context(
                serving(command, port, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            )
        prometheus = started.enter_context(
            running_prometheus(
                tmp_path_factory.mktemp("prometheus"),
                [f"127.0.0.1:{port}" for port in ports.values()],
                interval_s=1,
            )
        )
        answers = started.enter_context(
            paced_load({port: RATES[version] for version, port in ports.items()})
        )

        def counted(version: str) -> Any:
            query = f'sum(increase(http_requests_total{{version="{version}"}}[4s]))'
            return prometheus.value(query)

        wait_until(lambda: all(counted(version) for version in ports), 30, "traffic scraped")
        yield Stack(prometheus, ports, answers)


@pytest.fixture
def prometheus_settings(settings: Any) -> None:
    """Scrapes every second; a window counts from 20 requests (the upstreams serve tens a
    second, so a few seconds' window holds about a hundred)."""
    settings.PROMETHEUS_SCRAPE_INTERVAL_S = 1
    settings.PROMETHEUS_TIMEOUT_S = 2
    settings.CANARY_MIN_REQUESTS = 20
