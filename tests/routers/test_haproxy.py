"""The HAProxy router against a real HAProxy and two real upstreams (stable v2.0.0,
canary v2.1.0): the split, stickiness, header routing, the kill switch, promotion,
a restart, and a runtime API that cannot be reached."""

from __future__ import annotations

import http.client
import shutil
import socket
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from governance.models import Service
from rollouts.traffic.haproxy import HAProxyRouter
from rollouts.traffic.haproxy_runtime import RuntimeAPI
from rollouts.traffic.router import RouterError, Target
from tests.routers.conftest import Upstreams, require
from tests.routers.haproxy_process import HAProxy, check
from tests.servers import closed_port, free_port, serving

pytestmark = pytest.mark.django_db

STABLE, CANARY = "v2.0.0", "v2.1.0"


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory whose unix socket paths fit the kernel's 108 bytes."""
    path = Path(tempfile.mkdtemp(prefix="haproxy-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(params=["unix"])
def service(
    request: pytest.FixtureRequest, short_dir: Path, tmp_path: Path, settings: Any
) -> Service:
    """The seeded `backend` service behind HAProxy, its runtime API on a unix socket (or
    on a TCP port with `indirect=True` and "tcp")."""
    require("haproxy")
    settings.ROUTER_FILES_DIR = str(tmp_path / "routers")
    service = Service.objects.get(name="backend")
    service.router = "haproxy"
    service.listen = f"127.0.0.1:{free_port()}"
    tcp = request.param == "tcp"
    service.haproxy_socket = f"127.0.0.1:{free_port()}" if tcp else str(short_dir / "admin.sock")
    service.save()
    return service


def target(upstreams: Upstreams, weight: int, **changes: str) -> Target:
    fields = {
        "stable_url": upstreams.stable_url,
        "canary_url": upstreams.canary_url,
        "stable_version": upstreams.stable_version,
        "canary_version": upstreams.canary_version,
    }
    return Target(weight=weight, **{**fields, **changes})


def get(port: int, headers: dict[str, str] | None = None) -> tuple[str, str]:
    """One request on a fresh connection: who served it, and the cookie HAProxy set."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/", headers=headers or {})
        response = connection.getresponse()
        response.read()
        cookie = (response.getheader("Set-Cookie") or "").split(";")[0]
        return response.getheader("X-Served-By") or f"HTTP {response.status}", cookie
    finally:
        connection.close()


def tally(port: int, requests: list[dict[str, str]]) -> Counter[str]:
    """Who served each of `requests` (their headers), sent from 16 threads."""
    with ThreadPoolExecutor(16) as pool:
        return Counter(version for version, _ in pool.map(lambda h: get(port, h), requests))


def cookie_of(port: int, version: str) -> str:
    """A cookie HAProxy set for a client it sent to `version`."""
    for _ in range(200):
        served, cookie = get(port)
        if served == version:
            return cookie
    raise AssertionError(f"no fresh client reached {version} in 200 requests")


def port_of(service: Service) -> int:
    return int(service.listen.rpartition(":")[2])


def test_the_rendered_config_passes_haproxy_check(
    service: Service, upstreams: Upstreams, tmp_path: Path
) -> None:
    router = HAProxyRouter(service)
    for number, tgt in enumerate([target(upstreams, 5), target(upstreams, 0, canary_url="")]):
        config = tmp_path / f"{number}.cfg"
        config.write_text(router.config(tgt))
        check(config)
    text = router.config(target(upstreams, 5))
    assert f"stats socket {service.haproxy_socket} mode 660 level admin" in text
    assert "cookie codex-canary-id insert indirect nocache maxlife 24h" in text
    assert f"server-state-file-name {router.state_file}" in text
    assert router.map_file.read_text() == "v2 canary\nv2.1 canary\nv2.1.0 canary\n"
    service.haproxy_socket = "127.0.0.1:9999"
    assert "stats socket ipv4@127.0.0.1:9999 level admin" in HAProxyRouter(service).config(
        target(upstreams, 5)
    )


@pytest.mark.parametrize("weight", [1, 5, 20])
def test_fresh_clients_reach_the_canary_in_proportion_to_its_weight(
    service: Service, upstreams: Upstreams, tmp_path: Path, weight: int
) -> None:
    router = HAProxyRouter(service)
    with HAProxy(router, target(upstreams, 0), tmp_path):
        started = time.monotonic()
        router.apply(target(upstreams, weight), timeout=5)
        print(f"apply({weight}%) took {(time.monotonic() - started) * 1000:.1f} ms")
        served = tally(port_of(service), [{}] * 5000)
    assert served[STABLE] + served[CANARY] == 5000
    assert abs(served[CANARY] / 50 - weight) <= 1, served


def test_a_client_with_its_cookie_stays_on_its_variant(
    service: Service, upstreams: Upstreams, tmp_path: Path
) -> None:
    router = HAProxyRouter(service)
    with HAProxy(router, target(upstreams, 50), tmp_path):
        port = port_of(service)
        for version in (STABLE, CANARY):
            cookie = cookie_of(port, version)
            assert tally(port, [{"Cookie": cookie}] * 50) == {version: 50}


def test_the_canary_header_names_the_canary_by_version_or_dotted_prefix(
    service: Service, upstreams: Upstreams, tmp_path: Path
) -> None:
    router = HAProxyRouter(service)
    with HAProxy(router, target(upstreams, 0), tmp_path):
        router.apply(target(upstreams, 1), timeout=5)
        port = port_of(service)
        for value in ("v2", "v2.1", "v2.1.0"):
            assert tally(port, [{"X-Canary-Version": value}] * 30) == {CANARY: 30}, value
        others = tally(port, [{"X-Canary-Version": "v21"}, {"X-Canary-Version": "v2.0"}] * 50)
        # 1% of 100 load-balanced requests, not the 100 a header match would send.
        assert others[CANARY] <= 2, others

        router.apply(target(upstreams, 1, canary_version="v2.2.0"), timeout=5)
        assert tally(port, [{"X-Canary-Version": "v2.2"}] * 30) == {CANARY: 30}
        former = tally(port, [{"X-Canary-Version": "v2.1"}] * 100)
    assert former[CANARY] <= 2, former


def test_the_kill_switch_takes_everyone_off_the_canary_at_once(
    service: Service, upstreams: Upstreams, tmp_path: Path
) -> None:
    router = HAProxyRouter(service)
    with HAProxy(router, target(upstreams, 50), tmp_path):
        port = port_of(service)
        holder = {"Cookie": cookie_of(port, CANARY)}
        header = {"X-Canary-Version": "v2.1.0"}
        assert tally(port, [holder, header] * 10) == {CANARY: 20}

        description = router.apply(target(upstreams, 0), timeout=5)
        served = tally(port, [{}, holder, header] * 334)
    assert "maintenance" in description
    assert served == {STABLE: 1002}


def test_the_kill_switch_cuts_a_request_in_flight_on_the_canary(
    service: Service, upstreams: Upstreams, tmp_path: Path
) -> None:
    slow_port = free_port()
    slow = [sys.executable, "-m", "rollouts.upstream", "--port", str(slow_port)]
    slow += ["--version", CANARY, "--latency-ms", "5000"]
    router = HAProxyRouter(service)
    slow_target = target(upstreams, 50, canary_url=f"http://127.0.0.1:{slow_port}")
    with serving(slow, slow_port), HAProxy(router, slow_target, tmp_path):
        port = port_of(service)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/", headers={"X-Canary-Version": "v2.1.0"})
        wait_for_canary_session(service)

        started = time.monotonic()
        router.apply(target(upstreams, 0), timeout=5)
        try:
            response = connection.getresponse()
            answer = response.getheader("X-Served-By") or f"HTTP {response.status}"
        except (http.client.HTTPException, OSError) as exc:
            answer = type(exc).__name__
        finally:
            connection.close()
        assert answer != CANARY
        assert time.monotonic() - started < 4, "the request ran to its end on the canary"
        assert tally(port, [{"X-Canary-Version": "v2.1.0"}] * 20) == {STABLE: 20}


def wait_for_canary_session(service: Service) -> None:
    """Until HAProxy reports a session open on the canary server."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for line in RuntimeAPI(service.haproxy_socket, deadline).run("show stat").splitlines():
            fields = line.split(",")
            if fields[:2] == ["be_backend", "canary"] and fields[4] not in ("", "0"):
                return
        time.sleep(0.01)
    raise AssertionError("no session opened on the canary")


def test_promotion_sends_everyone_to_the_former_canary(
    service: Service, upstreams: Upstreams, tmp_path: Path
) -> None:
    router = HAProxyRouter(service)
    with HAProxy(router, target(upstreams, 20), tmp_path):
        port = port_of(service)
        cookies = [{"Cookie": cookie_of(port, version)} for version in (STABLE, CANARY)]
        router.apply(
            Target(weight=0, stable_url=upstreams.canary_url, stable_version=CANARY), timeout=5
        )
        served = tally(port, [{}, *cookies, {"X-Canary-Version": "v2.1.0"}] * 250)
    assert served == {CANARY: 1000}


@pytest.mark.parametrize("applied", [5, 0])
def test_a_restart_brings_back_the_last_applied_weights_and_state(
    service: Service, upstreams: Upstreams, tmp_path: Path, applied: int
) -> None:
    router = HAProxyRouter(service)
    # The config was rendered for the other state: the state file must win over it.
    with HAProxy(router, target(upstreams, 5 - applied), tmp_path) as proxy:
        port = port_of(service)
        holder = {"Cookie": cookie_of(port, CANARY if applied == 0 else STABLE)}
        router.apply(target(upstreams, applied), timeout=5)
        proxy.stop()
        proxy.start()
        fresh = tally(port, [{}] * 1000)
        followers = tally(port, [holder, {"X-Canary-Version": "v2.1"}] * 50)
    assert abs(fresh[CANARY] / 10 - applied) <= 1, fresh
    assert followers == ({CANARY: 50, STABLE: 50} if applied else {STABLE: 100})


@pytest.mark.parametrize("service", ["unix", "tcp"], indirect=True)
def test_an_unreachable_runtime_api_is_a_router_error_and_changes_nothing(
    service: Service, upstreams: Upstreams, tmp_path: Path
) -> None:
    router = HAProxyRouter(service)
    with HAProxy(router, target(upstreams, 0), tmp_path) as proxy:
        router.apply(target(upstreams, 5), timeout=5)
        saved = router.state_file.read_bytes(), router.map_file.read_bytes()
        proxy.stop()

        started = time.monotonic()
        with pytest.raises(RouterError, match="unreachable"):
            router.apply(target(upstreams, 20), timeout=5)
        assert time.monotonic() - started < 1
        assert (router.state_file.read_bytes(), router.map_file.read_bytes()) == saved

        proxy.start()
        assert "weight 20" in router.apply(target(upstreams, 20), timeout=5)
        assert router.state_file.read_bytes() != saved[0]
        assert abs(tally(port_of(service), [{}] * 1000)[CANARY] / 10 - 20) <= 1


def test_a_socket_that_does_not_exist_or_a_closed_port_is_a_router_error(
    service: Service, upstreams: Upstreams
) -> None:
    for address in ("/nonexistent/haproxy/admin.sock", f"127.0.0.1:{closed_port()}"):
        service.haproxy_socket = address
        with pytest.raises(RouterError, match=address):
            HAProxyRouter(service).apply(target(upstreams, 5), timeout=5)
    assert not HAProxyRouter(service).state_file.exists()


def test_a_runtime_api_that_never_answers_misses_the_deadline(
    service: Service, upstreams: Upstreams
) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        service.haproxy_socket = f"127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            HAProxyRouter(service).apply(target(upstreams, 5), timeout=0.5)
    assert 0.4 < time.monotonic() - started < 2


def test_a_runtime_api_that_refuses_is_a_router_error_with_its_answer(
    service: Service, upstreams: Upstreams, tmp_path: Path
) -> None:
    with HAProxy(HAProxyRouter(service), target(upstreams, 5), tmp_path):
        other = Service.objects.get(name="frontend")
        other.haproxy_socket = service.haproxy_socket
        with pytest.raises(RouterError, match="Can't find backend"):
            HAProxyRouter(other).apply(target(upstreams, 20), timeout=5)
