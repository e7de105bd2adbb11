"""A service as the API and the command line show it, with its router's state."""

from __future__ import annotations

from typing import Any

from governance.models import Service
from rollouts.models import TrafficSplit


def router_state(service: Service) -> dict[str, Any]:
    split = TrafficSplit.objects.filter(service=service.name).first()
    if split is None:
        return {"weight": 0, "applied_at": None, "ok": True}
    return {"weight": split.weight, "applied_at": split.updated_at, "ok": True}


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
