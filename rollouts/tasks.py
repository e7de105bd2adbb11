from __future__ import annotations

from celery import shared_task

from rollouts import engine, followups
from rollouts.metrics.push import metrics_prune


@shared_task(ignore_result=True)
def tick() -> dict[str, int]:
    """The engine: what `manage.py canary_tick` runs, scheduled by beat."""
    return engine.tick()


@shared_task(ignore_result=True)
def rollback_continue(rollout_id: int) -> str:
    return engine.rollback_continue(rollout_id)


@shared_task(ignore_result=True)
def remind_overdue_actions() -> int:
    return followups.actions_remind_overdue()


@shared_task(ignore_result=True)
def prune_metrics() -> int:
    """Raw samples older than the retention go (the comparison looks back 24 h at most)."""
    return metrics_prune()
