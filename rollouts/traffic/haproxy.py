"""The HAProxy router: a complete haproxy.cfg for a service, and its runtime API.

`config(target)` renders, for service `<name>`:

- `global`: the runtime API, `stats socket <path> mode 660 level admin` (or
  `stats socket ipv4@HOST:PORT level admin`) from the service's `haproxy_socket`;
- `defaults`: mode http and timeouts;
- `frontend fe_<name>` binding the service's `listen`;
- `backend be_<name>`: weighted round-robin between servers `stable` and `canary`
  (addresses from the target's URLs, weights 100-w and w), the sticky cookie
  `codex-canary-id` (`insert indirect nocache maxlife 24h`, Max-Age 24 h, server
  cookies `stable`/`canary`), and header routing: `use-server canary` when
  `X-Canary-Version` is a key of the map file `<ROUTER_FILES_DIR>/<name>.haproxy.map`
  (the target's `header_values()`, each mapped to `canary`). Without a canary, the
  canary server starts `disabled` (maintenance). `server-state-file-name
  <ROUTER_FILES_DIR>/<name>.haproxy.state` with `load-server-state-from-file local`
  brings the last confirmed addresses, states and weights back when HAProxy restarts
  (a weight only while the configured weight is still the one it was saved with).
  HAProxy refuses to start without the map file, so `config` writes it (from the
  target) when it does not exist yet.

`apply(target, timeout)` changes the running HAProxy through the runtime API only,
never by a reload. It reads the servers (`show servers state be_<name>`) and the map
(`show map <file>`), then sends:

- with a canary: `set server be/srv addr IP port PORT` where a URL moved, `set weight
  be/stable 100-w` and `set weight be/canary w` (the shrinking side first), `set server
  be/canary state ready`, and `add map`/`del map` until the map holds exactly the
  target's header values;
- without one (weight 0, kill switch, rollback, promotion): `set server be/canary state
  maint` (weight 0 alone still serves cookie holders), `shutdown sessions server
  be/canary` (requests in flight on the canary are cut), `del map` of every key, the
  weights 100/0, and `set server be/stable addr` when the stable URL moved (a promotion
  points `stable` at the former canary).

It then reads both back and raises RouterError unless they equal the target; only then
does it write the state file (the `show servers state` answer) and the map file, each
atomically. Servers have no health checks: the rollout's metrics judge the canary.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from django.conf import settings

from rollouts.traffic.haproxy_runtime import (
    FORCED_MAINT,
    RuntimeAPI,
    ServerState,
    endpoint,
    parse_map,
    parse_servers_state,
)
from rollouts.traffic.router import Router, RouterError, Target

if TYPE_CHECKING:
    from governance.models import Service

COOKIE = "codex-canary-id"
HEADER = "X-Canary-Version"
STABLE, CANARY = "stable", "canary"
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")

DEFAULTS = """\
defaults
    mode http
    log global
    option dontlognull
    option forwardfor
    option redispatch
    retries 2
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    timeout http-request 10s
    timeout http-keep-alive 10s
    timeout queue 30s
"""

TEMPLATE = """\
# Managed by the canary release governance portal for service {name}.
global
    {stats_socket}
    stats timeout 30s
    log stderr format short local0 notice

{defaults}
frontend fe_{name}
    bind {listen}
    default_backend be_{name}

backend be_{name}
    balance roundrobin
    cookie {cookie} insert indirect nocache maxlife 24h attr "Max-Age=86400"
    server-state-file-name {state_file}
    load-server-state-from-file local
    use-server canary if {{ req.hdr({header}),map({map_file}) -m str canary }}
    server stable {stable} weight {stable_weight} cookie stable
    server canary {canary} weight {canary_weight} cookie canary{disabled}
"""


def _address(host: str, port: int) -> str:
    """HAProxy's spelling of an address (`ipv6@` for IPv6, which has colons)."""
    return f"ipv6@{host}:{port}" if ":" in host else f"{host}:{port}"


def _upstream(url: str) -> tuple[str, int]:
    """Host and port of an upstream URL (http only, no path)."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise RouterError(f"upstream {url!r} is not an http://HOST:PORT URL")
    if parts.path not in ("", "/") or parts.query:
        raise RouterError(f"upstream {url!r} has a path; HAProxy forwards paths unchanged")
    try:
        return parts.hostname, parts.port or 80
    except ValueError as exc:
        raise RouterError(f"upstream {url!r}: {exc}") from exc


def _resolve(host: str, port: int) -> str:
    """The IP address `set server addr` needs for a host name."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        return str(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][4][0])
    except OSError as exc:
        raise RouterError(f"cannot resolve upstream host {host!r}: {exc}") from exc


def _write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text` in one rename, readable by the HAProxy user."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _map_text(values: list[str]) -> str:
    return "".join(f"{value} {CANARY}\n" for value in values)


class HAProxyRouter(Router):
    """A service behind HAProxy: the config it runs, changed live by the runtime API."""

    def __init__(self, service: Service, files_dir: str | Path | None = None) -> None:
        super().__init__(service)
        if not _NAME.match(service.name):
            raise RouterError(f"service name {service.name!r} is not a valid HAProxy name")
        self.files_dir = Path(files_dir or settings.ROUTER_FILES_DIR).resolve()
        self.backend = f"be_{service.name}"
        self.map_file = self.files_dir / f"{service.name}.haproxy.map"
        self.state_file = self.files_dir / f"{service.name}.haproxy.state"

    # -- the configuration ---------------------------------------------------------

    def config(self, target: Target) -> str:
        stable = _upstream(target.stable_url)
        canary = _upstream(target.canary_url) if target.canary_url else stable
        weight = target.weight if target.has_canary else 0
        if not self.map_file.exists():
            _write_atomically(self.map_file, _map_text(target.header_values()))
        return TEMPLATE.format(
            defaults=DEFAULTS,
            name=self.service.name,
            stats_socket=self._stats_socket(),
            listen=self._listen(),
            cookie=COOKIE,
            header=HEADER,
            state_file=self.state_file,
            map_file=self.map_file,
            stable=_address(*stable),
            canary=_address(*canary),
            stable_weight=100 - weight,
            canary_weight=weight,
            disabled="" if target.has_canary else " disabled",
        )

    def _stats_socket(self) -> str:
        if not self.service.haproxy_socket:
            raise RouterError(f"service {self.service.name} has no HAProxy socket")
        family, where = endpoint(self.service.haproxy_socket)
        if isinstance(where, str):
            return f"stats socket {where} mode 660 level admin"
        prefix = "ipv6" if family == socket.AF_INET6 else "ipv4"
        return f"stats socket {prefix}@{where[0]}:{where[1]} level admin"

    def _listen(self) -> str:
        host, sep, port = self.service.listen.rpartition(":")
        if not sep or not port.isdigit():
            raise RouterError(f"listen {self.service.listen!r} is not HOST:PORT")
        return _address(host.strip("[]"), int(port))

    # -- the running HAProxy -------------------------------------------------------

    def apply(self, target: Target, timeout: float) -> str:
        started = time.monotonic()
        api = RuntimeAPI(self.service.haproxy_socket, started + timeout)
        running, entries = self._servers(api), self._map(api)
        want = self._wanted(target, running[CANARY])
        keys = target.header_values()
        for command in self._commands(target, running, want, entries, keys):
            if " addr " in command:
                self._set_addr(api, command)
            else:
                api.expect_empty(command)
        state = api.run(f"show servers state {self.backend}")
        self._confirm(parse_servers_state(state, self.backend), want, self._map(api), keys)
        _write_atomically(self.state_file, state)
        _write_atomically(self.map_file, _map_text(keys))
        stable, canary = want[STABLE], want[CANARY]
        return (
            f"HAProxy {self.backend}: stable {stable.addr}:{stable.port} weight {stable.weight}, "
            + (
                f"canary {canary.addr}:{canary.port} weight {canary.weight}"
                if target.has_canary
                else "canary in maintenance with its sessions shut"
            )
            + f", header values {keys or 'none'} ({(time.monotonic() - started) * 1000:.0f} ms)"
        )

    def _servers(self, api: RuntimeAPI) -> dict[str, ServerState]:
        servers = parse_servers_state(api.run(f"show servers state {self.backend}"), self.backend)
        missing = {STABLE, CANARY} - servers.keys()
        if missing:
            raise RouterError(f"{self.backend} has no server {', '.join(sorted(missing))}")
        return servers

    def _map(self, api: RuntimeAPI) -> dict[str, str]:
        return parse_map(api.run(f"show map {self.map_file}"), str(self.map_file))

    @staticmethod
    def _wanted(target: Target, canary_now: ServerState) -> dict[str, ServerState]:
        """The servers as the target wants them; a canary with no canary path keeps its
        address, at weight 0 in maintenance."""
        if not 0 <= target.weight <= 100:
            raise RouterError(f"weight {target.weight} is not a percentage")
        host, port = _upstream(target.stable_url)
        if not target.has_canary:
            return {
                STABLE: ServerState(_resolve(host, port), port, 100, admin=0),
                CANARY: ServerState(canary_now.addr, canary_now.port, 0, admin=FORCED_MAINT),
            }
        canary_host, canary_port = _upstream(target.canary_url)
        return {
            STABLE: ServerState(_resolve(host, port), port, 100 - target.weight, admin=0),
            CANARY: ServerState(
                _resolve(canary_host, canary_port), canary_port, target.weight, admin=0
            ),
        }

    def _commands(
        self,
        target: Target,
        running: dict[str, ServerState],
        want: dict[str, ServerState],
        entries: dict[str, str],
        keys: list[str],
    ) -> list[str]:
        """The runtime commands from the running state to the target, in an order whose
        every prefix sends the canary no more than before or after."""
        be = self.backend
        moves = [
            f"set server {be}/{name} addr {want[name].addr} port {want[name].port}"
            for name in (STABLE, CANARY)
            if (running[name].addr, running[name].port) != (want[name].addr, want[name].port)
        ]
        drop = [f"del map {self.map_file} {key}" for key in entries if key not in keys]
        add = [f"add map {self.map_file} {key} {CANARY}" for key in keys if key not in entries]
        add += [
            f"set map {self.map_file} {key} {CANARY}"
            for key in keys
            if key in entries and entries[key] != CANARY
        ]
        if not target.has_canary:
            return [
                f"set server {be}/{CANARY} state maint",
                f"shutdown sessions server {be}/{CANARY}",
                *drop,
                f"set weight {be}/{CANARY} 0",
                f"set weight {be}/{STABLE} 100",
                *moves,
                f"set server {be}/{STABLE} state ready",
            ]
        shrinking = CANARY if want[CANARY].weight < running[CANARY].weight else STABLE
        growing = STABLE if shrinking == CANARY else CANARY
        return [
            *moves,
            f"set weight {be}/{shrinking} {want[shrinking].weight}",
            f"set weight {be}/{growing} {want[growing].weight}",
            f"set server {be}/{STABLE} state ready",
            f"set server {be}/{CANARY} state ready",
            *drop,
            *add,
        ]

    @staticmethod
    def _set_addr(api: RuntimeAPI, command: str) -> None:
        answer = api.run(command).strip()
        if "changed from" not in answer and not answer.startswith("no need to change"):
            raise RouterError(f"HAProxy refused {command!r}: {answer}")

    def _confirm(
        self,
        running: dict[str, ServerState],
        want: dict[str, ServerState],
        entries: dict[str, str],
        keys: list[str],
    ) -> None:
        """RouterError unless the running servers and map are the target's."""
        problems = []
        for name in (STABLE, CANARY):
            have, should = running.get(name), want[name]
            if have is None:
                problems.append(f"{name} is gone")
                continue
            if (have.addr, have.port, have.weight) != (should.addr, should.port, should.weight):
                problems.append(
                    f"{name} is {have.addr}:{have.port} weight {have.weight}, "
                    f"not {should.addr}:{should.port} weight {should.weight}"
                )
            if should.admin and not have.in_maintenance:
                problems.append(f"{name} is not in maintenance")
            if not should.admin and not have.ready:
                problems.append(f"{name} is not ready (admin state {have.admin})")
        if entries != dict.fromkeys(keys, CANARY):
            problems.append(f"the header map holds {entries}, not {keys}")
        if problems:
            raise RouterError(
                f"HAProxy {self.backend} did not take the target: " + "; ".join(problems)
            )
