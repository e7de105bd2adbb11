"""What an upstream reports it served (`/metrics`, Prometheus text, read with
prometheus_client's parser), turned into push samples of the period between two reads:
requests, 4xx, errors (5xx), and the latency histogram in milliseconds."""

from __future__ import annotations

import http.client
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

TIMEOUT_S = 2.0


@dataclass(frozen=True)
class Reading:
    """An upstream's counters at one moment (cumulative since it started)."""

    service: str = ""
    version: str = ""
    codes: dict[str, int] = field(default_factory=dict)  # status code → requests
    buckets: dict[float, int] = field(default_factory=dict)  # le (seconds) → cumulative

    @property
    def requests(self) -> int:
        return sum(self.codes.values())


def parse(text: str) -> Reading:
    service = version = ""
    codes: dict[str, int] = {}
    buckets: dict[float, int] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == "http_requests_total":
                service, version = labels["service"], labels["version"]
                codes[labels["code"]] = codes.get(labels["code"], 0) + int(sample.value)
            elif sample.name == "http_request_duration_seconds_bucket":
                le = float(labels["le"])
                buckets[le] = buckets.get(le, 0) + int(sample.value)
    return Reading(service, version, codes, buckets)


def read(port: int) -> Reading:
    """GET /metrics of the upstream on 127.0.0.1:`port` (OSError when it does not answer)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_S)
    try:
        connection.request("GET", "/metrics")
        response = connection.getresponse()
        body = response.read().decode()
    except http.client.HTTPException as exc:
        raise OSError(f"127.0.0.1:{port}/metrics: {exc}") from exc
    finally:
        connection.close()
    if response.status != 200:
        raise OSError(f"127.0.0.1:{port}/metrics answered {response.status}")
    return parse(body)


def _ms(le: float) -> float | str:
    return "+Inf" if math.isinf(le) else round(le * 1000, 3)


def served_between(before: Reading, after: Reading) -> Reading:
    """What was served between two readings; a counter that went down means the process
    restarted, so `after` counts from zero."""
    if any(after.codes.get(code, 0) < n for code, n in before.codes.items()):
        before = Reading()
    codes = {code: n - before.codes.get(code, 0) for code, n in after.codes.items()}
    buckets = {le: n - before.buckets.get(le, 0) for le, n in after.buckets.items()}
    return Reading(after.service, after.version, codes, buckets)


def sample(served: Reading, variant: str, start: datetime, end: datetime) -> dict[str, Any] | None:
    """A push sample (`POST /api/v1/metrics/`) of what was served, None when nothing was."""
    requests = served.requests
    if not requests:
        return None
    codes = {int(code): n for code, n in served.codes.items()}
    errors = sum(n for code, n in codes.items() if code >= 500)
    cumulative = sorted(served.buckets.items())
    counts = [n - (cumulative[i - 1][1] if i else 0) for i, (_, n) in enumerate(cumulative)]
    result: dict[str, Any] = {
        "service": served.service,
        "version": served.version,
        "variant": variant,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "requests": requests,
        "errors": errors,
        "status_4xx": sum(n for code, n in codes.items() if 400 <= code < 500),
        "status_5xx": errors,
    }
    if cumulative:
        result["latency_ms"] = {"le": [_ms(le) for le, _ in cumulative], "counts": counts}
    return result
