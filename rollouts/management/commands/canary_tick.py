from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import close_old_connections

from comms import tasks as comms_tasks
from rollouts.engine import tick
from rollouts.followups import actions_remind_overdue

PUBLISH_EVERY_S = 300


class Command(BaseCommand):
    help = (
        "Run one engine tick, or tick forever every --every seconds: the embedded engine, "
        "which also does the periodic work Celery beat does with a broker (reminders, "
        "maintenance windows, due notices, the status page every 5 minutes)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--every", type=float, metavar="SECONDS", help="Keep ticking with this interval."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        every = options["every"]
        if every is not None and every <= 0:
            raise CommandError("--every must be a positive number of seconds.")
        published = 0.0
        while True:
            counts = tick()
            actions_remind_overdue()
            comms_tasks.maintenance_tick()
            comms_tasks.sweep_notices()
            if time.monotonic() - published >= PUBLISH_EVERY_S:
                comms_tasks.publish_status()
                published = time.monotonic()
            if every is None:
                self.stdout.write(" ".join(f"{k}={v}" for k, v in counts.items()))
                return
            close_old_connections()
            time.sleep(every)
