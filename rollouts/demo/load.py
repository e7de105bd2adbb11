"""The demo's visitors: real HTTP requests through nginx, from a few threads, each on
keep-alive connections (http.client), to 127.0.0.1 only.

Each request comes from a fresh visitor (no cookie: nginx picks a variant and sets the
sticky cookie `codex-canary-id`) or, with the share `returning`, from a visitor seen
before, who sends the cookie nginx gave them. What the visitors saw is counted per
service: answers by version and status, requests that got no answer, and returning
visitors served by another version than last time (a weight change moves some).
"""

from __future__ import annotations

import http.client
import random
import threading
import time
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie

COOKIE = "codex-canary-id"
HOST = "127.0.0.1"
TIMEOUT_S = 5.0
# A reload closes the old workers' idle keep-alive connections: such a request was never
# served, so it is sent again on a new connection.
_DROPPED = (http.client.RemoteDisconnected, http.client.BadStatusLine, ConnectionError)


@dataclass
class Seen:
    """What one service's visitors saw."""

    answers: Counter[tuple[str, int]] = field(default_factory=Counter)  # (version, status)
    unanswered: int = 0
    moved: int = 0  # returning visitors served by another version than last time

    @property
    def requests(self) -> int:
        return sum(self.answers.values())

    def served(self, version: str) -> int:
        return sum(n for (served_by, _), n in self.answers.items() if served_by == version)


class Visitors:
    """One service's visitors: the sticky ids nginx gave (the most recent `keep`) and the
    version each was served last."""

    def __init__(self, port: int, keep: int, rnd: random.Random) -> None:
        self.port, self.rnd, self.lock = port, rnd, threading.Lock()
        self.known: deque[str] = deque(maxlen=keep)
        self.last: dict[str, str] = {}
        self.seen = Seen()

    def pick(self, returning: float) -> str:
        """A returning visitor's sticky id, or "" for a fresh one."""
        with self.lock:
            if self.known and self.rnd.random() < returning:
                return self.rnd.choice(self.known)
            return ""

    def record(self, sticky: str, given: str, version: str, status: int) -> None:
        """One answer: to a returning visitor (`sticky`) or a fresh one (`given` the id
        nginx set, "" when it set none)."""
        with self.lock:
            self.seen.answers[version, status] += 1
            if sticky in self.last and version:
                self.seen.moved += self.last[sticky] != version
                self.last[sticky] = version
            if given:
                if len(self.known) == self.known.maxlen:
                    self.last.pop(self.known[0], None)
                self.known.append(given)
                self.last[given] = version

    def take(self) -> Seen:
        """What was seen since the last call."""
        with self.lock:
            seen, self.seen = self.seen, Seen()
        return seen


def _sticky_id(header: str | None) -> str:
    cookie: SimpleCookie = SimpleCookie()
    try:
        cookie.load(header or "")
    except CookieError:
        return ""
    return cookie[COOKIE].value if COOKIE in cookie else ""


class Load:
    """Requests to each service's nginx port, `threads` at a time per service."""

    def __init__(
        self,
        ports: dict[str, int],
        *,
        threads: int = 3,
        returning: float = 0.3,
        keep: int = 1000,
        rnd: random.Random | None = None,
    ) -> None:
        rnd = rnd or random.Random()  # noqa: S311 - who visits, not secrets
        self.visitors = {service: Visitors(port, keep, rnd) for service, port in ports.items()}
        self.threads, self.returning = threads, returning
        self._pool = ThreadPoolExecutor(len(ports) * threads, thread_name_prefix="visitor")
        self._local = threading.local()
        self._stop = threading.Event()

    def send(self, per_service: int, spread_s: float = 0.0) -> dict[str, Seen]:
        """`per_service` GETs to each service, spread evenly over `spread_s` seconds (0:
        as fast as they go); returns what the visitors saw."""
        futures = []
        for visitors in self.visitors.values():
            for k in range(self.threads):
                count = per_service // self.threads + (k < per_service % self.threads)
                if count:
                    futures.append(self._pool.submit(self._visit, visitors, count, spread_s))
        wait(futures)
        for future in futures:
            future.result()
        return {service: visitors.take() for service, visitors in self.visitors.items()}

    def close(self) -> None:
        self._stop.set()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _visit(self, visitors: Visitors, count: int, spread_s: float) -> None:
        interval = spread_s / count
        due = time.monotonic()
        for _ in range(count):
            if self._stop.is_set():
                return
            sticky = visitors.pick(self.returning)
            headers = {"Cookie": f"{COOKIE}={sticky}"} if sticky else {}
            answer = self._get(visitors.port, headers)
            if answer is None:
                with visitors.lock:
                    visitors.seen.unanswered += 1
            else:
                visitors.record(sticky, *answer)
            if interval:
                due += interval
                pause = due - time.monotonic()
                if pause > 0:
                    time.sleep(pause)

    def _get(self, port: int, headers: dict[str, str]) -> tuple[str, str, int] | None:
        """(sticky id nginx set, version that answered, status), None without an answer."""
        connections: dict[int, http.client.HTTPConnection] = self._local.__dict__.setdefault(
            "connections", {}
        )
        for _ in range(3):
            connection = connections.get(port)
            if connection is None:
                connection = connections[port] = http.client.HTTPConnection(
                    HOST, port, timeout=TIMEOUT_S
                )
            try:
                connection.request("GET", "/", headers=headers)
                response = connection.getresponse()
                response.read()
            except _DROPPED:
                connection.close()
                del connections[port]
                continue
            except OSError:  # refused, timed out: nginx is not there
                connection.close()
                del connections[port]
                return None
            given = _sticky_id(response.getheader("Set-Cookie"))
            return given, response.getheader("X-Served-By") or "", response.status
        return None
