from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections

from rollouts.services import actions_remind_overdue, tick


class Command(BaseCommand):
    help = "Run one engine tick, or tick forever every --every seconds (the embedded engine)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--every", type=float, metavar="SECONDS", help="Keep ticking with this interval."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        every = options["every"]
        if every is not None and every <= 0:
            from django.core.management.base import CommandError

            raise CommandError("--every must be a positive number of seconds.")
        while True:
            counts = tick()
            actions_remind_overdue()
            if every is None:
                self.stdout.write(" ".join(f"{k}={v}" for k, v in counts.items()))
                return
            close_old_connections()
            time.sleep(every)
