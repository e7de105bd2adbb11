"""What a service's router needs before it can serve: checked by `service_set` and by
the admin form, on the service as it will be saved."""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path
from urllib.parse import urlsplit

from governance.choices import RouterKind
from governance.models import Service

# The router's own settings: set here or by a superuser in the admin, never over the API.
ROUTER_OPTIONS = {
    "listen": "--listen",
    "nginx_dir": "--nginx-dir",
    "reload_command": "--reload-command",
    "haproxy_socket": "--haproxy-socket",
}
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
# What each router needs before it can serve (checked on the service as it will be saved).
NEEDS: dict[str, tuple[str, ...]] = {
    RouterKind.NGINX: ("stable_url", "canary_url", "listen", "nginx_dir"),
    RouterKind.HAPROXY: ("stable_url", "canary_url", "listen", "haproxy_socket"),
}


def router_problems(service: Service) -> list[str]:
    """What stops the service's router from serving: missing or malformed settings."""
    problems = (
        []
        if NAME.fullmatch(service.name) or service.router not in NEEDS
        else [f"{service.name!r}: a service behind a router is named with letters, digits, - and _"]
    )
    problems += [
        f"--router {service.router} needs {FLAGS[field]}"
        for field in NEEDS.get(service.router, ())
        if not getattr(service, field)
    ]
    if service.listen and not _is_address(service.listen):
        problems.append(f"--listen {service.listen!r}: give HOST:PORT")
    if service.haproxy_socket and not (
        service.haproxy_socket.startswith("/") or _is_address(service.haproxy_socket)
    ):
        problems.append("--haproxy-socket: give an absolute socket path or HOST:PORT")
    if service.nginx_dir and not Path(service.nginx_dir).is_dir():
        problems.append(f"--nginx-dir {service.nginx_dir}: no such directory")
    if service.reload_command:
        try:
            words = shlex.split(service.reload_command)
        except ValueError as exc:
            words, problems = [], [*problems, f"--reload-command: {exc}"]
        if words and shutil.which(words[0]) is None:
            problems.append(f"--reload-command: {words[0]} is not an executable")
    for field in ("stable_url", "canary_url"):
        url = getattr(service, field)
        if service.router in NEEDS and url and not _is_address(urlsplit(url).netloc):
            problems.append(f"{FLAGS[field]} {url}: the router needs http://HOST:PORT")
    return problems


FLAGS = {"stable_url": "--stable", "canary_url": "--canary", **ROUTER_OPTIONS}


def _is_address(value: str) -> bool:
    host, _, port = value.rpartition(":")
    return bool(host) and port.isdigit() and 0 < int(port) < 65536
