"""Health probes: critical vs non-critical, skipped targets, timeouts, a dead database."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from django.test import Client, override_settings

from tests.conftest import gunicorn
from tests.servers import closed_port

pytestmark = pytest.mark.django_db


class _Answer(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.server.status)  # type: ignore[attr-defined]
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_target() -> Iterator[ThreadingHTTPServer]:
    """A real local HTTP server; set `.status` to choose what it answers."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    server.status = 200  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def hung_target() -> Iterator[int]:
    """A TCP port that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    yield listener.getsockname()[1]
    listener.close()


def url(server: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/status"


def probe(path: str) -> tuple[int, dict]:
    response = Client().get(f"/health/{path}")
    return response.status_code, response.json()


def test_ready_is_ok_when_every_dependency_answers(http_target: ThreadingHTTPServer) -> None:
    with override_settings(
        HEALTH_EXTERNAL_URLS=[url(http_target)], HEALTH_PAYMENTS_URL=url(http_target)
    ):
        code, body = probe("ready")
    assert code == 200
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"process", "db", "cache", "external", "payments"}
    for check in body["checks"].values():
        assert check["status"] == "ok"
        assert check["latency_ms"] >= 0
        assert 0 < check["timeout_s"] <= 3
    assert body["checks"]["db"]["critical"] is True
    assert body["checks"]["payments"]["critical"] is True
    assert body["checks"]["cache"]["critical"] is False
    assert body["checks"]["external"]["critical"] is False
    assert body["checks"]["db"]["vendor"] == "postgresql"
    assert body["checks"]["cache"]["backend"] == "FailOpenRedisCache"


def test_unconfigured_targets_are_skipped_not_faked() -> None:
    with override_settings(HEALTH_EXTERNAL_URLS=[], HEALTH_PAYMENTS_URL=""):
        code, body = probe("ready")
        assert code == 200
        assert body["checks"]["external"]["status"] == "skipped"
        assert body["checks"]["payments"]["status"] == "skipped"
        assert "HEALTH_PAYMENTS_URL" in body["checks"]["payments"]["reason"]
        assert body["status"] == "ok"
        code, body = probe("payments")
        assert (code, body["status"]) == (200, "ok")
        assert body["checks"]["payments"]["status"] == "skipped"


def test_cache_down_degrades_but_does_not_fail() -> None:
    dead = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{closed_port()}/0",
        }
    }
    with override_settings(CACHES=dead):
        code, body = probe("cache")
        assert code == 200
        assert body["status"] == "degraded"
        assert body["checks"]["cache"]["status"] == "fail"
        assert "Connection" in body["checks"]["cache"]["error"]
        code, body = probe("ready")
        assert (code, body["status"]) == (200, "degraded")
        assert body["checks"]["db"]["status"] == "ok"


def test_external_api_down_degrades_the_probe() -> None:
    with override_settings(HEALTH_EXTERNAL_URLS=[f"http://127.0.0.1:{closed_port()}/"]):
        code, body = probe("external")
        assert (code, body["status"]) == (200, "degraded")
        assert body["checks"]["external"]["status"] == "fail"
        code, body = probe("startup")
        assert (code, body["status"]) == (200, "degraded")


def test_payment_gateway_down_fails_the_probe_with_503() -> None:
    with override_settings(HEALTH_PAYMENTS_URL=f"http://127.0.0.1:{closed_port()}/"):
        code, body = probe("payments")
        assert (code, body["status"]) == (503, "fail")
        code, body = probe("ready")
        assert (code, body["status"]) == (503, "fail")
        # liveness is about the process only: a dead gateway must not restart the pod
        code, body = probe("live")
        assert (code, body["status"]) == (200, "ok")
        assert set(body["checks"]) == {"process"}


def test_payment_gateway_answering_an_error_status_fails(
    http_target: ThreadingHTTPServer,
) -> None:
    http_target.status = 502  # type: ignore[attr-defined]
    with override_settings(HEALTH_PAYMENTS_URL=url(http_target)):
        code, body = probe("payments")
    assert code == 503
    assert "502" in body["checks"]["payments"]["error"]


def test_a_hung_dependency_cannot_hang_the_probe(hung_target: int) -> None:
    with override_settings(
        HEALTH_PAYMENTS_URL=f"http://127.0.0.1:{hung_target}/",
        HEALTH_EXTERNAL_URLS=[f"http://127.0.0.1:{hung_target}/"],
        HEALTH_CHECK_TIMEOUT_S=0.5,
    ):
        started = time.monotonic()
        code, body = probe("ready")
        elapsed = time.monotonic() - started
    assert elapsed < 2.5
    assert code == 503
    assert body["checks"]["payments"]["status"] == "fail"
    assert body["checks"]["external"]["status"] == "fail"
    assert body["checks"]["db"]["status"] == "ok"


def test_probes_refuse_writes_and_are_never_cached() -> None:
    client = Client()
    assert client.post("/health/ready").status_code == 405
    response = client.get("/health/live")
    assert "no-store" in response["Cache-Control"]
    assert client.get("/health/unknown").status_code == 404


@pytest.fixture
def server_without_database() -> Iterator[tuple[str, subprocess.Popen]]:
    """gunicorn with DEBUG off, pointed at a database port where nothing listens."""
    with gunicorn(
        capture=True,
        DEBUG="0",
        SECRET_KEY="x" * 60,
        DATABASE_URL=f"postgres://postgres@127.0.0.1:{closed_port()}/nowhere",
        REDIS_URL=None,
        LOG_FORMAT="json",
    ) as server:
        yield server


def test_dead_database_fails_db_and_ready_but_not_live(
    server_without_database: tuple[str, subprocess.Popen],
) -> None:
    base, proc = server_without_database
    db = httpx.get(f"{base}/health/db", timeout=10)
    ready = httpx.get(f"{base}/health/ready", timeout=10)
    live = httpx.get(f"{base}/health/live", timeout=10)
    assert db.status_code == 503
    assert db.json()["checks"]["db"]["status"] == "fail"
    assert ready.status_code == 503
    assert ready.json()["status"] == "fail"
    assert live.status_code == 200
    # Plain HTTP probes are not redirected to HTTPS even with DEBUG off.
    assert not db.is_redirect

    request_id = db.headers["X-Request-ID"]
    proc.terminate()
    output, _ = proc.communicate(timeout=10)
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    of_request = [line for line in lines if line.get("request_id") == request_id]
    assert {line["event"] for line in of_request} >= {"request_started", "request_finished"}
    assert all("timestamp" in line and "level" in line for line in of_request)
