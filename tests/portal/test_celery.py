"""Tasks run through a real Celery worker on Redis."""

from __future__ import annotations

import subprocess

import pytest
from django.conf import settings

from governance.audit import audit_append
from governance.tasks import audit_verify


def test_every_periodic_task_is_in_the_one_beat_schedule() -> None:
    from portal.celery import app

    assert app.conf.beat_schedule == settings.CELERY_BEAT_SCHEDULE
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    app.loader.import_default_modules()
    assert tasks <= set(app.tasks)


@pytest.mark.django_db(transaction=True)
def test_a_task_runs_in_a_real_worker_against_the_database(
    celery_worker: subprocess.Popen,
) -> None:
    assert not settings.CELERY_TASK_ALWAYS_EAGER
    assert settings.CELERY_BROKER_URL.startswith("redis://")
    for n in range(3):
        audit_append(action="test.event", data={"n": n})
    result = audit_verify.delay().get(timeout=30)
    assert result["ok"] is True
    assert result["checked"] == 3
    assert celery_worker.poll() is None
