"""A metrics source behind a network hop, for the engine's "source unreachable" decisions:
the portal's push store, asked only after a real TCP connection to CANARY_TEST_SOURCE
(host:port) succeeds. When nothing listens there, every window comes back `unavailable`
with the connection's own error, as a remote source (Prometheus) reports it."""

from __future__ import annotations

import socket
from datetime import datetime
from typing import Any

from django.conf import settings

from rollouts.metrics.base import WindowStats
from rollouts.metrics.push import PushStore


def _down() -> str:
    host, port = settings.CANARY_TEST_SOURCE.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"
    return ""


def _unavailable(stats: WindowStats, error: str) -> WindowStats:
    return WindowStats(stats.start, stats.end, unavailable=True, error=error)


class RemoteStore(PushStore):
    def window(self, **kwargs: Any) -> WindowStats:
        error = _down()
        stats = super().window(**kwargs)
        return _unavailable(stats, error) if error else stats

    def rule_windows(
        self, rollouts: list[Any], now: datetime, detailed: set[int], counting: set[int]
    ) -> dict[int, dict[int, WindowStats]]:
        error = _down()
        windows = super().rule_windows(rollouts, now, detailed, counting)
        if not error:
            return windows
        return {
            rollout: {seconds: _unavailable(stats, error) for seconds, stats in by.items()}
            for rollout, by in windows.items()
        }
