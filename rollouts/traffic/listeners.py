"""Which processes hold a listening TCP socket, and waiting for a reload to move it.

An nginx master opens its listening sockets and its workers inherit them (same file
descriptor, same socket), so the master is the holder whose parent is not a holder. On a
reload the master keeps the socket, starts new workers and tells the old ones to stop; an
old worker closes its listening sockets as it begins to shut down, and until then it may
still accept a new connection under the old configuration. `settle` waits for exactly
that: no old worker left on the socket, and a new one on it.

On Linux the sockets are found from /proc/net and the descriptors of nginx's own
processes only (psutil's whole socket table takes seconds on a busy host: it reads every
process's descriptors); elsewhere with psutil. While polling, a process is asked only
whether its descriptor still names the same socket (`/proc/<pid>/fd/<fd>`), with psutil
per process where there is no /proc.
"""

from __future__ import annotations

import ipaddress
import os
import time
from dataclasses import dataclass
from typing import Any

import psutil

POLL_S = 0.005
WILDCARDS = frozenset({"0.0.0.0", "::"})  # noqa: S104 - read, not bound
_PROC = os.path.isdir("/proc/self/fd")


class Hidden(Exception):
    """Something listens on the address but its processes cannot be seen from here."""


class NotSettled(TimeoutError):
    """The deadline passed with old workers still on the socket, or no new one on it."""

    def __init__(self, message: str, *, left: int, new: int) -> None:
        super().__init__(message)
        self.left = left
        self.new = new


@dataclass(frozen=True)
class Address:
    host: str
    port: int

    @classmethod
    def parse(cls, listen: str) -> Address:
        """`HOST:PORT` (`[::1]:8081` for IPv6); ValueError otherwise."""
        host, sep, port = listen.strip().rpartition(":")
        host = host.removeprefix("[").removesuffix("]")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"listen {listen!r} is not HOST:PORT")
        return cls(host, int(port))

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def kind(self) -> str:
        """psutil's connection kind to read: IPv4 or IPv6 only when the host says which."""
        try:
            return "tcp4" if ipaddress.ip_address(self.host).version == 4 else "tcp6"
        except ValueError:
            return "tcp"

    def matches(self, connection: Any) -> bool:
        """Whether a psutil connection is a listening socket on this address."""
        if connection.status != psutil.CONN_LISTEN or not connection.laddr:
            return False
        ip, port = connection.laddr[0], connection.laddr[1]
        # A host name may listen on any of its addresses; nginx binds a wildcard socket
        # once for all the specific addresses of a port when one server asks for it.
        return port == self.port and (ip == self.host or ip in WILDCARDS or self.kind == "tcp")


# A listening socket as a process holds it: its descriptor and what /proc says it is
# ("socket:[inode]"), or "" without /proc.
Socket = tuple[int, str]


@dataclass(frozen=True)
class Holders:
    """The processes holding the address's listening socket: masters and workers."""

    masters: frozenset[int]
    workers: frozenset[int]
    sockets: frozenset[Socket]

    @property
    def pids(self) -> frozenset[int]:
        return self.masters | self.workers


def _link(pid: int, fd: int) -> str:
    """What descriptor `fd` of `pid` is ("" when closed or the process exited)."""
    try:
        return os.readlink(f"/proc/{pid}/fd/{fd}")
    except (FileNotFoundError, ProcessLookupError):
        return ""
    except PermissionError as exc:
        raise Hidden(f"process {pid} cannot be inspected") from exc


def holds(pid: int, address: Address, sockets: frozenset[Socket]) -> bool:
    """Whether process `pid` holds one of `sockets` (False once it has exited)."""
    if _PROC and all(name for _fd, name in sockets):
        return any(_link(pid, fd) == name for fd, name in sockets)
    try:
        connections = psutil.Process(pid).net_connections(address.kind)
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied as exc:
        raise Hidden(f"process {pid} cannot be inspected") from exc
    return any(address.matches(connection) for connection in connections)


def holders(address: Address, attempts: int = 5) -> Holders:
    """Who holds the listening socket now (all empty when nothing listens); Hidden when
    something listens whose processes cannot be seen (another user, a container)."""
    if _PROC:
        return _proc_holders(address)
    for _ in range(attempts):
        try:
            listening = [c for c in psutil.net_connections(address.kind) if address.matches(c)]
        except psutil.AccessDenied as exc:
            raise Hidden("the system's sockets cannot be read") from exc
        # A socket opened while psutil was reading has no process yet: read again.
        if all(connection.pid is not None for connection in listening):
            break
        time.sleep(POLL_S)
    else:
        raise Hidden("its listening processes are not visible from here")
    sockets = frozenset((c.fd, _link(c.pid, c.fd) if _PROC else "") for c in listening if c.fd >= 0)
    # psutil names one process per socket; its master and the master's other children
    # hold the same socket.
    masters = {_master(connection.pid, address, sockets) for connection in listening}
    masters.discard(0)
    workers = _workers(masters, address, sockets)
    return Holders(frozenset(masters), frozenset(workers), sockets)


def _listening_inodes(port: int) -> set[str]:
    """The inodes of the sockets listening on `port` (any address), from /proc/net."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as rows:
                next(rows, None)
                for row in rows:
                    fields = row.split()
                    if fields[3] == "0A" and int(fields[1].rpartition(":")[2], 16) == port:
                        inodes.add(fields[9])
        except OSError:
            continue
    return inodes


def _proc_holders(address: Address) -> Holders:
    """Linux, cheaply: the socket's inodes from /proc/net, then only nginx processes'
    descriptors (reading every process's would take seconds on a busy host)."""
    inodes = _listening_inodes(address.port)
    if not inodes:
        return Holders(frozenset(), frozenset(), frozenset())
    found: dict[int, set[Socket]] = {}
    for process in psutil.process_iter(["name"]):
        if process.info["name"] != "nginx":
            continue
        try:
            descriptors = os.listdir(f"/proc/{process.pid}/fd")
        except (FileNotFoundError, ProcessLookupError):
            continue
        except PermissionError as exc:
            raise Hidden(f"process {process.pid} cannot be inspected") from exc
        for fd in descriptors:
            link = _link(process.pid, int(fd))
            if link.startswith("socket:[") and link[8:-1] in inodes:
                found.setdefault(process.pid, set()).add((int(fd), link))
    if not found:
        raise Hidden("its listening processes are not visible from here")
    parents = {pid: _parent(pid) for pid in found}
    masters = frozenset(pid for pid in found if parents[pid] not in found)
    sockets = frozenset(socket for pid in masters for socket in found[pid])
    return Holders(masters, frozenset(found) - masters, sockets)


def _parent(pid: int) -> int:
    try:
        return psutil.Process(pid).ppid()
    except psutil.NoSuchProcess:
        return 0


def _master(pid: int, address: Address, sockets: frozenset[Socket]) -> int:
    """The topmost holder above `pid` (0 when `pid` has exited meanwhile)."""
    try:
        process = psutil.Process(pid)
        while (parent := process.parent()) is not None and holds(parent.pid, address, sockets):
            process = parent
    except psutil.NoSuchProcess:
        return 0
    return process.pid


def _workers(masters: set[int], address: Address, sockets: frozenset[Socket]) -> set[int]:
    workers: set[int] = set()
    for master in masters:
        try:
            children = psutil.Process(master).children()
        except psutil.NoSuchProcess:
            continue
        workers.update(c.pid for c in children if holds(c.pid, address, sockets))
    return workers


def _now(before: Holders, address: Address) -> Holders:
    """The holders after a reload: the masters' children on the same sockets, or all of
    them read again when a master has gone or reopened its socket."""
    masters = {pid for pid in before.masters if holds(pid, address, before.sockets)}
    if masters != before.masters:
        return holders(address)
    workers = _workers(masters, address, before.sockets)
    return Holders(before.masters, frozenset(workers), before.sockets)


@dataclass(frozen=True)
class Settled:
    old_gone: int
    new_workers: int


def settle(before: Holders, address: Address, deadline: float) -> Settled:
    """Wait until no worker of `before` still holds the socket and at least one new
    worker does; NotSettled at `deadline` (with no new worker, nginx has not taken a new
    configuration, or has refused it)."""
    old = before.workers
    while True:
        left = {pid for pid in old if holds(pid, address, before.sockets)}
        new = _now(before, address).workers - before.pids
        if not left and new:
            return Settled(len(old), len(new))
        if time.monotonic() >= deadline:
            raise NotSettled(
                f"{len(left)} of {len(old)} old workers still listen on {address}, {len(new)} new",
                left=len(left),
                new=len(new),
            )
        time.sleep(POLL_S)


def appeared(address: Address, deadline: float) -> Holders:
    """For an address nothing listened on before: its holders once some appear, or empty
    ones at `deadline` (nginx on another host)."""
    while True:
        now = holders(address)
        if now.workers or time.monotonic() >= deadline:
            return now
        time.sleep(POLL_S)
