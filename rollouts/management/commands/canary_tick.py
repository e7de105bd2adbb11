from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import close_old_connections, connection

from comms import tasks as comms_tasks
from comms.alerts import alert_quietly
from rollouts.engine import tick
from rollouts.followups import actions_remind_overdue

logger = structlog.get_logger(__name__)

PUBLISH_EVERY_S = 300

Job = tuple[str, Callable[[], Any]]


def fresh_connections() -> None:
    """Replace a connection that a failure broke or that grew too old (not inside a
    transaction: a test runs the loop inside its own)."""
    if not connection.in_atomic_block:
        close_old_connections()


NOT_DUE = object()


class Every:
    """A job that runs at most once per `seconds` (the first call runs it); between runs it
    answers NOT_DUE, which is neither a success nor a failure."""

    def __init__(self, seconds: float, job: Callable[[], Any]) -> None:
        self.seconds, self.job = seconds, job
        self.last: float | None = None

    def __call__(self) -> Any:
        if self.last is not None and time.monotonic() - self.last < self.seconds:
            return NOT_DUE
        self.last = time.monotonic()
        return self.job()


class Jobs:
    """Runs each job on its own: one that raises is logged and alerted once (until it
    succeeds again), and the others run all the same."""

    def __init__(self, jobs: Sequence[Job]) -> None:
        self.jobs = jobs
        self.failing: set[str] = set()

    def run(self) -> dict[str, Any]:
        results: dict[str, Any] = {}
        for name, job in self.jobs:
            try:
                results[name] = job()
            except Exception as exc:
                logger.exception("periodic_job_failed", job=name)
                if name not in self.failing:
                    self.failing.add(name)
                    alert_quietly(
                        summary=f"canary_tick: {name} is failing",
                        source="canary-portal/canary_tick",
                        severity="warning",
                        details={"job": name, "error": f"{type(exc).__name__}: {exc}"},
                    )
                fresh_connections()
            else:
                if results[name] is not NOT_DUE and name in self.failing:
                    self.failing.discard(name)
                    logger.info("periodic_job_recovered", job=name)
        return results


def engine_jobs() -> list[Job]:
    """The embedded engine's periodic work, in order."""
    return [
        ("tick", tick),
        ("remind_overdue", actions_remind_overdue),
        ("maintenance", comms_tasks.maintenance_tick),
        ("notices", comms_tasks.sweep_notices),
        ("publish_status", Every(PUBLISH_EVERY_S, comms_tasks.publish_status)),
    ]


def run_loop(jobs: Jobs, *, every: float, loops: int | None = None) -> None:
    """Run the jobs every `every` seconds, `loops` times (None: forever)."""
    done = 0
    while loops is None or done < loops:
        jobs.run()
        done += 1
        fresh_connections()
        if loops is None or done < loops:
            time.sleep(every)


class Command(BaseCommand):
    help = (
        "Run one engine tick, or tick forever every --every seconds: the embedded engine, "
        "which also does the periodic work Celery beat does with a broker (reminders, "
        "maintenance windows, due notices, the status page every 5 minutes). A job that "
        "fails is logged and alerted once; the others and the next loops go on."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--every", type=float, metavar="SECONDS", help="Keep ticking with this interval."
        )
        parser.add_argument(
            "--loops", type=int, metavar="N", help="With --every: stop after N loops."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        every, loops = options["every"], options["loops"]
        if every is not None and every <= 0:
            raise CommandError("--every must be a positive number of seconds.")
        if loops is not None and loops <= 0:
            raise CommandError("--loops must be a positive number.")
        jobs = Jobs(engine_jobs())
        if every is None:
            counts = jobs.run().get("tick") or {}
            self.stdout.write(" ".join(f"{k}={v}" for k, v in counts.items()))
            if jobs.failing:
                raise CommandError(f"Failed: {', '.join(sorted(jobs.failing))}.")
            return
        run_loop(jobs, every=every, loops=loops)
