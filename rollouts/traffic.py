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

    def route_all_to_stable(self, service: str, *, stable_version: str = "") -> None:
        """Everyone on stable; with `stable_version`, that version is stable from now on
        (a promotion)."""


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
        values: dict[str, object] = {"weight": weight}
        if canary_version:
            values.update(canary_version=canary_version, salt=salt)
        if stable_version:
            values["stable_version"] = stable_version
        self._write(service, values)

    def route_all_to_stable(self, service: str, *, stable_version: str = "") -> None:
        values: dict[str, object] = {"weight": 0, "canary_version": ""}
        if stable_version:
            values["stable_version"] = stable_version
        self._write(service, values)

    @staticmethod
    def _write(service: str, values: dict[str, object]) -> None:
        TrafficSplit.objects.update_or_create(
            service=service, defaults={**values, "updated_at": clock.now()}
        )


def traffic_adapter() -> TrafficAdapter:
    return import_string(str(settings.CANARY_TRAFFIC_ADAPTER))()
