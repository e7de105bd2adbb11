"""Prometheus' HTTP API as the metrics source uses it: instant queries at a given time,
range queries for the charts, each with a timeout. Every failure is one exception that
says whether Prometheus could be reached at all (`unavailable`: refused, timed out,
answered 5xx) or answered but gave no figure (a bad query, NaN, a range vector)."""

from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

_clients: dict[int, httpx.Client] = {}  # by process: a forked worker makes its own
_clients_lock = threading.Lock()


def _client() -> httpx.Client:
    """One keep-alive client for every query of this process (making one costs ~0.2 s:
    its TLS context)."""
    with _clients_lock:
        pid = os.getpid()
        if pid not in _clients:
            _clients.clear()
            _clients[pid] = httpx.Client()
        return _clients[pid]


class QueryFailed(Exception):
    def __init__(self, message: str, *, unavailable: bool = False) -> None:
        super().__init__(message)
        self.unavailable = unavailable


@dataclass(frozen=True)
class Series:
    """One series of an answer: its labels and its (unix time, value) points."""

    labels: dict[str, str]
    points: list[tuple[float, float]]

    @property
    def value(self) -> float:
        return self.points[-1][1]


def _number(text: Any) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        raise QueryFailed(f"not a number: {text!r}") from None


class Prometheus:
    """One Prometheus server, at `url` (a path prefix is kept)."""

    def __init__(self, url: str, timeout: float) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def answer(self, path: str, params: dict[str, str]) -> Any:
        """The `data` of a successful answer, as Prometheus sent it."""
        if not self.url:
            raise QueryFailed("no Prometheus URL set (service_set --prometheus-url)")
        try:
            response = _client().get(f"{self.url}{path}", params=params, timeout=self.timeout)
        except httpx.TimeoutException:
            raise QueryFailed(
                f"{self.url}: no answer within {self.timeout:g}s", unavailable=True
            ) from None
        except httpx.HTTPError as exc:
            raise QueryFailed(
                f"{self.url}: {exc or type(exc).__name__}", unavailable=True
            ) from None
        down = response.status_code >= 500
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or "status" not in body:
            raise QueryFailed(
                f"{self.url}: HTTP {response.status_code}, not a Prometheus answer",
                unavailable=down,
            )
        if body["status"] != "success":
            kind, error = body.get("errorType", "error"), body.get("error", "")
            raise QueryFailed(f"{kind}: {error} (HTTP {response.status_code})", unavailable=down)
        return body.get("data")

    def version(self) -> str:
        """The server's version (its build information): a cheap check that it answers."""
        return str((self.answer("/api/v1/status/buildinfo", {}) or {}).get("version", "?"))

    def instant(self, promql: str, at: datetime) -> list[Series]:
        """The query's value at `at`, one Series (of one point) per result; NaN is refused."""
        data = self.answer(
            "/api/v1/query",
            {"query": promql, "time": f"{at.timestamp():.3f}", "timeout": f"{self.timeout:g}"},
        )
        kind, result = (data or {}).get("resultType"), (data or {}).get("result")
        if kind == "scalar":
            result = [{"metric": {}, "value": result}]
        elif kind != "vector":
            raise QueryFailed(f"the query gave a {kind}, not an instant vector")
        series = [
            Series(dict(item["metric"]), [(float(item["value"][0]), _number(item["value"][1]))])
            for item in result or []
        ]
        for one in series:
            if math.isnan(one.value) or math.isinf(one.value):
                raise QueryFailed(f"the query gave {one.value} for {one.labels or 'its value'}")
        return series

    def range(self, promql: str, start: datetime, end: datetime, step: timedelta) -> list[Series]:
        """The query evaluated every `step` from `start` to `end`; NaN points are left out."""
        data = self.answer(
            "/api/v1/query_range",
            {
                "query": promql,
                "start": f"{start.timestamp():.3f}",
                "end": f"{end.timestamp():.3f}",
                "step": f"{step.total_seconds():g}",
                "timeout": f"{self.timeout:g}",
            },
        )
        if (data or {}).get("resultType") != "matrix":
            raise QueryFailed("a range query gave no matrix")
        return [
            Series(
                dict(item["metric"]),
                [
                    (float(at), value)
                    for at, text in item["values"]
                    if not math.isnan(value := _number(text))
                ],
            )
            for item in data["result"]
        ]
