from __future__ import annotations

from typing import Any

from celery import shared_task
from django.dispatch import receiver

from portal.enqueue import enqueue_after_commit
from rollouts import engine, followups
from rollouts.lifecycle import rollback_started
from rollouts.metrics.push import metrics_prune


@shared_task(ignore_result=True)
def tick() -> dict[str, int]:
    """The engine: what `manage.py canary_tick` runs, scheduled by beat."""
    return engine.tick()


@shared_task(ignore_result=True)
def rollback_continue(rollout_id: int) -> str:
    return engine.rollback_continue(rollout_id)


@receiver(rollback_started)
def _continue_after_commit(sender: Any, rollout_id: int, **kwargs: Any) -> None:
    """A worker takes the rollback on once the transition commits (the tick does too, if
    there is no broker)."""
    enqueue_after_commit(rollback_continue, rollout_id, skip_when_eager=True)


@shared_task(ignore_result=True)
def remind_overdue_actions() -> int:
    return followups.actions_remind_overdue()


@shared_task(ignore_result=True)
def prune_metrics() -> int:
    """Raw samples older than the retention go (the comparison looks back 24 h at most)."""
    return metrics_prune()
