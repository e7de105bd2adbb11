"""The admin of rollouts: the rollouts themselves with their actions, plans, segments and
rules (`rollouts`), the services with their routers (`services`), and the PromQL a
Prometheus source runs (`queries`)."""

from __future__ import annotations

from rollouts.admin import queries, rollouts, services

__all__ = ["queries", "rollouts", "services"]
