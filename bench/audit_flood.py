"""A council member's vote latency while the kill switch is flooded: p95 of
`POST /api/v1/releases/{id}/votes/` (council token) with 16 clients sending unauthenticated
kill-switch calls as fast as they are answered, beside the same p95 without the flood, in
one run against one gunicorn. Target: flood p95 <= 1.5 x quiet p95.

Also printed: the flood's rate and answers (401 until the refused-call limit, then 429),
and what it left in the audit trail. Traffic goes to 127.0.0.1 only; the flood stops when
the measured votes are done. Runs in a scratch database (created and dropped here) on
DATABASE_URL's server, with the rate limits in REDIS_URL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/canary_portal \\
    REDIS_URL=redis://127.0.0.1:6379/14 \\
        .venv/bin/python bench/audit_flood.py [--votes 300] [--clients 16] [--body-kib 512]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from common import scratch_database
from django.db import connection
from django.db.models import Sum
from django.db.models.functions import Length

from governance.members import member_set_roles
from governance.models import AuditEvent
from governance.services import release_create
from governance.tokens import token_issue
from tests.servers import ROOT, database_url, free_port, gunicorn_command, serving

KILL = "/ops/canary/abort"


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20, method="inclusive")[-1]


def flood_request(port: int, body_bytes: int) -> bytes:
    """One unauthenticated kill-switch call: the guide's fields, then short junk fields up
    to `body_bytes` (the shape that made the old audit summary copy the whole body)."""
    body: dict[str, object] = {
        "version": "v2.1.0",
        "service": "backend",
        "reason": "High error rate detected",
        "confirmed": True,
        "operator": "@nobody",
    }
    for n in range(max(0, (body_bytes - len(json.dumps(body))) // 25)):
        body[f"field-{n:07d}"] = "x" * 8
    payload = json.dumps(body).encode()
    head = (
        f"POST {KILL} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + payload


class Flood:
    """`clients` threads, each sending one call at a time on a fresh connection (as a
    sync gunicorn answers) until stopped, together `rate` calls/s (0: each as soon as the
    previous one is answered); counts the answers by status. They run in a
    process of their own: sharing the measuring process's interpreter lock would slow
    the measured votes on the client side."""

    def __init__(self, port: int, clients: int, request: bytes, rate: float) -> None:
        self.port, self.request, self.clients = port, request, clients
        self.interval = clients / rate if rate else 0.0  # per client; 0: back to back
        context = multiprocessing.get_context("fork")
        self.stopping = context.Event()
        self.results = context.Queue()
        self.process = context.Process(target=self.run, daemon=True)
        self.answers: Counter[str] = Counter()

    def call(self) -> str:
        with socket.create_connection(("127.0.0.1", self.port), timeout=30) as sock:
            # Answered before the whole body was sent: the answer may still be there.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                sock.sendall(self.request)
            try:
                head = sock.recv(64)
            except ConnectionResetError:
                return "reset"
        return head.split(b" ", 2)[1].decode() if head.startswith(b"HTTP/") else "reset"

    def run(self) -> None:
        """In the flood's process: the client threads, then the counts to the parent."""
        answers: Counter[str] = Counter()
        lock = threading.Lock()

        def client() -> None:
            due = time.monotonic()
            while not self.stopping.is_set():
                status = self.call()
                with lock:
                    answers[status] += 1
                if self.interval:  # paced: the next call on schedule, missed ones skipped
                    due = max(due + self.interval, time.monotonic())
                    self.stopping.wait(due - time.monotonic())

        threads = [threading.Thread(target=client) for _ in range(self.clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.results.put(dict(answers))

    @contextmanager
    def running(self) -> Iterator[None]:
        self.process.start()
        try:
            yield
        finally:
            self.stopping.set()
            self.answers.update(self.results.get(timeout=120))
            self.process.join(timeout=60)


def vote_latencies(base: str, release_id: int, token: str, votes: int) -> list[float]:
    """Seconds per vote, one after the other (each one replaces the previous: 200)."""
    url = f"{base}/api/v1/releases/{release_id}/votes/"
    headers = {"Authorization": f"Bearer {token}"}
    samples = []
    for n in range(votes):
        started = time.perf_counter()
        response = httpx.post(
            url, json={"decision": "approve", "comment": f"vote {n}"}, headers=headers, timeout=60
        )
        samples.append(time.perf_counter() - started)
        if response.status_code not in (200, 201):
            sys.exit(f"a vote was refused: {response.status_code} {response.text[:300]}")
    return samples


def audit_figures() -> tuple[int, int]:
    """Events and bytes of event data in the trail."""
    figures = AuditEvent.objects.aggregate(bytes=Sum(Length("data_json")))
    return AuditEvent.objects.count(), int(figures["bytes"] or 0)


@contextmanager
def portal(workers: int) -> Iterator[int]:
    """gunicorn with the portal on the scratch database, DEBUG off, logs discarded."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url(connection.settings_dict["NAME"]),
        "DEBUG": "",
        "SECURE_SSL_REDIRECT": "0",  # plain HTTP on loopback, as behind TLS
    }
    env.setdefault("SECRET_KEY", "bench-" + "x" * 50)
    env.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost")
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    with serving(gunicorn_command(port, workers), port, env=env, cwd=ROOT, **quiet):
        yield port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--votes", type=int, default=300, help="measured votes per phase")
    parser.add_argument("--clients", type=int, default=16, help="flooding clients")
    parser.add_argument("--body-kib", type=int, default=512, help="size of each flood body")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--rounds", type=int, default=3, help="quiet/flood alternations")
    parser.add_argument(
        "--rate",
        type=float,
        default=400,
        help="flood calls/s, all clients together (0: each client back to back)",
    )
    args = parser.parse_args()
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if not os.environ.get("REDIS_URL"):
        sys.exit("Set REDIS_URL: the rate limits count in Redis, as in production.")

    with scratch_database():
        author = member_set_roles(username="erin", roles=["engineer"]).user
        carol = member_set_roles(username="carol", roles=["council"]).user
        _, token = token_issue(user=carol, scopes=["votes:write"])
        release = release_create(
            author=author,
            service="backend",
            version="v2.1.0",
            tier="high",
            change_types=["bug_fix"],
            rollback_plan="Redeploy v2.0.3",
        )
        with portal(args.workers) as port:
            base = f"http://127.0.0.1:{port}"
            request = flood_request(port, args.body_kib * 1024)
            answers: Counter[str] = Counter()
            quiet: list[float] = []
            flooded: list[float] = []
            flood_seconds = 0.0
            vote_latencies(base, release.pk, token, 20)  # warm-up: every worker loaded
            before = audit_figures()
            # Quiet and flooded phases alternate, so that whatever else the machine does
            # weighs on both alike.
            per_round = max(1, args.votes // args.rounds)
            for _ in range(args.rounds):
                quiet += vote_latencies(base, release.pk, token, per_round)
                flood = Flood(port, args.clients, request, args.rate)
                started = time.perf_counter()
                with flood.running():
                    time.sleep(1)  # the flood at full speed before measuring
                    flooded += vote_latencies(base, release.pk, token, per_round)
                flood_seconds += time.perf_counter() - started
                answers += flood.answers
            after = audit_figures()

    calls = sum(answers.values())
    print(
        f"gunicorn --workers {args.workers}, {os.cpu_count()} CPUs; {args.clients} clients "
        f"flooding {KILL} unauthenticated with {args.body_kib} KiB bodies "
        f"({f'{args.rate:.0f} calls/s' if args.rate else 'back to back'}); "
        f"{len(quiet)} votes quiet and {len(flooded)} during the flood, in {args.rounds} rounds"
    )
    print(f"{'votes':<22}{'p50 ms':>9}{'p95 ms':>9}")
    for name, samples in (("quiet", quiet), ("during the flood", flooded)):
        print(f"{name:<22}{statistics.median(samples) * 1000:>9.1f}{p95(samples) * 1000:>9.1f}")
    listed = ", ".join(f"{status}: {count}" for status, count in sorted(answers.items()))
    print(f"flood: {calls} calls ({calls / flood_seconds:.0f}/s); answers {listed}")
    events = after[0] - before[0] - len(quiet) - len(flooded)  # one event per vote
    print(
        f"audit trail: {events} events from the flood, "
        f"{(after[1] - before[1]) / 1024:.1f} KiB of event data with the votes'"
    )
    ratio = p95(flooded) / p95(quiet)
    verdict = "met" if ratio <= 1.5 else "MISSED"
    print(f"target: flood p95 / quiet p95 = {ratio:.2f} (<= 1.5): {verdict}")


if __name__ == "__main__":
    main()
