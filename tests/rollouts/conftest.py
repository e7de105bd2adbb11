from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.utils.dateparse import parse_datetime

from governance.models import Release
from governance.services import vote_cast
from rollouts.models import MetricSample

T0 = "2026-11-26T14:00:00Z"
HEALTHY_LATENCY = {
    "le": [25, 50, 100, 200, 300, 500, 1000, "+Inf"],
    "counts": [100, 300, 400, 150, 30, 15, 5, 0],
}


def at(offset_s: float, start: str = T0) -> datetime:
    moment = parse_datetime(start)
    assert moment is not None
    return moment + timedelta(seconds=offset_s)


@pytest.fixture
def approved(
    new_release: Callable[..., Release], team: dict[str, Any], sign_all: Callable[[Release], None]
) -> Callable[..., Release]:
    """A release whose gate is open."""

    def make(**fields: Any) -> Release:
        release = new_release(**fields)
        sign_all(release)
        if release.approvals_required:
            vote_cast(release=release, voter=team["carol"], decision="approve", comment="ok")
            vote_cast(release=release, voter=team["dave"], decision="approve", comment="ok")
        return release

    return make


def feed(
    service: str,
    version: str,
    variant: str,
    start: datetime,
    seconds: int,
    *,
    requests: int = 1000,
    errors: int = 0,
    latency: dict | None = None,
    **extra: Any,
) -> None:
    """Metric samples, one per 10 s: the analysis function's inputs."""
    latency = latency or HEALTHY_LATENCY  # a sample of the latencies, the same shape for all
    rows = []
    for n in range(0, seconds, 10):
        begin = start + timedelta(seconds=n)
        rows.append(
            MetricSample(
                service=service,
                version=version,
                variant=variant,
                start=begin,
                end=begin + timedelta(seconds=10),
                requests=requests,
                errors=errors,
                latency_le=latency["le"],
                latency_counts=latency["counts"],
                **{"status_5xx": errors, **extra},
            )
        )
    MetricSample.objects.bulk_create(rows)
