"""Many requests, fast: a few threads, each on its own keep-alive connection (standard
library only, no cookie jar: each request carries exactly the headers given)."""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from http.cookies import SimpleCookie

COOKIE = "codex-canary-id"
# A reload closes the old workers' idle keep-alive connections: such a request was never
# served, so it is sent again on a new connection.
_DROPPED = (http.client.RemoteDisconnected, ConnectionError, http.client.BadStatusLine)


@dataclass(frozen=True)
class Answer:
    status: int
    served_by: str
    set_cookie: str  # the sticky id nginx set, "" when it set none
    sent_at: float = 0.0  # time.monotonic() when the request was sent


class Client:
    def __init__(self, port: int) -> None:
        self.port = port
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def get(self, headers: dict[str, str] | None = None) -> Answer:
        for attempt in range(3):
            sent_at = time.monotonic()
            try:
                self.connection.request("GET", "/", headers=headers or {})
                response = self.connection.getresponse()
                response.read()
            except _DROPPED:
                self.connection.close()
                if attempt == 2:
                    raise
                continue
            cookie = SimpleCookie()
            cookie.load(response.getheader("Set-Cookie") or "")
            sticky = cookie[COOKIE].value if COOKIE in cookie else ""
            return Answer(response.status, response.getheader("X-Served-By") or "", sticky, sent_at)
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.connection.close()


def get_many(port: int, requests: Sequence[dict[str, str]], threads: int = 4) -> list[Answer]:
    """One GET / per item (its headers), answers in the same order."""
    answers: list[Answer | None] = [None] * len(requests)

    def work(start: int) -> None:
        client = Client(port)
        try:
            for index in range(start, len(requests), threads):
                answers[index] = client.get(requests[index])
        finally:
            client.close()

    workers = [threading.Thread(target=work, args=(start,)) for start in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    missing = [index for index, answer in enumerate(answers) if answer is None]
    if missing:
        raise RuntimeError(f"{len(missing)} requests got no answer")
    return [answer for answer in answers if answer is not None]


def fresh(count: int) -> list[dict[str, str]]:
    """`count` new clients: no cookie, no header."""
    return [{} for _ in range(count)]


def with_cookie(sticky_ids: Sequence[str], **headers: str) -> list[dict[str, str]]:
    return [{"Cookie": f"theme=dark; {COOKIE}={sticky}", **headers} for sticky in sticky_ids]


@contextmanager
def steady(
    port: int, requests: Sequence[dict[str, str]], threads: int = 4
) -> Iterator[list[Answer]]:
    """Requests sent over and over (cycling through `requests`) for as long as the block
    runs; the answers are in the yielded list once it has left the block."""
    answers: list[Answer] = []
    stop = threading.Event()
    lock = threading.Lock()

    def work(start: int) -> None:
        client = Client(port)
        index = start
        try:
            while not stop.is_set():
                answer = client.get(requests[index % len(requests)])
                with lock:
                    answers.append(answer)
                index += threads
        finally:
            client.close()

    workers = [threading.Thread(target=work, args=(start,)) for start in range(threads)]
    for worker in workers:
        worker.start()
    try:
        yield answers
    finally:
        stop.set()
        for worker in workers:
            worker.join()
