"""The nginx router against a real nginx and two real upstreams (stable v2.0.0, canary
v2.1.0): the split, stickiness, the header, the kill switch measured the moment `apply`
returns, promotion, and reloads that fail."""

from __future__ import annotations

import dataclasses
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from governance.choices import RouterKind
from governance.models import Service
from rollouts.traffic.nginx import NginxRouter
from rollouts.traffic.router import RouterError, Target
from tests.routers.conftest import Upstreams, require
from tests.routers.http_load import Answer, fresh, get_many, steady, with_cookie
from tests.routers.nginx_process import Nginx, main_config, nginx_test, running_nginx
from tests.servers import free_port

pytestmark = pytest.mark.django_db

CANARY, STABLE = "v2.1.0", "v2.0.0"
SALT = "5f1e2d3c4b5a6978"
TIMEOUT = 10.0


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[Nginx]:
    require("nginx")
    with running_nginx(tmp_path) as process:
        yield process


@pytest.fixture
def service(nginx: Nginx, upstreams: Upstreams) -> Service:
    service, _ = Service.objects.update_or_create(
        name="backend",
        defaults={
            "router": RouterKind.NGINX,
            "listen": f"127.0.0.1:{free_port()}",
            "nginx_dir": str(nginx.include_dir),
            "reload_command": nginx.reload_command,
            "stable_url": upstreams.stable_url,
            "canary_url": upstreams.canary_url,
        },
    )
    return service


def target(service: Service, weight: int) -> Target:
    return Target(weight, service.stable_url, service.canary_url, CANARY, STABLE, SALT)


def port(service: Service) -> int:
    return int(service.listen.rpartition(":")[2])


def canary_share(answers: list[Answer]) -> float:
    assert {answer.status for answer in answers} == {200}
    return 100 * sum(answer.served_by == CANARY for answer in answers) / len(answers)


def variants(service: Service, sticky_ids: list[str], **headers: str) -> dict[str, str]:
    answers = get_many(port(service), with_cookie(sticky_ids, **headers))
    return {sticky: answer.served_by for sticky, answer in zip(sticky_ids, answers, strict=True)}


def in_canary(service: Service, sticky_ids: list[str]) -> set[str]:
    return {sticky for sticky, v in variants(service, sticky_ids).items() if v == CANARY}


def ids(count: int) -> list[str]:
    return [secrets.token_hex(16) for _ in range(count)]


def test_the_rendered_config_passes_nginx_t(tmp_path: Path, service: Service) -> None:
    conf = main_config(tmp_path / "check")
    other = Service.objects.create(name="billing-api", listen="127.0.0.1:9")
    for weight in (0, 1, 5, 100):
        for each in (service, other):  # two services in one nginx: names of their own
            text = NginxRouter(each).config(target(service, weight))
            (conf.parent / "canary" / f"{each.name}.conf").write_text(text)
        checked = nginx_test(conf)
        assert checked.returncode == 0, f"weight {weight}: {checked.stderr}"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("canary_url", "http://127.0.0.1:9002/v2/"),
        ("canary_url", "unix:/run/canary.sock"),
        ("stable_url", "http://127.0.0.1:99999"),
        ("salt", 'a"; }'),
        ("canary_version", "v2;1"),
        ("listen", "8081"),
        ("listen", "127.0.0.1;:8081"),
    ],
)
def test_values_nginx_would_misread_are_refused(service: Service, field: str, value: str) -> None:
    split = target(service, 5)
    if field == "listen":
        service.listen = value
    else:
        split = dataclasses.replace(split, **{field: value})
    with pytest.raises(RouterError):
        NginxRouter(service).config(split)


def test_the_first_apply_starts_serving_and_says_so(service: Service) -> None:
    done = NginxRouter(service).apply(target(service, 5), TIMEOUT)

    assert done.startswith("nginx: backend.conf written, reloaded, 2 workers listening (")
    text = Path(service.nginx_dir, "backend.conf").read_text()
    assert text.startswith("# Managed by the canary release governance portal")
    first = get_many(port(service), fresh(1))[0]
    assert first.served_by in (CANARY, STABLE) and len(first.set_cookie) == 32


def test_new_clients_reach_the_canary_in_proportion_to_the_weight(service: Service) -> None:
    router = NginxRouter(service)
    router.apply(target(service, 0), TIMEOUT)
    # Enough clients that one point is four standard deviations of the share or more.
    for weight, clients in ((1, 5_000), (5, 8_000), (20, 26_000)):
        assert "2 old workers gone" in router.apply(target(service, weight), TIMEOUT)
        answers = get_many(port(service), fresh(clients))
        assert weight - 1 <= canary_share(answers) <= weight + 1, weight
        # Every new client was given its own sticky id.
        assert len({answer.set_cookie for answer in answers}) == clients


def test_a_client_keeps_its_variant_with_the_cookie_nginx_set(service: Service) -> None:
    NginxRouter(service).apply(target(service, 50), TIMEOUT)
    first = get_many(port(service), fresh(20))
    assert {answer.served_by for answer in first} == {CANARY, STABLE}

    for answer in first:
        again = get_many(port(service), with_cookie([answer.set_cookie] * 50), threads=2)
        assert {a.served_by for a in again} == {answer.served_by}
        assert {a.set_cookie for a in again} == {""}  # nginx sets it only for new clients


def test_nginx_keeps_its_connections_to_the_upstreams_open(service: Service) -> None:
    NginxRouter(service).apply(target(service, 50), TIMEOUT)
    answers = get_many(port(service), fresh(600))
    assert {answer.served_by for answer in answers} == {CANARY, STABLE}

    upstream_ports = {
        int(url.rpartition(":")[2]) for url in (service.stable_url, service.canary_url)
    }
    sockets = [
        c
        for c in psutil.net_connections("tcp4")
        if c.status != psutil.CONN_LISTEN
        and upstream_ports & {c.laddr[1], c.raddr[1] if c.raddr else 0}
    ]
    # A few kept-alive connections (both ends), not one per request left in TIME_WAIT.
    assert len(sockets) < 100, len(sockets)


def test_raising_the_weight_only_adds_clients_to_the_canary(service: Service) -> None:
    router, clients = NginxRouter(service), ids(5_000)
    router.apply(target(service, 1), TIMEOUT)
    at_1 = in_canary(service, clients)
    router.apply(target(service, 5), TIMEOUT)
    at_5 = in_canary(service, clients)
    router.apply(target(service, 20), TIMEOUT)
    at_20 = in_canary(service, clients)

    assert at_1 and at_1 <= at_5 <= at_20
    assert len(at_1) < len(at_5) < len(at_20)


def test_the_header_naming_the_canary_reaches_it(service: Service) -> None:
    NginxRouter(service).apply(target(service, 1), TIMEOUT)
    clients = ids(300)
    on_stable = [sticky for sticky, v in variants(service, clients).items() if v == STABLE]
    assert len(on_stable) > 250

    for value in ("v2", "v2.1", "v2.1.0"):
        assert set(variants(service, on_stable, **{"X-Canary-Version": value}).values()) == {
            CANARY
        }, value
    for value in ("v21", "v2.0", "v2.1.0.1", "V2.1.0", ""):
        assert set(variants(service, on_stable, **{"X-Canary-Version": value}).values()) == {
            STABLE
        }, value


def test_after_the_kill_switch_no_new_request_reaches_the_canary(service: Service) -> None:
    router = NginxRouter(service)
    router.apply(target(service, 50), TIMEOUT)
    holders = [a.set_cookie for a in get_many(port(service), fresh(400)) if a.served_by == CANARY]
    assert len(holders) > 100
    mixed = [
        *with_cookie(holders),
        *with_cookie(holders[:100], **{"X-Canary-Version": CANARY}),
        *[{"X-Canary-Version": "v2"}] * 100,
        *fresh(100),
    ]

    with steady(port(service), mixed) as during:
        deadline = time.monotonic() + TIMEOUT
        while len(during) < 200:  # traffic flows under the canary config
            assert time.monotonic() < deadline
            time.sleep(0.01)
        switched_at = time.monotonic()
        router.apply(target(service, 0), TIMEOUT)
        answered_at = time.monotonic()
        after = get_many(port(service), (mixed * 3)[:1_000])
    # Measured from the moment apply returned: the reload's old workers answer no more.
    assert canary_share(after) == 0
    late = [answer for answer in during if answer.sent_at >= answered_at]
    assert late and canary_share(late) == 0
    early = [answer for answer in during if answer.sent_at < switched_at]
    assert canary_share(early) > 50  # the load did reach the canary before the switch
    text = Path(service.nginx_dir, "backend.conf").read_text()
    assert "_canary" not in text.replace("# Managed by the canary", "")
    assert "split_clients" not in text and "x_canary_version" not in text


def test_a_promotion_sends_everyone_to_the_former_canary(service: Service) -> None:
    router = NginxRouter(service)
    router.apply(target(service, 5), TIMEOUT)
    router.apply(Target(0, service.canary_url, stable_version=CANARY), TIMEOUT)

    requests = [*fresh(500), *with_cookie(ids(400)), *[{"X-Canary-Version": "v2.0.0"}] * 100]
    answers = get_many(port(service), requests)
    assert {answer.served_by for answer in answers} == {CANARY}


def test_a_refused_reload_leaves_the_previous_file_and_split(
    nginx: Nginx, service: Service
) -> None:
    router, path = NginxRouter(service), Path(service.nginx_dir, "backend.conf")
    router.apply(target(service, 5), TIMEOUT)
    clients = ids(1_000)
    served, previous = variants(service, clients), path.read_bytes()

    service.reload_command = "false"
    with pytest.raises(RouterError, match="'false' failed: exit 1"):
        router.apply(target(service, 20), TIMEOUT)
    assert path.read_bytes() == previous
    assert variants(service, clients) == served

    # nginx itself refusing the configuration: a stray copy of the file in the directory
    # defines the service's upstreams a second time.
    service.reload_command = nginx.reload_command
    stray = path.with_name("backend-copy.conf")
    stray.write_bytes(previous)
    with pytest.raises(RouterError, match='duplicate upstream "canary_backend_stable"'):
        router.apply(target(service, 20), TIMEOUT)
    assert path.read_bytes() == previous
    assert variants(service, clients) == served

    stray.unlink()
    assert "old workers gone" in router.apply(target(service, 20), TIMEOUT)
    now = variants(service, clients)
    assert {c for c, v in served.items() if v == CANARY} < {
        c for c, v in now.items() if v == CANARY
    }


def test_a_reload_that_hangs_is_killed_at_the_deadline(service: Service) -> None:
    router, path = NginxRouter(service), Path(service.nginx_dir, "backend.conf")
    router.apply(target(service, 5), TIMEOUT)
    previous = path.read_bytes()

    service.reload_command = "sleep 30"
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=r"'sleep 30' did not finish within 0\.5s"):
        router.apply(target(service, 20), 0.5)
    assert time.monotonic() - started < 2
    assert path.read_bytes() == previous


def test_a_reload_nginx_never_made_is_not_confirmed(service: Service) -> None:
    router, path = NginxRouter(service), Path(service.nginx_dir, "backend.conf")
    router.apply(target(service, 5), TIMEOUT)
    previous = path.read_bytes()

    service.reload_command = "true"  # says it reloaded; nginx kept its workers
    with pytest.raises(TimeoutError, match=r"started no new worker .* backend\.conf restored"):
        router.apply(target(service, 0), 0.5)
    assert path.read_bytes() == previous


def test_the_first_apply_without_a_file_removes_it_when_the_reload_fails(
    service: Service,
) -> None:
    service.reload_command = "false"
    with pytest.raises(RouterError):
        NginxRouter(service).apply(target(service, 5), TIMEOUT)
    assert list(Path(service.nginx_dir).glob("*.conf")) == []
