"""The demo of `make run` behind a real nginx: real upstream processes, real requests
through nginx at the router's weight, and samples pushed as the upstreams report them."""

from __future__ import annotations

import io
import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psutil
import pytest
import time_machine
from django.core.management import call_command
from django.db.models import Sum

from governance.models import Service
from rollouts.demo import meter
from rollouts.demo.load import Load, Seen
from rollouts.demo.processes import MARKER, Children, DemoError, listening
from rollouts.demo.real import Ports, RealDemo, demo_ports
from rollouts.models import MetricSample, Rollout
from rollouts.traffic.truth import route
from tests.rollouts.conftest import T0, at
from tests.routers.conftest import require
from tests.servers import free_port

pytestmark = pytest.mark.django_db


def some_ports() -> dict[str, Ports]:
    return demo_ports([free_port(), free_port()], [free_port() for _ in range(4)])


@pytest.fixture
def demo_members(settings: Any) -> None:
    settings.DEBUG = True
    call_command("seed_demo", stdout=io.StringIO())


def gone(pid: int) -> bool:
    """Exited (a zombie whose parent has gone counts: it only waits to be reaped)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def totals(seen: list[dict[str, Seen]], service: str) -> Seen:
    total = Seen()
    for one in seen:
        total.answers.update(one[service].answers)
        total.unanswered += one[service].unanswered
        total.moved += one[service].moved
    return total


def test_requests_go_through_nginx_at_the_weight_and_are_pushed_as_served(
    tmp_path: Path, demo_members: None
) -> None:
    nginx = require("nginx")
    ports = some_ports()
    load = Load({s: p.listen for s, p in ports.items()}, rnd=random.Random(7))
    demo = RealDemo(
        directory=tmp_path / "demo",
        nginx=nginx,
        ports=ports,
        failing={"search"},
        error_rate=0.2,
        say=lambda _line: None,
        load=load,
    )
    seen = []
    with time_machine.travel(T0, tick=False) as traveller:
        demo.start(at(0))
        try:
            rollouts = {r.service: r for r in demo.deploy()}
            # The router at 20%, as the engine has it two phases on.
            for service, rollout in rollouts.items():
                route(service, 20, canary_version=rollout.version, salt=rollout.salt)
            for second in range(1, 4):
                traveller.move_to(at(second))
                seen.append(demo.step(per_service=400))
            reported = {p: meter.read(p) for s in ports.values() for p in (s.stable, s.canary)}
        finally:
            children = [child.process for child in demo.children.children.values()]
            demo.stop()

    assert {r.version for r in rollouts.values()} == {"v1.1.0"}
    for service, rollout in rollouts.items():
        total = totals(seen, service)
        # Every request went through nginx and was answered by one of the two upstreams.
        assert total.unanswered == 0 and total.requests == 1200
        assert total.served("v1.0.0") + total.served(rollout.version) == 1200
        # At the router's weight: 20% ± four standard deviations of 1200 visitors.
        assert 0.14 < total.served(rollout.version) / 1200 < 0.26, total.answers
        assert total.moved == 0  # a returning visitor keeps their variant
        canary_port, stable_port = ports[service].canary, ports[service].stable
        # What was pushed is what each upstream says it served.
        for variant, port in (("canary", canary_port), ("stable", stable_port)):
            rows = MetricSample.objects.filter(service=service, variant=variant)
            sums = rows.aggregate(Sum("requests"), Sum("errors"), Sum("status_5xx"))
            codes = reported[port].codes
            errors = sum(n for code, n in codes.items() if code.startswith("5"))
            assert sums["requests__sum"] == sum(codes.values())
            assert sums["errors__sum"] == sums["status_5xx__sum"] == errors
            assert {row.version for row in rows} == {reported[port].version}
            assert [row.end for row in rows.order_by("end")] == [at(1), at(2), at(3)]
            assert all(sum(row.latency_counts) == row.requests for row in rows)
        assert reported[canary_port].version == rollout.version
        canary_errors = sum(n for (v, status), n in total.answers.items() if status == 500)
        if service == "search":  # its canary fails a fifth of its answers
            assert 0.1 < canary_errors / total.served(rollout.version) < 0.3
        else:
            assert canary_errors == 0
        # The samples count what the visitors saw, by version.
        pushed = MetricSample.objects.filter(service=service).values_list("version", "requests")
        by_version: Counter[str] = Counter()
        for version, requests in pushed:
            by_version[version] += requests
        assert by_version == {
            "v1.0.0": total.served("v1.0.0"),
            rollout.version: total.served(rollout.version),
        }
    # The children are stopped.
    assert len(children) == 5 and all(process.poll() is not None for process in children)
    assert not any(
        listening(port) for p in ports.values() for port in (p.listen, p.stable, p.canary)
    )


def test_the_command_deploys_behind_nginx_and_stops_its_children(
    tmp_path: Path, demo_members: None, settings: Any
) -> None:
    require("nginx")
    ports = some_ports()
    settings.DEMO_DIR = str(tmp_path / "demo")
    settings.DEMO_NGINX_PORTS = [p.listen for p in ports.values()]
    settings.DEMO_UPSTREAM_PORTS = [port for p in ports.values() for port in (p.stable, p.canary)]
    out = io.StringIO()

    call_command(
        "demo_traffic", "--once", "--rollouts", "--failing", "search", "--rate", "50", stdout=out
    )

    assert "Real traffic through nginx" in out.getvalue()
    assert Rollout.objects.filter(service__in=["checkout", "search"], weight=1).count() == 2
    checkout = Service.objects.get(name="checkout")
    assert (checkout.router, checkout.listen) == ("nginx", f"127.0.0.1:{ports['checkout'].listen}")
    assert MetricSample.objects.filter(variant="stable").count() == 2
    assert not any(listening(port) for p in ports.values() for port in (p.listen, p.stable))
    assert list((tmp_path / "demo" / "pids").iterdir()) == []


def test_a_stale_demo_directory_is_cleaned_and_a_foreign_one_refused(tmp_path: Path) -> None:
    directory, port = tmp_path / "demo", free_port()
    (directory / "pids").mkdir(parents=True)
    (directory / MARKER).write_text("")
    # An upstream a previous run left behind (its parent gone), on the recorded pid.
    upstream = [sys.executable, "-m", "rollouts.upstream", "--port", str(port), "--version", "v0"]
    quiet = "stdout=s.DEVNULL, stderr=s.DEVNULL"
    spawn = f"import subprocess as s; print(s.Popen({upstream!r}, {quiet}).pid)"
    pid = int(subprocess.run([sys.executable, "-c", spawn], capture_output=True, timeout=10).stdout)
    deadline = time.monotonic() + 10
    while not listening(port):
        assert time.monotonic() < deadline, "the stale upstream did not start"
        time.sleep(0.05)
    (directory / "pids" / f"checkout-{port}").write_text(f"{pid}\n")
    try:
        children = Children(directory, require("nginx"))
        children.prepare()

        assert gone(pid) and not listening(port)
        assert sorted(p.name for p in directory.iterdir()) == [
            MARKER,
            "canary",
            "nginx.conf",
            "pids",
            "tmp",
        ]
    finally:
        if not gone(pid):
            psutil.Process(pid).kill()

    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(DemoError, match="not a demo directory"):
        Children(foreign, "nginx").prepare()
    assert (foreign / "notes.txt").read_text() == "keep me"


def test_without_nginx_the_simulator_runs_and_says_so_once(demo_members: None) -> None:
    out = io.StringIO()
    with time_machine.travel(T0, tick=False):
        call_command("demo_traffic", "--simulate", "--once", "--rollouts", stdout=out)

    lines = out.getvalue().splitlines()
    assert lines.count("--simulate: simulated traffic") == 1
    assert Rollout.objects.filter(service__in=["checkout", "search"]).count() == 2
    assert MetricSample.objects.filter(service="checkout", variant="stable").exists()
