"""Handing work to Celery once the current transaction commits.

A dead or slow broker must never fail or hold up the request that asked for the work: the
task is published from a short-lived thread and a failure is only logged, because every
caller has a periodic catch-up (the engine's tick, the notice sweep, the status publish).
Without a broker (tasks eager, `make run`) the task runs in-process after the commit, unless
the caller's catch-up already does that work (`skip_when_eager`).
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

import structlog
from celery import Task
from django.conf import settings
from django.db import transaction

logger = structlog.get_logger(__name__)


def enqueue_after_commit(
    task: Task, *args: Any, eta: datetime | None = None, skip_when_eager: bool = False
) -> None:
    eager = settings.CELERY_TASK_ALWAYS_EAGER
    if eager and skip_when_eager:
        return

    def send() -> None:
        try:
            task.apply_async(args, eta=eta)
        except Exception as exc:  # the caller's periodic catch-up does it later
            logger.warning("enqueue_failed", task=task.name, args=args, error=str(exc))

    if eager:
        transaction.on_commit(send)
    else:
        transaction.on_commit(lambda: threading.Thread(target=send, daemon=True).start())
