"""Promotions by a person, as the contract has them.

- `{"mode": "manual", "confirmed": true}` moves the rollout to its next phase at once (from
  the monitoring period at 100%: promoted), whatever its gates say: a person decided.
- `{"mode": "manual", "confirmed": true, "full": true}` goes straight to 100% and promoted,
  and needs two members: the first call records the request and answers "awaiting a
  second approver"; a second member (council or steward, not the first, not the release's
  author; the one the first named as `approver`, when named) completes it with the same
  call within 15 minutes. A call at or after the 15 minutes starts a new request.
- `{"mode": "auto"}` promotes when validation passes at the end of the monitoring period.

The 15 minutes are a person's time: CANARY_TIME_SCALE does not shrink them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction

from governance.choices import Role
from governance.roles import user_roles
from portal import clock
from portal.errors import Conflict, Invalid
from rollouts.choices import Event, PromoteMode, RolloutState
from rollouts.lifecycle import advance, apply_phase_weight, audit, locked, promote, save
from rollouts.models import FullPromotion, Rollout
from rollouts.traffic.base import push
from rollouts.traffic.truth import route

SECOND_APPROVER_WITHIN = timedelta(minutes=15)
PROMOTERS = frozenset({Role.COUNCIL, Role.STEWARD})


def _push_promotion(rollout: Rollout) -> None:
    push(
        rollout,
        "the promotion",
        lambda: route(rollout.service, 0, stable_version=rollout.version, promote=True),
    )


def rollout_promote(*, rollout: Rollout, actor: Any, mode: str, confirmed: bool) -> Rollout:
    """`manual`: the next phase now (confirmation required); `auto`: promote when
    validation passes at the end of the monitoring period."""
    if mode not in PromoteMode.values:
        raise Invalid("mode must be manual or auto.")
    if mode == PromoteMode.MANUAL and confirmed is not True:
        raise Invalid("A manual promotion needs confirmed: true.")
    with transaction.atomic():
        rollout = locked(rollout.pk, RolloutState.PROMOTED, "be promoted")
        if mode == PromoteMode.AUTO:
            rollout.auto_promote = True
            save(rollout, actor)
            audit(rollout, Event.AUTO_PROMOTE_SET, actor)
            return rollout
        final = rollout.state == RolloutState.MONITORING or (
            not rollout.phases.filter(index__gt=rollout.phase_index).exists()
        )
        if final:  # the monitoring period at 100%: the next step is the promotion
            promote(rollout, actor, "manual")
        else:
            advance(rollout, clock.now(), actor, how="manual")
    if final:
        _push_promotion(rollout)
    else:
        apply_phase_weight(rollout)
    return rollout


def _username(handle: str) -> str:
    return handle.strip().removeprefix("@")


def _check_approver(rollout: Rollout, actor: Any, approver: str) -> None:
    """The member named to confirm: an active council member or steward, neither the
    caller nor the release's author."""
    user = get_user_model().objects.filter(username=approver, is_active=True).first()
    if user is None or not user_roles(user) & PROMOTERS:
        raise Invalid(f"approver {approver} is not a council member or steward.")
    if user.pk == actor.pk:
        raise Invalid("The approver must be another member than the one asking.")
    if user.pk == rollout.release.created_by_id:
        raise Invalid(f"approver {approver} is the release's author.")


def rollout_promote_full(
    *, rollout: Rollout, actor: Any, confirmed: bool, approver: str = ""
) -> FullPromotion:
    """Straight to 100% and promoted, by two members. Returns the request: confirmed (the
    rollout is promoted) or awaiting its second member."""
    if confirmed is not True:
        raise Invalid("A manual promotion needs confirmed: true.")
    approver = _username(approver)
    with transaction.atomic():
        rollout = locked(rollout.pk, RolloutState.PROMOTED, "be promoted")
        now = clock.now()
        request = (
            rollout.full_promotions.select_for_update()
            .filter(confirmed_at=None, expires_at__gt=now)
            .first()
        )
        if request is None:
            if approver:
                _check_approver(rollout, actor, approver)
            request = FullPromotion.objects.create(
                rollout=rollout,
                requested_by=actor,
                requested_by_name=actor.get_username(),
                approver_name=approver,
                requested_at=now,
                expires_at=now + SECOND_APPROVER_WITHIN,
            )
            audit(
                rollout,
                Event.FULL_PROMOTION_REQUESTED,
                actor,
                approver=approver or None,
                expires_at=request.expires_at.isoformat(),
            )
            return request
        _check_second(rollout, request, actor, approver)
        request.confirmed_by, request.confirmed_by_name = actor, actor.get_username()
        request.confirmed_at = now
        request.save(update_fields=["confirmed_by", "confirmed_by_name", "confirmed_at"])
        audit(
            rollout,
            Event.FULL_PROMOTION_CONFIRMED,
            actor,
            requested_by=request.requested_by_name,
            requested_at=request.requested_at.isoformat(),
        )
        promote(rollout, actor, "manual, full (two members)")
    _push_promotion(rollout)
    return request


def _check_second(rollout: Rollout, request: FullPromotion, actor: Any, approver: str) -> None:
    """Refuse (409) a second call that the two-person rule does not allow."""
    name = actor.get_username()
    awaiting = request.approver_name or "a second member"
    if actor.pk == request.requested_by_id:
        raise Conflict(
            f"{name} asked for this full promotion: it awaits {awaiting} "
            f"until {request.expires_at.isoformat()}."
        )
    if actor.pk == rollout.release.created_by_id:
        raise Conflict(f"{name} is the release's author and cannot be its second approver.")
    if request.approver_name and request.approver_name != name:
        raise Conflict(f"This full promotion awaits {request.approver_name}, not {name}.")
    if approver and approver != name:
        raise Conflict(
            f"A full promotion asked by {request.requested_by_name} awaits {awaiting}; "
            f"its second call names no one else (approver {approver})."
        )
