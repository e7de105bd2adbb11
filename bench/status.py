"""The status page under load: requests/s and p99 latency for `summary.json` and `/status/`
with 256 concurrent connections (wrk), served five ways in the same run:

- static:  nginx serving the same bytes as plain static files (the baseline),
- shipped: deploy/nginx.conf (the snapshot directory straight from disk, the rest to gunicorn),
- django: gunicorn (sync workers) with Django alone, the files served by the view behind
  every middleware (`portal.wsgi:django_application`): how it was before,
- gunicorn: the portal alone (default sync workers): the snapshot files answered at the
  WSGI level, before Django's middleware (comms.wsgi.StatusFiles), no database query,
- gthread: the same with threaded workers keeping connections alive (`--worker-class
  gthread --threads 8 --keep-alive 30 --worker-connections 96`; the cap spreads a burst of
  connections over every worker): more requests/s, a longer tail.

Targets: the shipped config at >= 0.5 of the static rate, p99 < 50 ms; gunicorn alone at
>= 0.05 of the static rate, p99 < 100 ms.

    apt-get install -y nginx wrk
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/canary_portal \\
        .venv/bin/python bench/status.py [--duration 10] [--connections 256] [--workers 4]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from common import scratch_database
from django.conf import settings
from django.db import connection

from comms.models import Component, Incident, IncidentUpdate
from comms.snapshot import publish
from tests.servers import (
    ROOT,
    database_url,
    free_port,
    nginx,
    serving,
    shipped_config,
    static_config,
)

PATHS = {"summary.json": "/api/v2/summary.json", "/status/": "/status/"}
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


Result = tuple[float, float, int]  # requests/s, p99 ms, socket errors


def wrk(url: str, *, connections: int, duration: int, threads: int) -> Result:
    """Requests/s, p99 in ms and socket errors (connect, read, write, timeout) after a
    one-second warm-up; refuses a run with non-2xx answers."""
    command = ["wrk", f"-t{threads}", f"-c{connections}", "--latency", url]
    subprocess.run([*command, "-d1s"], capture_output=True, check=True)
    out = subprocess.run(
        [*command, f"-d{duration}s"], capture_output=True, text=True, check=True
    ).stdout
    if "Non-2xx" in out:
        sys.exit(f"{url}: errors under load\n{out}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    value, unit = re.search(r"\s99%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    failed = sum(int(n) for n in errors.groups()) if errors else 0
    return rate, float(value) * UNITS[unit], failed


def populate() -> None:
    """A realistic page: the five components, one open incident with two updates."""
    backend = Component.objects.get(name="Backend API")
    backend.status = "degraded_performance"
    backend.save()
    incident = Incident.objects.create(name="Elevated error rates on checkout", status="monitoring")
    incident.components.add(backend)
    for status in ("investigating", "monitoring"):
        IncidentUpdate.objects.create(incident=incident, status=status, body="Update. " * 40)


GTHREAD = [
    *("--worker-class", "gthread", "--threads", "8", "--keep-alive", "30"),
    *("--worker-connections", "96"),
]


@contextmanager
def portal(
    snapshot: str, workers: int, extra: tuple[str, ...] = (), app: str = "portal.wsgi"
) -> Iterator[int]:
    """gunicorn with the portal on the scratch database, run as the README says (as
    deploy/nginx.conf expects it): no access log, which would cost more than serving the
    file (the portal logs requests itself, status reads at debug)."""
    port = free_port()
    database = database_url(connection.settings_dict["NAME"])
    env = {**os.environ, "DATABASE_URL": database, "STATUS_SNAPSHOT_DIR": snapshot, "DEBUG": ""}
    env.setdefault("SECRET_KEY", "bench-" + "x" * 50)
    env.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost")
    env.setdefault("SECURE_SSL_REDIRECT", "0")  # plain HTTP on loopback, as behind TLS
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    # --preload: every worker is ready when the port opens, so none misses the start of the
    # measurement (connections are kept alive by gthread: a late worker would get none).
    command = [
        *(sys.executable, "-m", "gunicorn", app, "-b", f"127.0.0.1:{port}"),
        *("--workers", str(workers), "--preload", *extra),
    ]
    with serving(command, port, env=env, cwd=ROOT, **quiet):
        yield port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    args = parser.parse_args()
    for tool in ("nginx", "wrk"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is not installed: apt-get install -y nginx wrk")

    # nginx's workers run as an unprivileged user: everything they read must be readable.
    tmp = Path(tempfile.mkdtemp(prefix="bench-status-", dir="/tmp"))
    tmp.chmod(0o755)
    snapshot, static = tmp / "status", tmp / "static"
    settings.STATUS_SNAPSHOT_DIR = str(snapshot)
    with scratch_database():
        populate()
        publish()
        # The baseline serves byte-for-byte the same files as plain static files.
        (static / "status").mkdir(parents=True)
        shutil.copytree(snapshot / "api", static / "api")
        shutil.copy(snapshot / "index.html", static / "status" / "index.html")
        for path in [tmp, *tmp.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)

        def measure(port: int) -> dict[str, Result]:
            return {
                name: wrk(
                    f"http://127.0.0.1:{port}{path}",
                    connections=args.connections,
                    duration=args.duration,
                    threads=args.threads,
                )
                for name, path in PATHS.items()
            }

        results: dict[str, dict[str, Result]] = {}
        static_port, front_port = free_port(), free_port()
        with portal(str(snapshot), args.workers) as app_port:
            with nginx(static_config(tmp, static_port, str(static)), static_port):
                results["static"] = measure(static_port)
            with nginx(shipped_config(tmp, front_port, app_port, str(snapshot)), front_port):
                results["shipped"] = measure(front_port)
            results["gunicorn"] = measure(app_port)
        with portal(str(snapshot), args.workers, tuple(GTHREAD)) as app_port:
            results["gthread"] = measure(app_port)
        with portal(str(snapshot), args.workers, app="portal.wsgi:django_application") as port:
            results["django"] = measure(port)
    shutil.rmtree(tmp, ignore_errors=True)

    print(
        f"{args.connections} connections, {args.duration} s each, "
        f"gunicorn --workers {args.workers}, {os.cpu_count()} CPUs"
    )
    print(
        f"{'path':<14}{'served by':<10}{'req/s':>10}{'p99 ms':>9}{'vs static':>11}"
        f"{'socket errors':>15}"
    )
    for name in PATHS:
        base = results["static"][name][0]
        for way in ("static", "shipped", "django", "gunicorn", "gthread"):
            rate, p99, failed = results[way][name]
            print(f"{name:<14}{way:<10}{rate:>10.0f}{p99:>9.1f}{rate / base:>11.2f}{failed:>15}")
    targets = (("shipped", 0.5, 50), ("gunicorn", 0.05, 100), ("gthread", 0.05, 100))
    for way, least, limit in targets:
        for name in PATHS:
            rate, p99, failed = results[way][name]
            ratio = rate / results["static"][name][0]
            verdict = "met" if ratio >= least and p99 < limit and not failed else "MISSED"
            print(
                f"target {name}: {way} {ratio:.2f} of static (>= {least}), "
                f"p99 {p99:.1f} ms (< {limit}): {verdict}"
            )


if __name__ == "__main__":
    main()
