"""The live canary-vs-stable comparison behind `GET /ops/canary/metrics`, with the
guide's warning/critical levels (thresholds are data: admin → Metric thresholds)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from portal import clock
from rollouts.choices import Variant
from rollouts.metrics.base import MetricsSource, WindowStats, metrics_source
from rollouts.models import ConversionTarget, MetricThreshold, Rollout, RuleState

ERROR_WINDOWS = {"5m": 300, "15m": 900, "1h": 3600, "24h": 86_400}
SYSTEM_KEYS = ("cpu_pct", "memory_pct", "disk_io_pct", "db_connections_pct", "queue_depth")


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


class Levels:
    def __init__(self) -> None:
        self.thresholds = {t.key: t for t in MetricThreshold.objects.all()}

    def __call__(self, key: str, value: float | None) -> str:
        threshold = self.thresholds.get(key)
        if value is None:
            return "no_data"
        if threshold is None:
            return "ok"
        sign = 1 if threshold.higher_is_worse else -1
        if sign * value >= sign * threshold.critical:
            return "critical"
        if sign * value >= sign * threshold.warning:
            return "warning"
        return "ok"


def _windows(
    source: MetricsSource, rollout: Rollout, seconds: int, now: datetime
) -> tuple[WindowStats, WindowStats]:
    start = now - clock.scaled(seconds)
    canary = source.window(
        service=rollout.service,
        variant=Variant.CANARY,
        version=rollout.version,
        start=start,
        end=now,
    )
    stable = source.window(service=rollout.service, variant=Variant.STABLE, start=start, end=now)
    return canary, stable


def _margin(stats: WindowStats) -> dict[str, float | None]:
    biz = stats.business
    orders, attempted = biz.get("orders", 0), biz.get("payments_attempted", 0)
    return {
        "avg_order_value": biz.get("order_value_total", 0) / orders if orders else None,
        "payment_success": 1 - biz.get("payments_failed", 0) / attempted if attempted else None,
        "refund_rate": biz.get("refunds", 0) / orders if orders else None,
        "cost_per_transaction": (
            biz.get("processing_cost_total", 0) / attempted if attempted else None
        ),
    }


# A rise is bad for these; for the others a fall is.
_RISE_IS_BAD = {"refund_rate", "cost_per_transaction"}


def compare(rollout: Rollout, now: datetime | None = None) -> dict[str, Any]:
    now, source = now or clock.now(), metrics_source()
    level = Levels()
    day_canary, day_stable = _windows(source, rollout, 86_400, now)
    recent_canary, recent_stable = _windows(source, rollout, 300, now)
    hour_canary, hour_stable = _windows(source, rollout, 3600, now)
    read = [day_canary, day_stable, recent_canary, recent_stable, hour_canary, hour_stable]

    def quantiles(stats: WindowStats) -> dict[str, float | None]:
        enough = stats.enough
        return {
            name: _round(stats.quantile(q), 1) if enough else None
            for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))
        }

    canary_latency = quantiles(recent_canary)
    error_rate: dict[str, Any] = {}
    for name, seconds in ERROR_WINDOWS.items():
        canary, stable = (
            (recent_canary, recent_stable)
            if seconds == 300
            else (
                (day_canary, day_stable)
                if seconds == 86_400
                else _windows(source, rollout, seconds, now)
            )
        )
        read += [canary, stable]
        value = canary.error_rate if canary.enough else None
        error_rate[name] = {
            "canary": _round(value),
            "stable": _round(stable.error_rate if stable.enough else None),
            "level": level("error_rate", value),
        }
    conversions = {}
    for target in ConversionTarget.objects.all():
        rate = hour_canary.conversion_rate(target.path)
        drop = (target.baseline - rate) / target.baseline if rate is not None else None
        verdict = level("conversion.drop", drop)
        if rate is not None and rate < target.min_acceptable:
            verdict = "critical"
        conversions[target.path] = {
            "canary": _round(rate),
            "baseline": target.baseline,
            "min_acceptable": target.min_acceptable,
            "level": verdict,
        }
    margin = {}
    canary_margin, stable_margin = _margin(hour_canary), _margin(hour_stable)
    for name, value in canary_margin.items():
        base = stable_margin[name]
        delta = (value - base) / base * 100 if value is not None and base else None
        adverse = None if delta is None else (delta if name in _RISE_IS_BAD else -delta)
        margin[name] = {
            "canary": _round(value),
            "stable": _round(base),
            "delta_pct": _round(delta, 2),
            "level": level("margin.drop_pct", adverse),
        }
    enough = recent_canary.enough
    status_codes: dict[str, dict[str, Any]] = {
        "4xx": {"canary": _round(recent_canary.rate(recent_canary.status_4xx)) if enough else None},
        "5xx": {"canary": _round(recent_canary.rate(recent_canary.status_5xx)) if enough else None},
    }
    for key, block in status_codes.items():
        block["level"] = level(f"status.{key}", block["canary"])
    states = {
        s.rule.name: s for s in RuleState.objects.filter(rollout=rollout).select_related("rule")
    }
    return {
        "version": rollout.version,
        "service": rollout.service,
        "stable_version": rollout.stable_version or None,
        "rollout": rollout.pk,
        "state": rollout.state,
        "weight": rollout.weight,
        "requests": {"canary": day_canary.requests, "stable": day_stable.requests},
        "latency_ms": {
            "canary": canary_latency,
            "stable": quantiles(recent_stable),
            "levels": {
                name: level(f"latency.{name}", value) for name, value in canary_latency.items()
            },
        },
        "error_rate": error_rate,
        "status_codes": status_codes,
        "conversions": conversions,
        "margin": margin,
        "system": {
            key: {
                "value": _round(recent_canary.system.get(key), 2),
                "level": level(f"system.{key}", recent_canary.system.get(key)),
            }
            for key in SYSTEM_KEYS
        },
        "complaints": {"canary_1h": hour_canary.complaints},
        # What the metrics source could not read: every figure it concerns is no data.
        "metrics_source": {
            "problems": sorted({stats.error for stats in read if stats.error}),
            "unavailable": any(stats.unavailable for stats in read),
        },
        "abort_rules": [
            {
                "name": name,
                "state": state.state,
                "since": state.since,
                "value": state.value,
                "threshold": state.rule.threshold,
            }
            for name, state in sorted(states.items())
        ],
    }
