"""The engine's hands: how a weight decided by the engine reaches real traffic.

A service's router is chosen by its `router` (the catalogue): `embedded` keeps the split
in the portal's database, where the routing decision (API, library, middleware) reads
it; `nginx` and `haproxy` drive a real router (`rollouts.traffic.router` is their
interface). Every change goes through `rollouts.traffic.truth.route`, which records only
what the router confirmed. Every call has a deadline: a router that hangs must not hang
a rollback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import structlog
from django.utils.module_loading import import_string

if TYPE_CHECKING:
    from governance.models import Service
    from rollouts.models import Rollout
    from rollouts.traffic.router import Router

logger = structlog.get_logger(__name__)

# The guide's route-to-stable budget; every call gets a deadline.
DEFAULT_TIMEOUT_S = 30.0

ROUTERS = {
    "nginx": "rollouts.traffic.nginx.NginxRouter",
    "haproxy": "rollouts.traffic.haproxy.HAProxyRouter",
}


def router_for(service: Service | None) -> Router | None:
    """The real router in front of `service`; None for the embedded one."""
    if service is None or service.router not in ROUTERS:
        return None
    router: Router = import_string(ROUTERS[service.router])(service)
    return router


def push(rollout: Rollout, what: str, call: Callable[[], object]) -> bool:
    """A router call after the commit; False when the router did not confirm (the truth
    layer has recorded, alerted and scheduled a retry): never raised into a transition
    that has already happened."""
    try:
        call()
    except Exception as exc:
        logger.error("traffic_push_failed", rollout=rollout.pk, what=what, error=str(exc))
        return False
    return True
