"""The engine drives a real nginx: each phase's weight reaches it (clients in the canary
stay in it as the weight grows), the kill switch's 202 means no new request reaches the
canary, promotion sends everyone to the promoted server; a reload that fails holds the
recorded weight, alerts once and heals."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from django.core.management import call_command

from governance.models import Release, Service
from rollouts import engine, promotion
from rollouts.models import TrafficSplit
from tests.rollouts.conftest import at
from tests.routers.conftest import CANARY, STABLE, Upstreams, recorded, require, started
from tests.routers.http_load import fresh, get_many, with_cookie
from tests.routers.nginx_process import Nginx, running_nginx
from tests.servers import free_port

pytestmark = pytest.mark.django_db

KILL = "/ops/canary/abort"


@pytest.fixture
def nginx(tmp_path: Path, upstreams: Upstreams, settings: Any) -> Iterator[tuple[Nginx, int]]:
    """`backend` behind a real nginx, configured with service_set as an operator would."""
    require("nginx")
    settings.ALERT_EMAILS = ["oncall@example.com"]
    port = free_port()
    with running_nginx(tmp_path) as process:
        call_command(
            "service_set",
            "backend",
            "--router=nginx",
            f"--listen=127.0.0.1:{port}",
            f"--nginx-dir={process.include_dir}",
            f"--reload-command={process.reload_command}",
            f"--stable={upstreams.stable_url}",
            f"--canary={upstreams.canary_url}",
        )
        yield process, port


def canary_ids(port: int, sticky_ids: list[str]) -> set[str]:
    answers = get_many(port, with_cookie(sticky_ids))
    return {s for s, a in zip(sticky_ids, answers, strict=True) if a.served_by == CANARY}


def test_phases_reach_nginx_and_the_kill_switch_answers_once_nothing_reaches_the_canary(
    nginx: tuple[Nginx, int],
    approved: Callable[..., Release],
    team: dict[str, Any],
    clock: Any,
    client_for: Callable[..., Any],
) -> None:
    _, port = nginx
    # 20,000 clients: at 20% one point is 3.5 standard deviations of the split's noise.
    clients = [secrets.token_hex(16) for _ in range(20_000)]
    rollout = started(approved, team)
    assert recorded(rollout) == (1, 1, True)
    members = canary_ids(port, clients)
    assert abs(len(members) / 200 - 1) <= 1
    for boundary, weight in ((600, 5), (600 + 1200, 20)):
        clock.move_to(at(boundary))
        engine.tick()
        assert recorded(rollout) == (weight, weight, True)
        now_in = canary_ids(port, clients)
        assert members <= now_in  # raising the weight only adds clients
        assert abs(len(now_in) / 200 - weight) <= 1
        members = now_in

    body = {"version": CANARY, "service": "backend", "reason": "errors", "confirmed": True}
    response = client_for("oscar", "canary:abort").post(KILL, body, format="json")
    assert response.status_code == 202, response.json()
    holders = sorted(members)[:300]
    requests = [*with_cookie(holders), *fresh(400), *[{"X-Canary-Version": "v2"}] * 300]
    assert {a.served_by for a in get_many(port, requests)} == {STABLE}


def test_promotion_sends_everyone_to_the_promoted_server(
    nginx: tuple[Nginx, int], approved: Callable[..., Release], team: dict[str, Any]
) -> None:
    _, port = nginx
    rollout = started(approved, team)
    for member in ("sam", "carol"):  # a full promotion: two members
        promotion.rollout_promote_full(rollout=rollout, actor=team[member], confirmed=True)
    answers = get_many(port, [*fresh(500), *with_cookie([secrets.token_hex(8)] * 500)])
    assert {a.served_by for a in answers} == {CANARY}
    assert len(answers) == 1000


def test_a_failing_reload_holds_the_weight_alerts_once_and_recovers(
    nginx: tuple[Nginx, int],
    approved: Callable[..., Release],
    team: dict[str, Any],
    clock: Any,
) -> None:
    process, port = nginx
    rollout = started(approved, team)
    conf = Path(process.include_dir, "backend.conf")
    at_one = conf.read_bytes()
    Service.objects.filter(name="backend").update(reload_command="false")
    clock.move_to(at(600))
    engine.tick()
    assert recorded(rollout) == (1, 1, False)
    assert conf.read_bytes() == at_one  # the previous file is back
    split = TrafficSplit.objects.get(service="backend")
    assert "'false' failed" in split.error and split.pending["weight"] == 5
    for moment in (601, 610):  # inside the backoff, then a retry that fails again
        clock.move_to(at(moment))
        engine.tick()
    assert recorded(rollout) == (1, 1, False)
    assert len([m for m in mail.outbox if "router of backend" in m.subject]) == 1
    share = sum(a.served_by == CANARY for a in get_many(port, fresh(2000))) / 20
    assert abs(share - 1) <= 1

    Service.objects.filter(name="backend").update(reload_command=process.reload_command)
    clock.move_to(at(700))
    engine.tick()
    assert recorded(rollout) == (5, 5, True)
    share = sum(a.served_by == CANARY for a in get_many(port, fresh(5000))) / 50
    assert abs(share - 5) <= 1
