"""PostgreSQL unreachable for the API: a JSON 503 with `detail` (and `Retry-After`),
never an HTML 500; the same server answers again once the database is back."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import httpx
import pytest

from governance.tokens import TOKEN_PREFIX, token_issue
from tests import conftest
from tests.conftest import gunicorn
from tests.servers import closed_port, free_port

KILL_BODY = {"version": "v2.1.0", "reason": "errors", "confirmed": True}


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text[:300]
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["detail"]
    assert response.headers["retry-after"]


def test_an_unreachable_database_is_a_json_503() -> None:
    dead = f"postgres://postgres@127.0.0.1:{closed_port()}/canary_portal"
    with gunicorn(DATABASE_URL=dead) as (url, _), httpx.Client(base_url=url, timeout=20) as http:
        bearer = {"Authorization": f"Bearer {TOKEN_PREFIX}well-formed-but-unknowable"}
        assert_unavailable(http.get("/api/v1/releases/", headers=bearer))
        assert_unavailable(http.get("/ops/canary/metrics?version=v2.1.0", headers=bearer))
        assert_unavailable(http.post("/ops/canary/abort", json=KILL_BODY, headers=bearer))
        assert_unavailable(http.post("/api/v1/metrics/", json={"samples": []}, headers=bearer))
        # What needs no database still answers as usual, in JSON.
        unauthenticated = http.get("/api/v1/releases/")
        assert unauthenticated.status_code == 401 and unauthenticated.json()["detail"]
        missing = http.get("/api/v1/no-such-thing/")
        assert missing.status_code == 404 and missing.json()["detail"]


class Cuttable:
    """A TCP relay to PostgreSQL that can be cut (every connection closed, new ones
    refused) and restored: the database going away under a running server."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target, self.port = target, free_port()
        self.up = threading.Event()
        self.up.set()
        self.sockets: list[socket.socket] = []
        self.listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up.is_set():
                client.close()
                continue
            upstream = socket.create_connection(self.target)
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def cut(self) -> None:
        self.up.clear()
        for sock in self.sockets:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self.sockets.clear()

    def restore(self) -> None:
        self.up.set()

    def close(self) -> None:
        self.cut()
        self.listener.close()


@contextmanager
def relay_to_test_database() -> Iterator[tuple[Cuttable, str]]:
    url = httpx.URL(conftest.test_database_url())
    relay = Cuttable((url.host, url.port or 5432))
    try:
        yield relay, str(url.copy_with(port=relay.port))
    finally:
        relay.close()


@pytest.mark.django_db(transaction=True)
def test_the_database_going_away_and_back_under_a_running_server(team: dict) -> None:
    _, token = token_issue(user=team["oscar"], scopes=["read", "canary:abort"])
    bearer = {"Authorization": f"Bearer {token}"}
    with (
        relay_to_test_database() as (relay, database),
        gunicorn(DATABASE_URL=database, DB_CONN_MAX_AGE="60") as (url, _),
        httpx.Client(base_url=url, timeout=20, headers=bearer) as http,
    ):
        assert http.get("/api/v1/releases/").status_code == 200
        relay.cut()
        assert_unavailable(http.get("/api/v1/releases/"))
        assert_unavailable(http.post("/ops/canary/abort", json=KILL_BODY))
        relay.restore()
        assert http.get("/api/v1/releases/").status_code == 200
        missing = http.post("/ops/canary/abort", json=KILL_BODY)
        assert missing.status_code == 404 and missing.json()["detail"]
