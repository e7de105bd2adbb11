"""The engine's hands: how a weight decided by the engine reaches real traffic.

The interface is two calls, each with a deadline the adapter must keep (a router that
hangs must not hang a rollback): the embedded adapter (`rollouts.traffic.embedded`)
keeps the split in the portal's database, where the routing decision (API, library,
middleware) reads it; nginx and HAProxy adapters implement the same two calls.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import structlog
from django.conf import settings
from django.utils.module_loading import import_string

from comms.alerts import alert_quietly

if TYPE_CHECKING:
    from rollouts.models import Rollout

logger = structlog.get_logger(__name__)

# The guide's route-to-stable budget; every call gets a deadline.
DEFAULT_TIMEOUT_S = 30.0


class TrafficAdapter(Protocol):
    def set_weight(
        self,
        service: str,
        weight: int,
        *,
        canary_version: str = "",
        stable_version: str = "",
        salt: str = "",
        timeout: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        """The canary gets `weight`% of the service's traffic; raises (TimeoutError for a
        missed deadline) when the router did not take it within `timeout` seconds."""
        ...

    def route_all_to_stable(
        self, service: str, *, stable_version: str = "", timeout: float = DEFAULT_TIMEOUT_S
    ) -> None:
        """Everyone on stable; with `stable_version`, that version is stable from now on
        (a promotion)."""
        ...


def traffic_adapter() -> TrafficAdapter:
    return import_string(str(settings.CANARY_TRAFFIC_ADAPTER))()


def push(rollout: Rollout, what: str, call: Callable[[], None]) -> None:
    """A router call after the commit; a failure is logged and alerted, never raised
    into a transition that has already happened."""
    try:
        call()
    except Exception as exc:
        logger.error("traffic_push_failed", rollout=rollout.pk, what=what, error=str(exc))
        alert_quietly(
            summary=f"{rollout.service} {rollout.version}: the router did not take {what}: {exc}",
            source=f"canary-portal/{rollout.service}",
            severity="critical",
            details={"rollout": rollout.pk},
        )
