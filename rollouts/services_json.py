"""A service as the API and the command line show it, with its router's state."""

from __future__ import annotations

from typing import Any

from governance.models import Service
from rollouts.models import TrafficSplit


def router_state(service: Service) -> dict[str, Any]:
    """What the router confirmed (`weight`, `applied_at`), whether its last call did
    (`ok`), and, when not, why and what waits to be retried."""
    split = TrafficSplit.objects.filter(service=service.name).first()
    if split is None:
        return {"weight": 0, "applied_at": None, "ok": True}
    state: dict[str, Any] = {"weight": split.weight, "applied_at": split.updated_at, "ok": split.ok}
    if not split.ok:
        state["error"] = split.error
        state["pending_weight"] = (split.pending or {}).get("weight")
        state["next_attempt_at"] = split.next_attempt_at
    return state


def service_json(service: Service) -> dict[str, Any]:
    return {
        "name": service.name,
        "modules": list(service.modules),
        "stable_url": service.stable_url,
        "canary_url": service.canary_url,
        "router": service.router,
        "metrics": service.metrics,
        "router_state": router_state(service),
    }
