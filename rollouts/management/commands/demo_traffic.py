from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import close_old_connections

from portal import clock
from rollouts.simulator import simulate


class Command(BaseCommand):
    help = "Push simulated stable and canary traffic for every active rollout (the demo)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--every", type=float, default=1.0, metavar="SECONDS")
        parser.add_argument(
            "--failing",
            action="append",
            default=[],
            metavar="SERVICE",
            help="Services whose canary starts failing at 5%%.",
        )
        parser.add_argument("--once", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        every = options["every"]
        if every <= 0:
            raise CommandError("--every must be positive.")
        while True:
            simulate(now=clock.now(), period_s=every, failing=set(options["failing"]))
            if options["once"]:
                return
            close_old_connections()
            time.sleep(every)
