"""Health probes: each check runs in its own thread under its own timeout, so a
hung dependency makes its check fail instead of hanging the probe.

A failing critical check (db, payments) fails the probe (503); a failing
non-critical one (cache, external) only degrades it (200). A check whose target
is not configured reports `skipped`: it is never faked as ok.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
from django.conf import settings
from django.core.cache import caches
from django.db import DEFAULT_DB_ALIAS, connections

OK, DEGRADED, FAIL, SKIPPED = "ok", "degraded", "fail", "skipped"
_STARTED = time.monotonic()


class Skipped(Exception):
    """The check has nothing configured to probe."""


@dataclass(frozen=True)
class Check:
    name: str
    critical: bool
    run: Callable[[float], dict]  # takes the timeout, returns details; raises on failure


@dataclass
class CheckResult:
    status: str
    critical: bool
    latency_ms: float
    timeout_s: float
    details: dict = field(default_factory=dict)
    error: str | None = None

    def as_json(self) -> dict:
        data: dict = {
            "status": self.status,
            "latency_ms": self.latency_ms,
            "critical": self.critical,
            "timeout_s": self.timeout_s,
        }
        if self.error:
            data["error"] = self.error
        data.update(self.details)
        return data


def _check_process(timeout: float) -> dict:
    return {"pid": os.getpid(), "uptime_s": round(time.monotonic() - _STARTED, 1)}


def _check_db(timeout: float) -> dict:
    # A private connection: the probe must not disturb (or be broken by) the
    # request's own connection state.
    conn = connections.create_connection(DEFAULT_DB_ALIAS)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return {"vendor": conn.vendor}
    finally:
        conn.close()


def _check_cache(timeout: float) -> dict:
    cache = caches.create_connection("default")
    key, value = f"health:{uuid.uuid4().hex}", uuid.uuid4().hex
    try:
        cache.set(key, value, timeout=max(1, int(timeout) + 1))
        if cache.get(key) != value:
            raise RuntimeError("value written to the cache could not be read back")
        cache.delete(key)
    finally:
        cache.close()
    return {"backend": type(cache).__name__}


def _probe_url(url: str, timeout: float) -> int:
    response = httpx.get(url, timeout=timeout, follow_redirects=False)
    if not 200 <= response.status_code < 400:
        raise RuntimeError(f"{url} answered HTTP {response.status_code}")
    return response.status_code


def _check_external(timeout: float) -> dict:
    urls = settings.HEALTH_EXTERNAL_URLS
    if not urls:
        raise Skipped("HEALTH_EXTERNAL_URLS is not set")
    return {"targets": {url: _probe_url(url, timeout) for url in urls}}


def _check_payments(timeout: float) -> dict:
    url = settings.HEALTH_PAYMENTS_URL
    if not url:
        raise Skipped("HEALTH_PAYMENTS_URL is not set")
    return {"target": url, "http_status": _probe_url(url, timeout)}


CHECKS: dict[str, Check] = {
    check.name: check
    for check in (
        Check("process", critical=True, run=_check_process),
        Check("db", critical=True, run=_check_db),
        Check("cache", critical=False, run=_check_cache),
        Check("external", critical=False, run=_check_external),
        Check("payments", critical=True, run=_check_payments),
    )
}
_ALL = ("process", "db", "cache", "external", "payments")
PROBES: dict[str, tuple[str, ...]] = {
    "startup": _ALL,
    "ready": _ALL,
    "live": ("process",),
    "db": ("db",),
    "cache": ("cache",),
    "external": ("external",),
    "payments": ("payments",),
}


def _run_one(check: Check, timeout: float, out: dict[str, CheckResult]) -> None:
    started = time.perf_counter()
    try:
        details = check.run(timeout)
        status, error = OK, None
    except Skipped as exc:
        details, status, error = {"reason": str(exc)}, SKIPPED, None
    except Exception as exc:  # a probe reports every failure, whatever raised it
        details, status, error = {}, FAIL, f"{type(exc).__name__}: {exc}"
    latency = round((time.perf_counter() - started) * 1000, 1)
    out[check.name] = CheckResult(status, check.critical, latency, timeout, details, error)


def run_probe(probe: str, timeout: float | None = None) -> tuple[str, dict[str, CheckResult]]:
    """Run a probe's checks concurrently; return the overall status and each result."""
    timeout = settings.HEALTH_CHECK_TIMEOUT_S if timeout is None else timeout
    names = PROBES[probe]
    results: dict[str, CheckResult] = {}
    threads = [
        threading.Thread(
            target=_run_one,
            args=(CHECKS[name], timeout, results),
            daemon=True,
            name=f"health-{name}",
        )
        for name in names
    ]
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    for name in names:
        if name not in results:  # still running: the dependency hangs
            results[name] = CheckResult(
                FAIL,
                CHECKS[name].critical,
                round(timeout * 1000, 1),
                timeout,
                error=f"timed out after {timeout:g}s",
            )
    failed = [results[name] for name in names if results[name].status == FAIL]
    if any(result.critical for result in failed):
        overall = FAIL
    elif failed:
        overall = DEGRADED
    else:
        overall = OK
    return overall, {name: results[name] for name in names}
