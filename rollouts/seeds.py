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


def seed_rollouts(Plan: Any = None, Segment: Any = None) -> None:
    if Plan is None:
        from rollouts.models import Plan, Segment
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
