"""A small client for HAProxy's runtime API (the `stats socket`), and readers for the
answers the HAProxy adapter relies on.

One command per connection: HAProxy answers in text and closes the connection, so the
answer is everything read until EOF. Every connection gets a socket timeout equal to
what is left of the caller's deadline; a deadline that passes raises TimeoutError, an
API that cannot be reached raises RouterError naming the address and the reason.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

from rollouts.traffic.router import RouterError

# srv_admin_state bits (HAProxy's SRV_ADMF_*): forced, inherited and resolver maintenance;
# forced and inherited drain; maintenance for lack of an address. CMAINT (0x04, `disabled`
# in the configuration) stays set after `state ready` and is not maintenance by itself.
FORCED_MAINT = 0x01
MAINT = 0x01 | 0x02 | 0x20 | 0x40
DRAIN = 0x08 | 0x10


@dataclass(frozen=True)
class ServerState:
    """One server of a backend as `show servers state` reports it."""

    addr: str
    port: int
    weight: int
    admin: int

    @property
    def ready(self) -> bool:
        return not self.admin & (MAINT | DRAIN)

    @property
    def in_maintenance(self) -> bool:
        return bool(self.admin & FORCED_MAINT)


def endpoint(address: str) -> tuple[socket.AddressFamily, str | tuple[str, int]]:
    """The socket family and address of a runtime API given as a unix socket path or as
    HOST:PORT (`[v6]:PORT` for IPv6)."""
    host, sep, port = address.rpartition(":")
    if sep and port.isdigit() and "/" not in address:
        if host.startswith("[") and host.endswith("]"):
            return socket.AF_INET6, (host[1:-1], int(port))
        return socket.AF_INET, (host, int(port))
    return socket.AF_UNIX, address


class RuntimeAPI:
    """HAProxy's runtime API at `address`, every call within the same `deadline`
    (a `time.monotonic()` value)."""

    def __init__(self, address: str, deadline: float) -> None:
        if not address:
            raise RouterError("no HAProxy runtime API socket is configured")
        self.address = address
        self.deadline = deadline

    def run(self, command: str) -> str:
        """The answer to one command."""
        family, where = endpoint(self.address)
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"deadline passed before {command!r} to {self.address}")
        try:
            with socket.socket(family, socket.SOCK_STREAM) as sock:
                sock.settimeout(left)
                sock.connect(where)
                sock.sendall(command.encode() + b"\n")
                chunks = []
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
                    sock.settimeout(max(self.deadline - time.monotonic(), 0.001))
        except TimeoutError:
            raise TimeoutError(f"{self.address} did not answer {command!r} in time") from None
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise RouterError(f"HAProxy runtime API {self.address} unreachable: {reason}") from exc
        return b"".join(chunks).decode(errors="replace")

    def expect_empty(self, command: str) -> None:
        """Run a command that answers nothing when it succeeds."""
        answer = self.run(command)
        if answer.strip():
            raise RouterError(f"HAProxy refused {command!r}: {answer.strip()}")


def parse_servers_state(answer: str, backend: str) -> dict[str, ServerState]:
    """The servers of `backend` in a `show servers state <backend>` answer (version 1:
    a version line, a `#` header naming the columns, one line per server)."""
    lines = [line for line in answer.splitlines() if line.strip()]
    if len(lines) < 2 or lines[0].strip() != "1" or not lines[1].startswith("# "):
        raise RouterError(f"HAProxy answered {answer.strip()!r} for the servers of {backend}")
    columns = lines[1][2:].split()
    servers = {}
    for line in lines[2:]:
        row = dict(zip(columns, line.split(), strict=False))
        if row.get("be_name") != backend:
            continue
        try:
            servers[row["srv_name"]] = ServerState(
                addr=row["srv_addr"],
                port=int(row["srv_port"]),
                weight=int(row["srv_uweight"]),
                admin=int(row["srv_admin_state"]),
            )
        except (KeyError, ValueError) as exc:
            raise RouterError(f"unreadable server state line {line!r}") from exc
    return servers


def parse_map(answer: str, name: str) -> dict[str, str]:
    """The entries of a `show map <file>` answer (`0x55d0... key value` per line)."""
    entries = {}
    for line in answer.splitlines():
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 3 or not fields[0].startswith("0x"):
            raise RouterError(f"HAProxy answered {answer.strip()!r} for map {name}")
        entries[fields[1]] = fields[2]
    return entries
