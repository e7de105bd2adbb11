"""Audit-trail appends per second, beside plain inserts of the same rows.

Appends take an advisory lock, read the chain head and hash the event; the baseline
inserts identical rows with the same one-transaction-per-row cost but no chaining.
Runs in a scratch database (created and dropped here) on DATABASE_URL's server.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/canary_portal \
        .venv/bin/python bench/audit_append.py [--events 2000] [--threads 4]
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ.setdefault("DEBUG", "1")

import django

django.setup()

from django.db import connection, transaction  # noqa: E402

from governance.audit import audit_append  # noqa: E402
from governance.models import AuditEvent  # noqa: E402
from portal import clock  # noqa: E402


def plain_insert(n: int) -> None:
    with transaction.atomic():
        AuditEvent.objects.create(
            seq=10_000_000 + n,
            at=clock.now(),
            actor="bench",
            action="bench.plain",
            data_json=f'{{"n":{n}}}',
            prev_hash="0" * 64,
            hash=f"{n:064d}",
        )


def chained_append(n: int) -> None:
    audit_append(action="bench.chained", data={"n": n})


def rate(work: Callable[[int], None], events: int, threads: int) -> float:
    per_thread = events // threads

    def run(offset: int) -> None:
        for i in range(per_thread):
            work(offset + i)
        connection.close()

    workers = [threading.Thread(target=run, args=(t * per_thread,)) for t in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return per_thread * threads / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("Set DATABASE_URL to a PostgreSQL server.")
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        print(f"{'threads':>7} {'plain/s':>10} {'chained/s':>10} {'ratio':>6}")
        for threads in sorted({1, args.threads}):
            plain = rate(plain_insert, args.events, threads)
            with connection.cursor() as cursor:
                cursor.execute("SET governance.allow_audit_truncate = 'on'")
                cursor.execute("TRUNCATE governance_auditevent")
            chained = rate(chained_append, args.events, threads)
            with connection.cursor() as cursor:
                cursor.execute("TRUNCATE governance_auditevent")
            print(f"{threads:>7} {plain:>10.0f} {chained:>10.0f} {chained / plain:>6.2f}")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
