"""The nginx router: the portal writes one http-level include per service and reloads.

`<nginx-dir>/<service>.conf` holds, with names of the service's own (`canary_<service>_*`,
so several services can share one nginx):
- an upstream for stable and, while there is a canary, one for the canary, each keeping
  idle connections open (`keepalive`, HTTP/1.1): a connection per proxied request would
  leave a socket in TIME_WAIT each, tens of thousands on a busy host, and reading the
  socket table to confirm a reload would slow down with them;
- the sticky id: cookie `codex-canary-id` read from `$http_cookie` by a regex `map`
  (nginx variable names stop at `-`), or a fresh `$request_id` that nginx then sets as
  that cookie (24 h) for clients that had none;
- `split_clients` on "<salt>:<sticky id>" with the canary range first, so raising the
  weight only adds ids to the canary; a `map` of `X-Canary-Version` (the canary's version
  or a prefix of it ending at a dot) to the canary, everyone else to the split;
- a `server` on the service's `listen` that proxies to the upstream so chosen.
Without a canary (weight 0, kill switch, rollback, promotion) the file has no canary path
at all: one upstream, one server, everyone to stable.

`apply` (one at a time per service: a lock file `.<service>.conf.lock` beside it)
replaces the file atomically (temporary file in the same directory, fsync, rename) and
runs the reload command (no shell, killed at the deadline); a refused or timed-out reload
puts the previous file back (or removes the new one). A reload is asynchronous: the command
returns while old workers, with the old configuration, may still accept (nginx lets old
and new workers run side by side for about 100 ms). So `apply`
notes which processes hold the listening socket before the reload and returns only once
none of the old workers holds it any more and a new worker does: from then on only the
new configuration answers. When those processes cannot be seen from here (nginx on
another host or under another user), the reload's exit status is all there is, and the
description says so.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from rollouts.deadline import run_command
from rollouts.traffic import listeners
from rollouts.traffic.router import Router, RouterError, Target

DEFAULT_RELOAD_COMMAND = "nginx -s reload"
COOKIE = "codex-canary-id"
COOKIE_MAX_AGE = 86_400
KEEPALIVE = 16  # idle connections each worker keeps open to each upstream
# How long to look for the first listener of an address nothing listened on before.
FIRST_LISTENER_S = 1.0

_SAFE_VERSION = re.compile(r"[A-Za-z0-9._+-]*")
_SAFE_SALT = re.compile(r"[A-Za-z0-9._:-]*")
_SAFE_HOST = re.compile(r"[A-Za-z0-9.:_-]+")


def _checked(value: str, pattern: re.Pattern[str], what: str) -> str:
    if not pattern.fullmatch(value):
        raise RouterError(f"{what} {value!r} has characters nginx would not read literally")
    return value


def _ident(name: str) -> str:
    """The service's name as part of an nginx variable or upstream name."""
    ident = re.sub(r"[^A-Za-z0-9_]", "_", name)
    if ident != name:  # keep `a-b` and `a_b` apart
        ident += "_" + hashlib.sha256(name.encode()).hexdigest()[:6]
    return ident


def _server(url: str, what: str) -> tuple[str, str]:
    """(`http` or `https`, `host:port`) of an upstream URL with no path."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port is None:
        port = 443 if parts.scheme == "https" else 80
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or not 0 < port < 65536
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or parts.username
    ):
        raise RouterError(f"{what} {url!r}: nginx needs http(s)://HOST[:PORT] with no path")
    host = _checked(parts.hostname, _SAFE_HOST, what)
    host = f"[{host}]" if ":" in host else host
    return parts.scheme, f"{host}:{port}"


def _upstream(name: str, server: str) -> str:
    return f"upstream {name} {{\n    server {server};\n    keepalive {KEEPALIVE};\n}}\n"


class NginxRouter(Router):
    """A service behind nginx: an include file per service, and a confirmed reload."""

    @property
    def path(self) -> Path:
        name = self.service.name
        if not name or "/" in name or name.startswith("."):
            raise RouterError(f"service name {name!r} cannot name a file")
        if not self.service.nginx_dir:
            raise RouterError(f"{name}: no nginx directory is set")
        return Path(self.service.nginx_dir) / f"{name}.conf"

    @property
    def reload_command(self) -> str:
        return self.service.reload_command.strip() or DEFAULT_RELOAD_COMMAND

    def _listen(self) -> listeners.Address:
        try:
            return listeners.Address.parse(self.service.listen)
        except ValueError as exc:
            raise RouterError(f"{self.service.name}: {exc}") from exc

    def config(self, target: Target) -> str:
        name = self.service.name
        ident = _ident(name)
        stable = f"canary_{ident}_stable"
        scheme, server = _server(target.stable_url, "stable URL")
        address = self._listen()
        listen = _checked(address.host, _SAFE_HOST, "listen host")
        listen = f"[{listen}]" if ":" in listen else listen
        stable_version = _checked(target.stable_version, _SAFE_VERSION, "stable version")
        lines = ["# Managed by the canary release governance portal: rewritten on every change."]
        if not target.has_canary:
            lines.append(f"# {name}: everyone on stable {stable_version} (no canary).")
            blocks = [_upstream(stable, server)]
            route = f"{scheme}://{stable}"
        else:
            blocks = [_upstream(stable, server), *self._canary_blocks(target, ident, scheme)]
            lines.append(
                f"# {name}: canary {target.canary_version} for {target.weight}% of new clients"
                f" and for X-Canary-Version {', '.join(target.header_values())};"
                f" stable {stable_version}."
            )
            route = f"$canary_{ident}_upstream"
        blocks.append(
            "server {\n"
            f"    listen {listen}:{address.port};\n"
            "    location / {\n"
            f"        proxy_pass {route};\n"
            "        proxy_http_version 1.1;\n"
            '        proxy_set_header Connection "";\n'
            "        proxy_set_header Host $host;\n"
            "        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n"
            "        proxy_set_header X-Forwarded-Proto $scheme;\n"
            + (
                f"        add_header Set-Cookie $canary_{ident}_set_cookie always;\n"
                if target.has_canary
                else ""
            )
            + "    }\n}\n"
        )
        return "\n".join(lines) + "\n\n" + "\n".join(blocks)

    def _canary_blocks(self, target: Target, ident: str, stable_scheme: str) -> list[str]:
        v = f"canary_{ident}"
        canary_scheme, canary_server = _server(target.canary_url, "canary URL")
        _checked(target.canary_version, _SAFE_VERSION, "canary version")
        salt = _checked(target.salt, _SAFE_SALT, "salt")
        to_canary = f"{canary_scheme}://{v}_canary"
        to_stable = f"{stable_scheme}://{v}_stable"
        headers = "|".join(re.escape(value) for value in target.header_values())
        return [
            _upstream(f"{v}_canary", canary_server),
            f"map $http_cookie ${v}_cookie_id {{\n"
            f'    "~(?:^|;)\\s*{COOKIE}=([^;\\s]+)" $1;\n'
            '    default "";\n}\n',
            f"map ${v}_cookie_id ${v}_sticky_id {{\n"
            '    "" $request_id;\n'
            f"    default ${v}_cookie_id;\n}}\n",
            f"map ${v}_cookie_id ${v}_set_cookie {{\n"
            f'    "" "{COOKIE}=$request_id; Max-Age={COOKIE_MAX_AGE}; Path=/; HttpOnly;'
            ' SameSite=Lax";\n'
            '    default "";\n}\n',
            f'split_clients "{salt}:${v}_sticky_id" ${v}_split {{\n'
            f"    {target.weight}% {to_canary};\n"
            f"    * {to_stable};\n}}\n",
            f"map $http_x_canary_version ${v}_upstream {{\n"
            f'    "~^(?:{headers})$" {to_canary};\n'
            f"    default ${v}_split;\n}}\n",
        ]

    def apply(self, target: Target, timeout: float) -> str:
        started = time.monotonic()
        deadline = started + timeout
        text = self.config(target).encode()
        path, address, command = self.path, self._listen(), self.reload_command
        if not path.parent.is_dir():
            raise RouterError(f"{path.parent} is not a directory")
        with self._locked(path, deadline):
            try:
                before: listeners.Holders | None = listeners.holders(address)
            except listeners.Hidden:
                before = None
            try:
                previous = path.read_bytes() if path.exists() else None
                _write(path, text)
            except OSError as exc:
                raise RouterError(f"cannot write {path}: {exc}") from exc
            try:
                remaining = max(deadline - time.monotonic(), 0.001)
                key = f"{self.service.name}:{hashlib.sha256(text).hexdigest()[:16]}"
                run_command(command, remaining, key)
            except subprocess.TimeoutExpired as exc:
                _restore(path, previous)
                raise TimeoutError(
                    f"{command!r} did not finish within {timeout:g}s (killed); {path.name} restored"
                ) from exc
            except (RuntimeError, OSError) as exc:
                _restore(path, previous)
                raise RouterError(f"{command!r} failed: {exc}; {path.name} restored") from exc
            confirmed = self._confirm(path, previous, before, address, deadline, timeout)
        elapsed_ms = (time.monotonic() - started) * 1000
        return f"nginx: {path.name} written, reloaded, {confirmed} ({elapsed_ms:.0f} ms)"

    def _confirm(
        self,
        path: Path,
        previous: bytes | None,
        before: listeners.Holders | None,
        address: listeners.Address,
        deadline: float,
        timeout: float,
    ) -> str:
        """What proves the reload taken; NotSettled (a TimeoutError) otherwise."""
        where = str(address)
        unseen = f"confirmed by the reload's exit status only ({where}: {{}})"
        try:
            if before is None:
                return unseen.format("its listening processes are not visible from here")
            if not before.pids:
                # Nothing listened here, so no old worker can answer: wait a little for
                # the first listener, which a local nginx starts at once.
                grace = min(deadline, time.monotonic() + FIRST_LISTENER_S)
                now = listeners.appeared(address, grace)
                if not now.workers:
                    return unseen.format("nothing listens on it here")
                return f"{len(now.workers)} workers listening"
            reloaded_at = time.monotonic()
            settled = listeners.settle(before, address, deadline)
        except listeners.Hidden as exc:
            return unseen.format(exc)
        except listeners.NotSettled as exc:
            if exc.new:
                raise listeners.NotSettled(
                    f"nginx took {path.name} (new workers listen) but old workers still "
                    f"accept on {where} after {timeout:g}s: {exc}; the file stays",
                    left=exc.left,
                    new=exc.new,
                ) from exc
            _restore(path, previous)
            raise listeners.NotSettled(
                f"nginx started no new worker on {where} within {timeout:g}s (it kept its "
                f"configuration or got no signal: see its error log); {path.name} restored",
                left=exc.left,
                new=exc.new,
            ) from exc
        waited_ms = (time.monotonic() - reloaded_at) * 1000
        return (
            f"{settled.old_gone} old workers gone, {settled.new_workers} new listening "
            f"{waited_ms:.0f} ms after the reload"
        )

    @staticmethod
    @contextlib.contextmanager
    def _locked(path: Path, deadline: float) -> Iterator[None]:
        """One apply at a time per file (a kill switch waits for a weight change)."""
        try:
            lock = open(path.parent / f".{path.name}.lock", "a")  # noqa: SIM115
        except OSError as exc:
            raise RouterError(f"cannot write in {path.parent}: {exc}") from exc
        with lock:
            while True:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise TimeoutError(
                            f"{path.name} is being applied by another call"
                        ) from None
                    time.sleep(listeners.POLL_S)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def _write(path: Path, data: bytes) -> None:
    """Replace `path` with `data` atomically: a reader sees the old file or the new one."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fchmod(file.fileno(), 0o644)
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _restore(path: Path, previous: bytes | None) -> None:
    if previous is None:
        path.unlink(missing_ok=True)
    else:
        _write(path, previous)
