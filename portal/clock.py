"""The one source of "now" for domain code, and the demo time scale.

Tests move time with time_machine; nothing in the domain reads the wall clock
or sleeps on its own.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone


def now() -> datetime:
    return timezone.now()


def scaled(seconds: float) -> timedelta:
    """A domain duration (guide's value in seconds) shrunk by CANARY_TIME_SCALE."""
    return timedelta(seconds=seconds / settings.CANARY_TIME_SCALE)
