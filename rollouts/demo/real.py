"""The demo behind a real nginx: `checkout` and `search` each get a stable and a canary
upstream process and an nginx port, their routers are set to nginx before any rollout
starts, and every period real requests go through nginx while what each upstream reports
it served is pushed as samples, as a service's own instrumentation would.

A rollout's canary process runs the rollout's version: started just before the demo
deploys it, or (re)started on the canary's port when a rollout with another version is
active (deployed from the portal, or left by a previous run). The canary of a `failing`
service answers `error_rate` of its requests with a 500.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from io import StringIO
from pathlib import Path
from typing import Any

from django.core.management import CommandError, call_command

from governance.models import Service
from portal import clock
from rollouts.demo import meter
from rollouts.demo.deploy import SERVICES, STABLE_VERSION, deploy_demo_rollouts
from rollouts.demo.load import Load, Seen
from rollouts.demo.processes import Children, DemoError, port_free
from rollouts.lifecycle import active_rollout
from rollouts.metrics.ingest import ingest
from rollouts.models import Rollout, TrafficSplit


def url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


@dataclass(frozen=True)
class Ports:
    """A demo service's nginx port and its two upstreams' ports (stable, canary at start)."""

    listen: int
    stable: int
    canary: int


def demo_ports(nginx_ports: list[int], upstream_ports: list[int]) -> dict[str, Ports]:
    """DEMO_NGINX_PORTS (checkout, search) and DEMO_UPSTREAM_PORTS (checkout stable and
    canary, search stable and canary) by service."""
    return {
        service: Ports(nginx_ports[i], upstream_ports[2 * i], upstream_ports[2 * i + 1])
        for i, service in enumerate(SERVICES)
    }


class RealDemo:
    def __init__(
        self,
        *,
        directory: Path,
        nginx: str,
        ports: dict[str, Ports],
        failing: set[str],
        error_rate: float,
        say: Callable[[str], None],
        load: Load | None = None,
    ) -> None:
        self.children = Children(directory, nginx)
        self.ports, self.failing, self.error_rate, self.say = ports, failing, error_rate, say
        self.load = load or Load({service: p.listen for service, p in ports.items()})
        self.readings: dict[int, meter.Reading] = {}
        self.since: datetime | None = None

    # Start and stop

    def start(self, now: datetime) -> None:
        """Upstreams, nginx, and the services' routers set to it (all on stable at first,
        or what an active rollout holds); DemoError when that cannot be."""
        self.children.prepare()
        for service, ports in self.ports.items():
            for port in (ports.listen, ports.stable, ports.canary):
                if not port_free(port):
                    raise DemoError(f"port {port} ({service}) is in use")
        try:
            for service, ports in self.ports.items():
                active = active_rollout(service)
                version = active.stable_version if active else STABLE_VERSION
                self._upstream(service, ports.stable, version or STABLE_VERSION)
                if active is not None:
                    self.start_canary(service, active.version)
            self.children.start_nginx()
            for service in self.ports:
                self._route(service)
        except BaseException:
            self.stop()
            raise
        self.since = now

    def stop(self) -> None:
        self.load.close()
        self.children.stop()

    def _route(self, service: str) -> None:
        ports, out, err = self.ports[service], StringIO(), StringIO()
        options = {
            "--router": "nginx",
            "--listen": f"127.0.0.1:{ports.listen}",
            "--nginx-dir": str(self.children.include_dir),
            "--reload-command": self.children.reload_command,
            "--stable": url(ports.stable),
            "--canary": url(ports.canary),
        }
        try:
            call_command(
                "service_set",
                service,
                *(word for pair in options.items() for word in pair),
                stdout=out,
                stderr=err,
            )
        except CommandError as exc:
            raise DemoError(str(exc)) from exc
        split = TrafficSplit.objects.filter(service=service).first()
        if split is None or not split.ok:
            raise DemoError(err.getvalue().strip() or f"{service}: nginx did not confirm")

    # The canaries

    def deploy(self) -> list[Rollout]:
        """The demo's releases, each canary's process started just before its rollout."""
        return deploy_demo_rollouts(say=self.say, before_start=self.start_canary)

    def start_canary(self, service: str, version: str) -> None:
        """The canary's process on the service's canary port runs `version`."""
        port = self._port(Service.objects.get(name=service).canary_url)
        if port is None:
            return  # not one of the demo's upstreams (the service was set up otherwise)
        child = self.children.children.get(f"{service}-{port}")
        if child is not None and child.version == version and child.process.poll() is None:
            return
        error_rate = self.error_rate if service in self.failing else 0.0
        self._upstream(service, port, version, error_rate)

    def ensure_canaries(self) -> None:
        """Each active rollout's canary process runs its version (a rollout deployed from
        the portal gets its canary here)."""
        for service in self.ports:
            active = active_rollout(service)
            if active is not None:
                self.start_canary(service, active.version)

    def _upstream(self, service: str, port: int, version: str, error_rate: float = 0.0) -> None:
        self.children.start_upstream(f"{service}-{port}", port, service, version, error_rate)
        self.readings.pop(port, None)  # a new process counts from zero

    def _port(self, address: str) -> int | None:
        ours = {p for ports in self.ports.values() for p in (ports.stable, ports.canary)}
        return next((p for p in ours if url(p) == address.rstrip("/")), None)

    # Every period

    def step(self, per_service: int, spread_s: float = 0.0) -> dict[str, Seen]:
        """Send `per_service` requests to each service (spread over `spread_s`), then push
        what the upstreams served since the last step."""
        seen = self.load.send(per_service, spread_s)
        self.measure(clock.now())
        return seen

    def measure(self, now: datetime) -> list[dict[str, Any]]:
        """Push what each upstream served since the last call, as samples of the period
        (stable or canary as the service's router has it now); returns them."""
        if self.since is None or now <= self.since:
            return []
        catalogue = {s.name: s for s in Service.objects.filter(name__in=list(self.ports))}
        samples = []
        for child in list(self.children.children.values()):
            if not child.port:
                continue
            try:
                reading = meter.read(child.port)
            except OSError:
                continue  # stopped or restarting: its requests count at the next read
            before = self.readings.get(child.port, meter.Reading())
            self.readings[child.port] = reading
            variant = _variant(catalogue.get(reading.service), url(child.port))
            served = meter.served_between(before, reading)
            one = meter.sample(served, variant, self.since, now) if variant else None
            if one is not None:
                samples.append(one)
        if samples:
            ingest({"samples": samples})
        self.since = now
        return samples


def _variant(service: Service | None, address: str) -> str | None:
    """What the upstream at `address` is for the service's router now."""
    if service is None:
        return None
    if service.stable_url.rstrip("/") == address:
        return "stable"
    if service.canary_url.rstrip("/") == address:
        return "canary"
    return None
