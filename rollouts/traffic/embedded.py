"""The embedded traffic adapter: the decision API is the router, the split lives in the
database. Its deadline is the database's: the write gives up (lock and statement
timeouts) rather than wait behind a lock."""

from __future__ import annotations

from django.db import OperationalError, connection, transaction

from portal import clock
from rollouts.models import TrafficSplit
from rollouts.traffic.base import DEFAULT_TIMEOUT_S

_TIMEOUTS = ("lock_timeout", "statement_timeout")


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
        timeout: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        if not 0 <= weight <= 100:
            raise ValueError(f"weight {weight} is not a percentage")
        values: dict[str, object] = {"weight": weight}
        if canary_version:
            values.update(canary_version=canary_version, salt=salt)
        if stable_version:
            values["stable_version"] = stable_version
        self._write(service, values, timeout)

    def route_all_to_stable(
        self, service: str, *, stable_version: str = "", timeout: float = DEFAULT_TIMEOUT_S
    ) -> None:
        values: dict[str, object] = {"weight": 0, "canary_version": ""}
        if stable_version:
            values["stable_version"] = stable_version
        self._write(service, values, timeout)

    @staticmethod
    def _write(service: str, values: dict[str, object], timeout: float) -> None:
        with transaction.atomic():
            if connection.vendor != "postgresql":
                TrafficSplit.objects.update_or_create(
                    service=service, defaults={**values, "updated_at": clock.now()}
                )
                return
            with connection.cursor() as cursor:
                # Local to the transaction; the caller's own settings come back after.
                cursor.execute("SELECT current_setting(%s), current_setting(%s)", _TIMEOUTS)
                before = cursor.fetchone()
                limit = f"{max(1, round(timeout * 1000))}ms"
                for name in _TIMEOUTS:
                    cursor.execute("SELECT set_config(%s, %s, true)", [name, limit])
                try:
                    with transaction.atomic():
                        TrafficSplit.objects.update_or_create(
                            service=service, defaults={**values, "updated_at": clock.now()}
                        )
                except OperationalError as exc:
                    if "timeout" in str(exc) or "canceling statement" in str(exc):
                        raise TimeoutError(
                            f"traffic split not written within {timeout:g}s"
                        ) from exc
                    raise
                for name, value in zip(_TIMEOUTS, before or ("0", "0"), strict=True):
                    cursor.execute("SELECT set_config(%s, %s, true)", [name, value])
