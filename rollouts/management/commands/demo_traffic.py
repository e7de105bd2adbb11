"""`demo_traffic`: the traffic of the demo (`make run`).

With nginx installed (on PATH or in /usr/sbin) and without `--simulate`, real traffic:
`checkout` and `search` behind a real nginx in DEMO_DIR, on DEMO_NGINX_PORTS, each with
a stable and a canary upstream process on DEMO_UPSTREAM_PORTS, real requests through
nginx every period and what the upstreams served pushed as samples
(`rollouts.demo.real`). Otherwise the simulator (`rollouts.simulator`), saying so once.
`--rollouts` deploys the demo's two releases once the traffic is ready.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from io import StringIO
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import CommandError, call_command
from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections

from governance.models import Service
from portal import clock
from rollouts.demo.deploy import SERVICES, deploy_demo_rollouts
from rollouts.demo.load import Seen
from rollouts.demo.processes import DemoError, find_nginx
from rollouts.demo.real import RealDemo, demo_ports
from rollouts.simulator import simulate

REPORT_EVERY_S = 30.0
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)  # make's trap sends SIGTERM


def _stop(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds: the children are stopped on the way out


class Command(BaseCommand):
    help = "Traffic for the demo: real requests through nginx when installed, else simulated."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--every", type=float, default=1.0, metavar="SECONDS")
        parser.add_argument(
            "--failing",
            action="append",
            default=[],
            metavar="SERVICE",
            help="Services whose canary fails (simulated: from 5%%; real: answers 500s).",
        )
        parser.add_argument("--once", action="store_true")
        parser.add_argument("--simulate", action="store_true", help="Simulate even with nginx.")
        parser.add_argument(
            "--rollouts", action="store_true", help="Deploy the demo's releases once ready."
        )
        parser.add_argument(
            "--rate", type=int, default=300, help="Real requests per second to each service."
        )
        parser.add_argument(
            "--error-rate",
            type=float,
            default=0.2,
            help="Share of a failing canary's answers that are 500s (real traffic).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        every, rate, error_rate = options["every"], options["rate"], options["error_rate"]
        if every <= 0 or rate < 1 or not 0 <= error_rate <= 1:
            raise CommandError("--every and --rate must be positive, --error-rate in [0, 1].")
        previous = {signum: signal.signal(signum, _stop) for signum in STOP_SIGNALS}
        try:
            self._run(options)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _run(self, options: Any) -> None:
        nginx = None if options["simulate"] else find_nginx()
        if nginx is None:
            why = "--simulate" if options["simulate"] else "nginx not found"
            self.stdout.write(f"{why}: simulated traffic")
            self._simulate(options)
            return
        demo = RealDemo(
            directory=Path(settings.DEMO_DIR),
            nginx=nginx,
            ports=demo_ports(settings.DEMO_NGINX_PORTS, settings.DEMO_UPSTREAM_PORTS),
            failing=set(options["failing"]),
            error_rate=options["error_rate"],
            say=self.stdout.write,
        )
        try:
            demo.start(clock.now())
        except DemoError as exc:
            self.stdout.write(f"nginx found, but {exc}: simulated traffic")
            self._simulate(options)
            return
        try:
            self._real(demo, options)
        finally:
            demo.stop()

    def _real(self, demo: RealDemo, options: Any) -> None:
        every, rate = options["every"], options["rate"]
        where = ", ".join(f"{s} http://127.0.0.1:{p.listen}/" for s, p in demo.ports.items())
        self.stdout.write(
            f"Real traffic through nginx ({where}), {rate} requests/s each; "
            f"nginx and upstreams in {demo.children.directory}"
        )
        if options["rollouts"]:
            demo.deploy()
        totals: dict[str, Seen] = {}
        reported = time.monotonic()
        while True:
            began = time.monotonic()
            demo.ensure_canaries()
            seen = demo.step(round(rate * every), spread_s=every * 0.8)
            for service, one in seen.items():
                total = totals.setdefault(service, Seen())
                total.answers.update(one.answers)
                total.unanswered += one.unanswered
            if options["once"]:
                return
            if time.monotonic() - reported >= REPORT_EVERY_S:
                self.stdout.write(report(totals, time.monotonic() - reported))
                totals, reported = {}, time.monotonic()
            close_old_connections()
            time.sleep(max(0.0, every - (time.monotonic() - began)))

    def _simulate(self, options: Any) -> None:
        self._embedded_again()
        if options["rollouts"]:
            deploy_demo_rollouts(say=self.stdout.write)
        every, failing = options["every"], set(options["failing"])
        while True:
            simulate(now=clock.now(), period_s=every, failing=failing)
            if options["once"]:
                return
            close_old_connections()
            time.sleep(every)

    def _embedded_again(self) -> None:
        """Demo services a real run put behind the demo's nginx go back to the embedded
        router (the simulator's traffic goes nowhere else)."""
        include_dir = str(Path(settings.DEMO_DIR) / "canary")
        for service in Service.objects.filter(name__in=SERVICES, nginx_dir=include_dir):
            try:
                call_command(
                    "service_set",
                    service.name,
                    *("--router", "embedded", "--listen", "", "--nginx-dir", ""),
                    *("--reload-command", ""),
                    stdout=StringIO(),
                    stderr=StringIO(),
                )
            except CommandError as exc:
                self.stderr.write(f"{service.name} stays behind the demo's nginx: {exc}")


def report(totals: dict[str, Seen], seconds: float) -> str:
    """One line: each service's requests per second and the share of each version."""
    parts = []
    for service, seen in sorted(totals.items()):
        versions: Counter[str] = Counter()
        errors = 0
        for (version, status), n in seen.answers.items():
            versions[version or "nginx"] += n
            errors += n if status >= 500 else 0
        total = max(1, seen.requests)
        shares = ", ".join(f"{v} {100 * n / total:.1f}%" for v, n in sorted(versions.items()))
        parts.append(
            f"{service} {seen.requests / seconds:.0f}/s ({shares}; 5xx {100 * errors / total:.1f}%"
            + (f"; {seen.unanswered} unanswered" if seen.unanswered else "")
            + ")"
        )
    return "traffic: " + "; ".join(parts)
