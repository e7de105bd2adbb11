"""Traffic adapters: how a weight decided by the engine reaches real traffic.

The interface is two calls. The embedded adapter keeps the split in the portal's
database, where the routing decision (API, library, middleware) reads it; nginx
and HAProxy adapters implement the same two calls.
"""

from __future__ import annotations

from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string

from portal import clock
from rollouts.models import TrafficSplit


class TrafficAdapter(Protocol):
    def set_weight(
        self,
        service: str,
        weight: int,
        *,
        canary_version: str = "",
        stable_version: str = "",
        salt: str = "",
    ) -> None: ...

    def route_all_to_stable(self, service: str) -> None: ...


class EmbeddedTraffic:
    """The decision API is the router: the split lives in the database."""

    def set_weight(
        self,
        service: str,
        weight: int,
        *,
        canary_version: str = "",
        stable_version: str = "",
        salt: str = "",
    ) -> None:
        if not 0 <= weight <= 100:
            raise ValueError(f"weight {weight} is not a percentage")
        values = {"weight": weight, "updated_at": clock.now()}
        if canary_version:
            values.update(canary_version=canary_version, salt=salt)
        if stable_version:
            values["stable_version"] = stable_version
        TrafficSplit.objects.update_or_create(service=service, defaults=values)

    def route_all_to_stable(self, service: str) -> None:
        TrafficSplit.objects.update_or_create(
            service=service,
            defaults={"weight": 0, "canary_version": "", "updated_at": clock.now()},
        )

    def promote(self, service: str, version: str) -> None:
        TrafficSplit.objects.update_or_create(
            service=service,
            defaults={
                "weight": 0,
                "canary_version": "",
                "stable_version": version,
                "updated_at": clock.now(),
            },
        )


def traffic_adapter() -> EmbeddedTraffic:
    return import_string(str(settings.CANARY_TRAFFIC_ADAPTER))()
