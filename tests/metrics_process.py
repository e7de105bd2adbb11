"""A real Prometheus run by the current user in a temporary directory, scraping the
demo upstreams (`python -m rollouts.upstream`, which serve `/metrics`), and a paced load
that keeps their counters moving: for the metrics-source tests and the benchmarks
(standard library only)."""

from __future__ import annotations

import http.client
import json
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.servers import free_port

CONFIG = """global:
  scrape_interval: {interval}
  scrape_timeout: {interval}
  evaluation_interval: {interval}
scrape_configs:
  - job_name: services
    static_configs:
      - targets: [{targets}]
"""


def prometheus_binary() -> str | None:
    return shutil.which("prometheus") or shutil.which("prometheus", path="/usr/bin:/usr/sbin")


def wait_until(condition: Callable[[], Any], timeout: float, what: str, every: float = 0.05) -> Any:
    """Poll `condition` until it gives something truthy (returned), at most `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        found = condition()
        if found:
            return found
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what}: not within {timeout}s")
        time.sleep(every)


@dataclass(frozen=True)
class Prometheus:
    url: str
    directory: Path
    process: subprocess.Popen[bytes]

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query now: the result list (raises on an error answer)."""
        address = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(address, timeout=5) as response:
            body = json.load(response)
        if body["status"] != "success":
            raise RuntimeError(body)
        return body["data"]["result"]

    def value(self, promql: str) -> float | None:
        """The first result's value, None when the answer is empty."""
        result = self.query(promql)
        return float(result[0]["value"][1]) if result else None

    def targets_up(self) -> bool:
        with urllib.request.urlopen(f"{self.url}/api/v1/targets", timeout=5) as response:
            active = json.load(response)["data"]["activeTargets"]
        return bool(active) and all(target["health"] == "up" for target in active)


@contextmanager
def running_prometheus(
    directory: Path, targets: list[str], interval_s: float = 1.0, timeout: float = 30
) -> Iterator[Prometheus]:
    """Prometheus on a free loopback port scraping `targets` (HOST:PORT) every
    `interval_s`, once it answers; stopped afterwards (its log is `directory/log`)."""
    binary = prometheus_binary()
    if binary is None:
        raise RuntimeError("prometheus is not installed: apt-get install -y prometheus")
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "prometheus.yml"
    interval = f"{round(interval_s * 1000)}ms"
    config.write_text(
        CONFIG.format(interval=interval, targets=", ".join(f"'{t}'" for t in targets))
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with (directory / "log").open("wb") as log:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--storage.tsdb.retention.time=1h",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:

        def ready() -> bool:
            if process.poll() is not None:
                log_text = (directory / "log").read_text(errors="replace")
                raise RuntimeError(f"prometheus exited with {process.returncode}: {log_text}")
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as response:
                    return response.status == 200
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                return False

        wait_until(ready, timeout, "prometheus ready")
        yield Prometheus(url, directory, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def upstream_command(
    port: int,
    version: str,
    *,
    service: str = "backend",
    error_rate: float = 0,
    latency_ms: float = 0,
) -> list[str]:
    """The demo upstream answering as `service` `version` (a share of 500s, a delay)."""
    return [
        *(sys.executable, "-m", "rollouts.upstream", "--port", str(port)),
        *("--service", service, "--version", version),
        *("--error-rate", str(error_rate), "--latency-ms", str(latency_ms)),
    ]


@contextmanager
def paced_load(rates: dict[int, float]) -> Iterator[dict[int, Counter[int]]]:
    """GET / to each loopback port at its rate (requests a second, one keep-alive
    connection each) while the block runs; yields the answers' status codes by port."""
    answers: dict[int, Counter[int]] = {port: Counter() for port in rates}
    stop = threading.Event()

    def work(port: int, rate: float) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        due = time.monotonic()
        try:
            while not stop.is_set():
                try:
                    connection.request("GET", "/")
                    response = connection.getresponse()
                    response.read()
                    answers[port][response.status] += 1
                except (OSError, http.client.HTTPException):
                    connection.close()
                due = max(due + 1 / rate, time.monotonic() - 1)  # no burst after a stall
                stop.wait(max(0.0, due - time.monotonic()))
        finally:
            connection.close()

    workers = [threading.Thread(target=work, args=item, daemon=True) for item in rates.items()]
    for worker in workers:
        worker.start()
    try:
        yield answers
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=15)
