"""The interface of a real router (nginx, HAProxy) in front of a service.

A router is built from its service's settings and does one thing: make the router
serve a `Target`, and confirm it. `apply` returns only once the router itself has
taken the target (nginx: the reload succeeded and no old worker still accepts;
HAProxy: the runtime API answered and reads the new state back); otherwise it raises
`RouterError` (refused, unreachable) or `TimeoutError` (the deadline passed), having
left the router as it was. `rollouts.traffic.truth` records what was confirmed.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from governance.models import Service


class RouterError(Exception):
    """The router refused the change or could not be reached; the message says which."""


@dataclass(frozen=True)
class Target:
    """What a service's router should serve.

    `weight` is the canary's share of new clients in percent (0-100). With weight 0 or no
    `canary_version` the router has no canary path at all: everyone, cookie or header,
    reaches `stable_url`. `salt` is the rollout's, so that sticky buckets are the
    rollout's own. A promotion is a target with no canary whose `stable_url` is the
    former canary's (the portal swaps the service's two URLs: the server that runs the
    promoted version is stable from then on).
    """

    weight: int
    stable_url: str
    canary_url: str = ""
    canary_version: str = ""
    stable_version: str = ""
    salt: str = ""

    @property
    def has_canary(self) -> bool:
        return self.weight > 0 and bool(self.canary_version) and bool(self.canary_url)

    def header_values(self) -> list[str]:
        """The `X-Canary-Version` values that name the canary: its version and every
        prefix of it ending at a dot (`v2`, `v2.1`, `v2.1.0` for `v2.1.0`)."""
        if not self.has_canary:
            return []
        parts = self.canary_version.split(".")
        return [".".join(parts[: i + 1]) for i in range(len(parts))]


class Router(ABC):
    def __init__(self, service: Service) -> None:
        self.service = service

    @abstractmethod
    def config(self, target: Target) -> str:
        """The configuration the portal manages for this service, serving `target`
        (nginx: the include file; HAProxy: a complete haproxy.cfg)."""

    @abstractmethod
    def apply(self, target: Target, timeout: float) -> str:
        """Make the router serve `target` within `timeout` seconds and confirm it; a short
        description of what was done. Raises RouterError or TimeoutError, leaving the
        router serving what it served before."""
