from __future__ import annotations

from celery import shared_task

from rollouts import services


@shared_task(ignore_result=True)
def tick() -> dict[str, int]:
    """The engine: what `manage.py canary_tick` runs, scheduled by beat."""
    return services.tick()


@shared_task(ignore_result=True)
def rollback_continue(rollout_id: int) -> str:
    return services.rollback_continue(rollout_id)


@shared_task(ignore_result=True)
def remind_overdue_actions() -> int:
    return services.actions_remind_overdue()


@shared_task(ignore_result=True)
def prune_metrics() -> int:
    """Raw samples older than the retention go (the comparison looks back 24 h at most)."""
    return services.metrics_prune()
