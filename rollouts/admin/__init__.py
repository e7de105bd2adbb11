"""The admin of rollouts: the rollouts themselves with their actions, plans, segments and
rules (`rollouts`), and the services with their routers (`services`)."""

from __future__ import annotations

from rollouts.admin import rollouts, services

__all__ = ["rollouts", "services"]
