"""The guide's plans and user segments, loaded by a data migration (idempotent)."""

from __future__ import annotations

from typing import Any

PLANS = {
    "standard": {
        "description": "1% 10m → 5% 20m → 20% 30m → 100%, monitored 2 h",
        "steps": [
            {"weight": 1, "duration_s": 600},
            {"weight": 5, "duration_s": 1200},
            {"weight": 20, "duration_s": 1800},
        ],
        "monitoring_s": 7200,
        "check_every_s": 300,
    },
    "high_risk": {
        "description": "1% → 2% → 5% → 10% → 20% → 100%, monitored 4 h",
        "steps": [
            {"weight": 1, "duration_s": 600},
            {"weight": 2, "duration_s": 600},
            {"weight": 5, "duration_s": 1200},
            {"weight": 10, "duration_s": 1200},
            {"weight": 20, "duration_s": 1800},
        ],
        "monitoring_s": 14400,
        "check_every_s": 300,
    },
}

SEGMENTS = [
    ("internal", "internal", True, 100),
    ("beta", "beta_tester", True, 100),
    ("premium", "subscription_tier", "premium", 50),
]


# name, metric, operator, threshold, duration, window, action, stakeholders, description
ABORT_RULES = [
    ("error_rate", "error_rate", "ge", 0.05, 300, 60, "rollback", "", "Error rate ≥ 5% for 5m"),
    (
        "p95_latency",
        "p95_latency_ms",
        "gt",
        300,
        600,
        60,
        "rollback",
        "",
        "p95 latency > 300ms for 10m",
    ),
    (
        "conversion_drop",
        "conversion_drop",
        "ge",
        0.05,
        900,
        300,
        "rollback",
        "",
        "Conversion rate drop ≥ 5% for 15m",
    ),
    (
        "status_5xx",
        "status_5xx_rate",
        "ge",
        0.02,
        300,
        60,
        "rollback",
        "",
        "5xx errors ≥ 2% for 5m",
    ),
    (
        "db_connections",
        "db_connections_pct",
        "ge",
        95,
        180,
        60,
        "rollback",
        "",
        "DB connection pool ≥ 95% for 3m",
    ),
    ("memory", "memory_pct", "ge", 90, 300, 60, "rollback", "", "Memory usage ≥ 90% for 5m"),
    (
        "payment_failures",
        "payment_failure_rate",
        "gt",
        0.01,
        600,
        60,
        "pause",
        "@payments-team, @council-stewards",
        "Payment failure rate > 1% for 10m: pause & alert",
    ),
    (
        "complaints",
        "complaints",
        "gt",
        10,
        0,
        3600,
        "pause",
        "@customer-success, @council-stewards",
        "Customer complaints > 10 in 1h: pause & review",
    ),
]

# key, warning, critical, higher is worse
THRESHOLDS = [
    ("latency.p50", 100, 200, True),
    ("latency.p95", 250, 300, True),
    ("latency.p99", 400, 500, True),
    ("error_rate", 0.01, 0.05, True),
    ("status.4xx", 0.02, 0.05, True),
    ("status.5xx", 0.005, 0.02, True),
    ("conversion.drop", 0.02, 0.05, True),
    ("margin.drop_pct", 3, 5, True),
    ("system.cpu_pct", 70, 85, True),
    ("system.memory_pct", 75, 90, True),
    ("system.disk_io_pct", 80, 95, True),
    ("system.db_connections_pct", 80, 95, True),
    ("system.queue_depth", 1000, 5000, True),
]

# The usual instrumentation, per service and version: counters and a classic histogram.
# {service}, {version} and {window} are filled in when a query runs. An empty answer is
# no data, so the error counts fall back to 0 x requests: zero only where requests were.
_REQUESTS = 'sum(increase(http_requests_total{service="{service}",version="{version}"}[{window}]))'


def _answers(codes: str) -> str:
    return (
        'sum(increase(http_requests_total{service="{service}",version="{version}",'
        f'code=~"{codes}"}}[{{window}}])) or 0 * {_REQUESTS}'
    )


DEFAULT_QUERIES = {
    "requests": (_REQUESTS, "Requests served in the window."),
    "errors": (_answers("5.."), "Errors: answers with a 5xx code."),
    "status_4xx": (_answers("4.."), "Answers with a 4xx code."),
    "status_5xx": (_answers("5.."), "Answers with a 5xx code."),
    "latency_buckets": (
        "sum by (le) (increase(http_request_duration_seconds_bucket"
        '{service="{service}",version="{version}"}[{window}]))',
        "Cumulative latency buckets (le in seconds, read as milliseconds).",
    ),
    "checkout_attempts": (
        'sum by (path) (increase(checkout_attempts_total{service="{service}",version="{version}"}'
        "[{window}]))",
        "Optional: conversion attempts by path.",
    ),
    "checkout_successes": (
        "sum by (path) (increase(checkout_successes_total"
        '{service="{service}",version="{version}"}[{window}]))',
        "Optional: conversion successes by path.",
    ),
}

CONVERSIONS = [
    ("/checkout", 0.855, 0.80),
    ("/signup", 0.65, 0.60),
    ("/api/payments/process", 0.995, 0.98),
]


# metric → who hears about a pause or rollback on it (admin → Alert routes). Latency,
# errors and the source itself go to on-call; margin and payments to finance; complaints to
# the council and the platform stewards (the guide's @council-stewards).
ALERT_ROUTES = [
    ("requests", "on_call"),
    ("error_rate", "on_call"),
    ("p95_ms", "on_call"),
    ("throughput_rps", "on_call"),
    ("p95_latency_ms", "on_call"),
    ("status_5xx_rate", "on_call"),
    ("db_connections_pct", "on_call"),
    ("memory_pct", "on_call"),
    ("metrics_source", "on_call"),
    ("payment_failure_rate", "finance"),
    ("margin", "finance"),
    ("conversion_drop", "finance"),
    ("conversion_drop", "on_call"),
    ("complaints", "council"),
    ("complaints", "steward"),
]


def seed_alert_routes(AlertRoute: Any) -> None:
    for metric, audience in ALERT_ROUTES:
        AlertRoute.objects.get_or_create(metric=metric, audience=audience)


def seed_plans(Plan: Any, Segment: Any) -> None:
    for name, values in PLANS.items():
        Plan.objects.get_or_create(name=name, defaults=values)
    for position, (name, attribute, value, share) in enumerate(SEGMENTS):
        Segment.objects.get_or_create(
            name=name,
            defaults={
                "attribute": attribute,
                "value": value,
                "share_pct": share,
                "position": position,
            },
        )


def seed_rules(AbortRule: Any, MetricThreshold: Any, ConversionTarget: Any) -> None:
    for name, metric, op, threshold, duration, window, action, who, text in ABORT_RULES:
        AbortRule.objects.get_or_create(
            name=name,
            defaults={
                "metric": metric,
                "operator": op,
                "threshold": threshold,
                "duration_s": duration,
                "window_s": window,
                "action": action,
                "stakeholders": who,
                "description": text,
            },
        )
    for key, warning, critical, higher in THRESHOLDS:
        MetricThreshold.objects.get_or_create(
            key=key, defaults={"warning": warning, "critical": critical, "higher_is_worse": higher}
        )
    for path, baseline, minimum in CONVERSIONS:
        ConversionTarget.objects.get_or_create(
            path=path, defaults={"baseline": baseline, "min_acceptable": minimum}
        )


def seed_metric_queries(MetricQuery: Any) -> None:
    for metric, (query, description) in DEFAULT_QUERIES.items():
        MetricQuery.objects.get_or_create(
            service="", metric=metric, defaults={"query": query, "description": description}
        )


def seed_rollouts() -> None:
    from rollouts import models

    seed_plans(models.Plan, models.Segment)
    seed_rules(models.AbortRule, models.MetricThreshold, models.ConversionTarget)
    seed_alert_routes(models.AlertRoute)
    seed_metric_queries(models.MetricQuery)


DEMO_SERVICES: dict[str, tuple[list[str], str]] = {
    "checkout": (["src/checkout/**", "**/migrations/**"], "http://127.0.0.1:8002"),
    "search": (["src/search/**", "**/migrations/**"], "http://127.0.0.1:8003"),
}


def seed_demo_services() -> None:
    """The demo's two extra services (the guide seeds frontend and backend)."""
    from governance.seeds import seed_services

    seed_services(services=DEMO_SERVICES)
