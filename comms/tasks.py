from __future__ import annotations

from typing import Any

import structlog
from celery import shared_task

from comms import notices, services, snapshot
from portal import clock

logger = structlog.get_logger(__name__)


@shared_task(ignore_result=True)
def publish_status() -> str:
    """Render and write the status page snapshot (on every change and every 5 minutes)."""
    return snapshot.publish()["status"]["indicator"]


@shared_task(ignore_result=True)
def maintenance_tick() -> int:
    return services.maintenance_tick()


@shared_task(
    bind=True,
    autoretry_for=(Exception,),
    retry_backoff=2,
    retry_backoff_max=600,
    max_retries=6,
    ignore_result=True,
)
def send_notice(self: Any, notice_id: int) -> str:
    try:
        return notices.notice_send(notice_id)
    except Exception:
        if self.request.retries >= self.max_retries:
            notices.notice_give_up(notice_id)
        raise


@shared_task(ignore_result=True)
def sweep_notices() -> int:
    """Send what is due but was never enqueued (broker down when it was created), and what a
    worker claimed and then died on."""
    due = notices.sendable(clock.now())
    sent = 0
    for notice_id in due.values_list("pk", flat=True):
        try:
            sent += notices.notice_send(notice_id) == "sent"
        except Exception as exc:  # recorded on the notice; tried again next sweep
            logger.warning("notice_send_failed", notice=notice_id, error=str(exc))
    return sent


@shared_task(ignore_result=True)
def notify_subscribers_task(update_id: int) -> int:
    from comms.subscriptions import notify_subscribers

    return notify_subscribers(update_id)
