"""The engine drives a real HAProxy: each phase's weight, the kill switch and promotion
reach it, measured with real requests; an unreachable runtime API leaves the recorded
weight where it was, alerts once, holds raises and the kill switch's answer, and heals."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from django.core.management import call_command

from governance.models import Release, Service
from rollouts import engine, promotion
from rollouts.models import TrafficSplit
from rollouts.traffic.haproxy import HAProxyRouter
from rollouts.traffic.router import Target
from tests.rollouts.conftest import at
from tests.routers.conftest import CANARY, STABLE, Upstreams, recorded, require, started
from tests.routers.haproxy_process import HAProxy
from tests.routers.test_haproxy import cookie_of, tally
from tests.servers import free_port

pytestmark = pytest.mark.django_db

KILL = "/ops/canary/abort"


@pytest.fixture
def proxy(upstreams: Upstreams, tmp_path: Path, settings: Any) -> Iterator[tuple[HAProxy, int]]:
    """`backend` behind a real HAProxy, configured with service_set as an operator would."""
    require("haproxy")
    settings.ROUTER_FILES_DIR = str(tmp_path / "routers")
    settings.ALERT_EMAILS = ["oncall@example.com"]
    short = Path(tempfile.mkdtemp(prefix="haproxy-"))
    port = free_port()
    service = Service.objects.get(name="backend")
    service.router, service.listen = "haproxy", f"127.0.0.1:{port}"
    service.haproxy_socket = str(short / "admin.sock")
    service.stable_url, service.canary_url = upstreams.stable_url, upstreams.canary_url
    haproxy = HAProxy(
        HAProxyRouter(service), Target(weight=0, stable_url=upstreams.stable_url), tmp_path
    )
    with haproxy:
        call_command(
            "service_set",
            "backend",
            "--router=haproxy",
            f"--listen={service.listen}",
            f"--haproxy-socket={service.haproxy_socket}",
            f"--stable={upstreams.stable_url}",
            f"--canary={upstreams.canary_url}",
        )
        yield haproxy, port
    shutil.rmtree(short, ignore_errors=True)


def canary_share(port: int, clients: int = 5000) -> float:
    return 100 * tally(port, [{}] * clients)[CANARY] / clients


def test_each_phase_the_kill_switch_and_its_cookie_holders_reach_haproxy(
    proxy: tuple[HAProxy, int],
    approved: Callable[..., Release],
    team: dict[str, Any],
    clock: Any,
    client_for: Callable[..., Any],
) -> None:
    _, port = proxy
    rollout = started(approved, team)
    assert recorded(rollout) == (1, 1, True)
    assert abs(canary_share(port) - 1) <= 1
    for boundary, weight in ((600, 5), (600 + 1200, 20)):
        clock.move_to(at(boundary))
        engine.tick()
        assert recorded(rollout) == (weight, weight, True)
        assert abs(canary_share(port) - weight) <= 1
    holder = {"Cookie": cookie_of(port, CANARY)}

    body = {"version": CANARY, "service": "backend", "reason": "errors", "confirmed": True}
    response = client_for("oscar", "canary:abort").post(KILL, body, format="json")
    assert response.status_code == 202, response.json()
    served = tally(port, [{}, holder, {"X-Canary-Version": CANARY}] * 334)
    assert served == {STABLE: 1002}


def test_promotion_sends_everyone_to_the_promoted_server(
    proxy: tuple[HAProxy, int],
    approved: Callable[..., Release],
    team: dict[str, Any],
    upstreams: Upstreams,
) -> None:
    _, port = proxy
    rollout = started(approved, team)
    for member in ("sam", "carol"):  # a full promotion: two members
        promotion.rollout_promote_full(rollout=rollout, actor=team[member], confirmed=True)
    assert tally(port, [{}] * 1000) == {CANARY: 1000}
    service = Service.objects.get(name="backend")
    # The promoted version's server is stable now; the former stable is the next canary slot.
    assert (service.stable_url, service.canary_url) == (upstreams.canary_url, upstreams.stable_url)


def test_an_unreachable_runtime_api_holds_the_weight_alerts_once_and_recovers(
    proxy: tuple[HAProxy, int],
    approved: Callable[..., Release],
    team: dict[str, Any],
    clock: Any,
) -> None:
    haproxy, port = proxy
    rollout = started(approved, team)
    haproxy.stop()
    clock.move_to(at(600))
    engine.tick()
    assert recorded(rollout) == (1, 1, False)  # the phase moved on, its weight did not
    split = TrafficSplit.objects.get(service="backend")
    assert "unreachable" in split.error and split.pending["weight"] == 5
    alerts = [m for m in mail.outbox if "router of backend" in m.subject]
    assert len(alerts) == 1
    clock.move_to(at(601))  # within the backoff: no call, no second alert
    engine.tick()
    assert recorded(rollout) == (1, 1, False)
    clock.move_to(at(606))
    engine.tick()  # tried again, still unreachable: still one alert
    assert len([m for m in mail.outbox if "router of backend" in m.subject]) == 1

    haproxy.start()  # its server-state file brings back the confirmed 1%
    assert abs(canary_share(port, 2000) - 1) <= 1
    clock.move_to(at(700))
    engine.tick()
    assert recorded(rollout) == (5, 5, True)
    assert abs(canary_share(port) - 5) <= 1


def test_a_kill_switch_the_router_did_not_confirm_answers_502_and_keeps_trying(
    proxy: tuple[HAProxy, int],
    approved: Callable[..., Release],
    team: dict[str, Any],
    clock: Any,
    client_for: Callable[..., Any],
) -> None:
    haproxy, port = proxy
    rollout = started(approved, team)
    haproxy.stop()
    body = {"version": CANARY, "service": "backend", "reason": "errors", "confirmed": True}
    response = client_for("oscar", "canary:abort").post(KILL, body, format="json")
    assert response.status_code == 502, response.json()
    assert response.json()["state"] == "rolling_back"
    assert "did not confirm weight 0" in response.json()["detail"]
    assert recorded(rollout) == (1, 1, False)

    haproxy.start()
    clock.move_to(at(5))
    engine.tick()
    assert recorded(rollout)[1:] == (0, True)
    assert tally(port, [{}] * 1000) == {STABLE: 1000}
