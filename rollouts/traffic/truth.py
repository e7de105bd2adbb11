"""The router's truth: what a service's router has confirmed, and what it has not taken.

Every change of a service's traffic goes through `route`: it locks the service's split
row (so a slower raise can never land after the kill switch's zero: calls to one
router are serialised, each within its deadline), asks the router to serve the wanted
state, and records the outcome in the same transaction. Confirmed: the split holds the
new weight and versions, `applied_at` is now and `ok` is true. Refused, unreachable or
late: the split keeps what the router last confirmed, `ok` turns false with the reason,
the wanted state waits in `pending`, on-call is alerted once (until the router confirms
again), and the next attempt is due after an exponential backoff. The tick retries what
is pending (`reconcile`) except raises, which the engine retries itself after checking
that its rollout still wants them.

For the embedded router the split row is the router: the decision API and the
middleware read it, so writing it is the confirmation.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import structlog
from django.conf import settings
from django.db import OperationalError, connection, transaction

from comms.alerts import alert_quietly
from governance.models import Service
from portal import clock
from rollouts.models import TrafficSplit
from rollouts.traffic.base import DEFAULT_TIMEOUT_S, router_for
from rollouts.traffic.router import RouterError, Target

logger = structlog.get_logger(__name__)


class Superseded(Exception):
    """The change is no longer wanted (its rollout moved on while it waited its turn)."""


def route(
    service: str,
    weight: int,
    *,
    canary_version: str | None = None,
    stable_version: str | None = None,
    salt: str | None = None,
    promote: bool = False,
    timeout: float = DEFAULT_TIMEOUT_S,
    still_wanted: Callable[[], bool] | None = None,
) -> str:
    """Make `service`'s router serve `weight`% to the canary and record it once confirmed.

    Unset versions and salt keep the router's current ones; weight 0 with no canary
    version is everyone on stable. `promote` makes `stable_version` the stable one and,
    behind nginx or HAProxy, the server that ran the canary the stable server (the
    service's two URLs swap). Raises RouterError or TimeoutError when the router did not
    confirm (recorded, alerted, retried), Superseded when `still_wanted()` says no.
    """
    if not 0 <= weight <= 100:
        raise ValueError(f"weight {weight} is not a percentage")

    def wanted(split: TrafficSplit, catalogue: Service | None) -> dict[str, Any]:
        stable_url = catalogue.stable_url if catalogue else ""
        canary_url = catalogue.canary_url if catalogue else ""
        if promote and catalogue is not None and catalogue.router != "embedded":
            stable_url, canary_url = canary_url, stable_url
        return {
            "weight": weight,
            "canary_version": "" if promote else _keep(canary_version, split.canary_version),
            "stable_version": _keep(stable_version, split.stable_version),
            "salt": _keep(salt, split.salt),
            "stable_url": stable_url,
            "canary_url": canary_url,
        }

    return _route(service, wanted, timeout, still_wanted)


def reconcile(timeout: float = DEFAULT_TIMEOUT_S) -> int:
    """Retry every pending decrease and promotion whose backoff is over; how many the
    routers confirmed."""
    due = TrafficSplit.objects.filter(pending__isnull=False, next_attempt_at__lte=clock.now())
    confirmed = 0
    for split in due:
        pending: dict[str, Any] = dict(split.pending or {})
        if _is_raise(split, pending):
            continue

        def wanted(_split: TrafficSplit, _catalogue: Service | None, p: dict = pending) -> dict:
            return p

        try:
            _route(split.service, wanted, timeout, None)
        except (RouterError, TimeoutError, Superseded):
            continue
        confirmed += 1
    return confirmed


def serve_current(service: str, timeout: float = 10.0) -> str:
    """The router serves what the portal holds for the service now: after its settings
    changed, or at first (everyone on stable)."""
    split = TrafficSplit.objects.filter(service=service).first()
    return route(service, split.weight if split else 0, timeout=timeout)


def current_target(service: Service) -> Target:
    """What the service's router serves now, as the portal recorded it."""
    split = TrafficSplit.objects.filter(service=service.name).first() or TrafficSplit()
    return Target(
        weight=split.weight,
        stable_url=service.stable_url,
        canary_url=service.canary_url,
        canary_version=split.canary_version,
        stable_version=split.stable_version,
        salt=split.salt,
    )


def held_back(service: str) -> str:
    """Why a raise must wait: the router's last call failed and its backoff is not over."""
    split = TrafficSplit.objects.filter(service=service).first()
    if split is None or split.ok:
        return ""
    if split.next_attempt_at and split.next_attempt_at > clock.now():
        when = f"{split.next_attempt_at:%H:%M:%S}"
        return f"the router did not confirm ({split.error}); next attempt at {when}"
    return ""


def _route(
    service: str,
    wanted: Callable[[TrafficSplit, Service | None], dict[str, Any]],
    timeout: float,
    still_wanted: Callable[[], bool] | None,
) -> str:
    catalogue = Service.objects.filter(name=service).first()
    router = router_for(catalogue)
    failure: Exception | None = None
    first_failure = False
    try:
        with transaction.atomic():
            _bound_lock_wait(timeout)
            split, _ = TrafficSplit.objects.select_for_update().get_or_create(
                service=service, defaults={"updated_at": None}
            )
            if still_wanted is not None and not still_wanted():
                raise Superseded(f"{service}: the change is no longer wanted")
            target = wanted(split, catalogue)
            try:
                detail = (
                    router.apply(Target(**target), timeout)
                    if router is not None
                    else "embedded: the decision API reads the split"
                )
            except (RouterError, TimeoutError) as exc:
                failure, first_failure = exc, not split.alerted
                _failed(split, target, exc)
            else:
                _confirmed(split, catalogue, target)
    except OperationalError as exc:
        if "timeout" in str(exc) or "canceling statement" in str(exc):
            raise TimeoutError(
                f"{service}: another change of its router did not finish within {timeout:g}s"
            ) from exc
        raise
    if failure is not None:
        logger.error("router_refused", service=service, error=str(failure))
        if first_failure:
            alert_quietly(
                summary=f"The router of {service} did not confirm a change: {failure}",
                source=f"canary-portal/{service}",
                severity="critical",
                details={"service": service, "wanted": target},
            )
        raise failure
    logger.info("router_confirmed", service=service, weight=target["weight"], detail=detail)
    return detail


def _failed(split: TrafficSplit, target: dict[str, Any], exc: Exception) -> None:
    split.ok, split.error = False, f"{type(exc).__name__}: {exc}"[:1000]
    split.pending, split.attempts, split.alerted = target, split.attempts + 1, True
    split.next_attempt_at = clock.now() + backoff(split.attempts)
    split.save()


def _confirmed(split: TrafficSplit, catalogue: Service | None, target: dict[str, Any]) -> None:
    if split.alerted:
        logger.warning("router_recovered", service=split.service, attempts=split.attempts)
    split.weight, split.salt = target["weight"], target["salt"]
    split.canary_version, split.stable_version = target["canary_version"], target["stable_version"]
    split.updated_at, split.ok, split.error, split.pending = clock.now(), True, "", None
    split.attempts, split.next_attempt_at, split.alerted = 0, None, False
    split.save()
    urls = (target["stable_url"], target["canary_url"])
    if catalogue is not None and urls != (catalogue.stable_url, catalogue.canary_url):
        catalogue.stable_url, catalogue.canary_url = urls
        catalogue.save(update_fields=["stable_url", "canary_url"])


def backoff(attempts: int) -> timedelta:
    """1 s, 2 s, 4 s ... after each failed attempt, capped at ROUTER_RETRY_MAX_S."""
    seconds = min(settings.ROUTER_RETRY_MAX_S, 2 ** max(0, attempts - 1))
    return timedelta(seconds=seconds)


def _is_raise(split: TrafficSplit, pending: dict[str, Any]) -> bool:
    return bool(pending.get("canary_version")) and int(pending.get("weight", 0)) > split.weight


def _keep(value: str | None, current: str) -> str:
    return current if value is None else value


def _bound_lock_wait(timeout: float) -> None:
    """Wait for the split's row lock no longer than the call's deadline (PostgreSQL)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            limit = f"{max(1, round(timeout * 1000))}ms"
            cursor.execute("SELECT set_config('lock_timeout', %s, true)", [limit])
