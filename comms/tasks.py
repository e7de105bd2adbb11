from __future__ import annotations

from celery import shared_task

from comms import services, snapshot


@shared_task(ignore_result=True)
def publish_status() -> str:
    """Render and write the status page snapshot (on every change and every 5 minutes)."""
    return snapshot.publish()["status"]["indicator"]


@shared_task(ignore_result=True)
def maintenance_tick() -> int:
    return services.maintenance_tick()
