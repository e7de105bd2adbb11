"""Rollout transitions. Every state change passes the one guard (`locked`, or `check`
for a row the caller already holds): it locks the rollout row and checks TRANSITIONS,
so a tick, a steward and the kill switch racing on one rollout give one winner and a
Conflict (409) to the rest; each writes history and an audit event, and commits.

Slow work happens after the commit, outside any row or audit lock: the router call
(with its deadline: a weight is recorded only once the router confirmed it) and, for an
abort, the rollback's first step (run as soon as it commits: the kill switch answers
once the router took weight 0)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import structlog
from django.db import IntegrityError, transaction
from django.dispatch import Signal

from comms.notices import notice_lead_problem
from comms.services import incident_open_for_rollout
from governance.audit import audit_append
from governance.choices import Risk
from governance.models import Release
from governance.services import release_mark_deployed
from portal import clock
from portal.errors import Conflict, Invalid
from rollouts.choices import (
    ABORTABLE_STATES,
    ACTIVE_STATES,
    LIVE_STATES,
    Event,
    PauseKind,
    PhaseVerdict,
    RollbackMode,
    RolloutState,
    StepName,
)
from rollouts.models import Phase, Plan, Rollback, RollbackStep, Rollout, TrafficSplit
from rollouts.rollback import attempt, plan_steps, run_claimed
from rollouts.traffic.base import push
from rollouts.traffic.truth import route

logger = structlog.get_logger(__name__)

# Sent inside the transition's transaction; `rollout_id` says which.
rollback_started = Signal()

S = RolloutState
# The one table of what a rollout may become from each state (see DESIGN.md).
TRANSITIONS: dict[str, frozenset[str]] = {
    S.RUNNING: frozenset({S.PAUSED, S.MONITORING, S.PROMOTED, S.ROLLING_BACK}),
    S.PAUSED: frozenset({S.RUNNING, S.MONITORING, S.PROMOTED, S.ROLLING_BACK}),
    S.MONITORING: frozenset({S.PAUSED, S.PROMOTED, S.ROLLING_BACK}),
    S.ROLLING_BACK: frozenset({S.ROLLED_BACK, S.ABORTED}),
    S.PROMOTED: frozenset(),
    S.ROLLED_BACK: frozenset(),
    S.ABORTED: frozenset(),
}


def check(rollout: Rollout, to: str, doing: str) -> None:
    """The guard: Conflict unless the rollout may go from its state to `to`."""
    if to not in TRANSITIONS[rollout.state]:
        raise Conflict(f"Rollout {rollout.pk} is {rollout.state}: it cannot {doing}.")


def locked(rollout_id: int, to: str, doing: str) -> Rollout:
    """Lock the rollout's row and pass the guard."""
    rollout = Rollout.objects.select_for_update().filter(pk=rollout_id).first()
    if rollout is None:
        raise Invalid(f"Rollout {rollout_id} does not exist.")
    check(rollout, to, doing)
    return rollout


def audit(rollout: Rollout, action: str, actor: Any = None, **data: Any) -> None:
    audit_append(
        action=f"rollout.{action}",
        actor=actor,
        actor_name=data.pop("actor_name", None),
        obj=rollout,
        release_id=rollout.release_id,
        data={
            "service": rollout.service,
            "version": rollout.version,
            "state": rollout.state,
            "weight": rollout.weight,
            **data,
        },
    )


def save(rollout: Rollout, actor: Any = None) -> None:
    rollout._history_user = actor  # type: ignore[attr-defined]
    rollout.save()


def _scaled_s(seconds: float) -> int:
    return max(1, round(clock.scaled(seconds).total_seconds()))


def active_rollout(service: str) -> Rollout | None:
    return Rollout.objects.filter(service=service, state__in=ACTIVE_STATES).first()


def rollout_start(
    *, release: Release, actor: Any, plan: str | None = None, stable_version: str = ""
) -> Rollout:
    """Deploy: refuses (409 with `blocking`) unless the gate is ready and the service is free."""
    plan_name = plan or ("high_risk" if release.risk == Risk.CRITICAL else "standard")
    chosen = Plan.objects.filter(name=plan_name).first()
    if chosen is None:
        raise Invalid(f"Unknown plan {plan_name!r}.")
    now = clock.now()
    try:
        with transaction.atomic():
            busy = active_rollout(release.service)
            if busy is not None:
                reason = f"Rollout {busy.pk} of {busy.service} {busy.version} is {busy.state}"
                raise Conflict(
                    f"Another rollout of {release.service} is active.", blocking=[reason]
                )
            notice_problem = notice_lead_problem(release, now)
            if notice_problem:
                raise Conflict(
                    "The customer notice has not had its lead time.", blocking=[notice_problem]
                )
            release = release_mark_deployed(release=release, actor=actor)
            split = TrafficSplit.objects.filter(service=release.service).first()
            stable = stable_version or (split.stable_version if split else "")
            steps = [*chosen.steps, {"weight": 100, "duration_s": chosen.monitoring_s}]
            first = steps[0]
            rollout = Rollout(
                release=release,
                service=release.service,
                version=release.version,
                stable_version=stable,
                plan=chosen.name,
                state=RolloutState.RUNNING,
                weight=0,  # until the router confirms the first phase's weight
                phase_started_at=now,
                phase_ends_at=now + timedelta(seconds=_scaled_s(first["duration_s"])),
                monitoring_s=_scaled_s(chosen.monitoring_s),
                started_by=actor,
                started_by_name=actor.get_username(),
            )
            save(rollout, actor)
            Phase.objects.bulk_create(
                Phase(
                    rollout=rollout,
                    index=i,
                    weight=step["weight"],
                    duration_s=_scaled_s(step["duration_s"]),
                    started_at=now if i == 0 else None,
                )
                for i, step in enumerate(steps)
            )
            audit(rollout, Event.STARTED, actor, plan=chosen.name, stable_version=stable)
    except IntegrityError:
        raise Conflict(f"Another rollout of {release.service} is active.") from None
    apply_phase_weight(rollout)
    return rollout


def apply_phase_weight(rollout: Rollout) -> bool:
    """After the commit: the router takes the phase's weight, then the rollout records it
    and the phase's time starts. False when the router did not confirm (the engine's tick
    retries after the backoff) or the rollout moved on meanwhile."""
    phase = rollout.phases.get(index=rollout.phase_index)
    live = Rollout.objects.filter(pk=rollout.pk, phase_index=phase.index, state__in=LIVE_STATES)
    confirmed = push(
        rollout,
        f"weight {phase.weight}%",
        lambda: route(
            rollout.service,
            phase.weight,
            canary_version=rollout.version,
            stable_version=rollout.stable_version,
            salt=rollout.salt,
            still_wanted=live.exists,
        ),
    )
    with transaction.atomic():
        if not confirmed or not live.select_for_update().exists():
            return False
        now = clock.now()
        phase.started_at = rollout.phase_started_at = now
        phase.save(update_fields=["started_at"])
        ends = rollout.phase_ends_at = now + timedelta(seconds=phase.duration_s)
        rollout.weight = phase.weight
        live.update(weight=phase.weight, phase_started_at=now, phase_ends_at=ends)
        audit(rollout, Event.WEIGHT_APPLIED, weight=phase.weight)
    return True


def rollout_pause(*, rollout: Rollout, actor: Any, reason: str = "") -> Rollout:
    with transaction.atomic():
        rollout = locked(rollout.pk, RolloutState.PAUSED, "pause")
        pause(rollout, PauseKind.MANUAL, reason or f"paused by {actor.get_username()}", actor)
    return rollout


def pause(rollout: Rollout, kind: str, detail: str, actor: Any = None, **data: Any) -> None:
    """Pause a rollout whose row the caller holds, saying why (`kind`, `detail`)."""
    check(rollout, RolloutState.PAUSED, "pause")
    rollout.paused_from, rollout.state = rollout.state, RolloutState.PAUSED
    rollout.paused_at, rollout.pause_kind, rollout.pause_detail = clock.now(), kind, detail
    save(rollout, actor)
    audit(rollout, Event.PAUSED, actor, kind=str(kind), reason=detail, **data)


def _unpause(rollout: Rollout) -> None:
    rollout.paused_at, rollout.paused_from = None, ""
    rollout.pause_kind, rollout.pause_detail = "", ""


def rollout_resume(*, rollout: Rollout, actor: Any) -> Rollout:
    """Carry on where the rollout was paused: its phase starts afresh, with its full
    duration before the next decision and a validation window from now."""
    with transaction.atomic():
        rollout = locked(rollout.pk, RolloutState.RUNNING, "resume")
        now = clock.now()
        duration = rollout.phases.get(index=rollout.phase_index).duration_s
        rollout.state = rollout.paused_from or RolloutState.RUNNING
        rollout.phase_started_at = now
        rollout.phase_ends_at = now + timedelta(seconds=duration)
        _unpause(rollout)
        rollout.metrics_down_since = None
        save(rollout, actor)
        audit(rollout, Event.RESUMED, actor, phase_ends_at=rollout.phase_ends_at.isoformat())
    return rollout


def advance(rollout: Rollout, now: datetime, actor: Any = None, how: str = "validated") -> None:
    """The next phase of a rollout whose row the caller holds (running again if it was
    paused); its weight is pushed to the router after the commit (`apply_phase_weight`)."""
    phase = rollout.phases.get(index=rollout.phase_index + 1)
    to = RolloutState.MONITORING if phase.weight >= 100 else RolloutState.RUNNING
    if to != rollout.state:
        check(rollout, to, "advance")
    rollout.phases.filter(index=rollout.phase_index).update(
        ended_at=now, verdict=PhaseVerdict.PASSED
    )
    phase.started_at = now
    phase.save(update_fields=["started_at"])
    rollout.phase_index, rollout.phase_started_at, rollout.state = phase.index, now, to
    rollout.phase_ends_at = now + timedelta(seconds=phase.duration_s)
    _unpause(rollout)
    save(rollout, actor)
    audit(rollout, Event.ADVANCED, actor, phase=phase.index, how=how)


def promote(rollout: Rollout, actor: Any, how: str) -> None:
    """Promote a rollout whose row the caller holds; then push the traffic after commit."""
    check(rollout, RolloutState.PROMOTED, "be promoted")
    now = clock.now()
    rollout.phases.filter(index=rollout.phase_index).update(
        ended_at=now, verdict=PhaseVerdict.PROMOTED
    )
    rollout.state, rollout.weight, rollout.ended_at = RolloutState.PROMOTED, 100, now
    save(rollout, actor)
    audit(rollout, Event.PROMOTED, actor, how=str(how))


def rollout_abort(
    *,
    rollout: Rollout,
    actor: Any,
    reason: str,
    operator: str = "",
    mode: str = RollbackMode.INSTANT,
) -> Rollout:
    """A person's abort (kill switch or abort action): the canary's traffic is at 0
    when this returns; the other rollback steps continue in the background."""
    if not reason.strip():
        raise Invalid("An abort needs a reason.")
    if mode not in RollbackMode.values:
        raise Invalid("mode must be instant or gradual.")
    done = None
    if mode == RollbackMode.INSTANT and rollout.state in ABORTABLE_STATES:
        # The router first: no other I/O (audit, incident, anchor file) before it.
        done = attempt(rollout, RollbackStep(name=StepName.ROUTE_TO_STABLE, timeout_s=30))
    with transaction.atomic():
        rollout = locked(rollout.pk, RolloutState.ROLLING_BACK, "be aborted")
        who = operator or actor.get_username()
        first, token = start_rollback(
            rollout,
            mode=mode,
            reason=reason,
            trigger=f"aborted by {who}",
            operator=who,
            actor=actor,
        )
        continue_in_background(rollout)
    run_claimed(rollout, first, token, done)  # recorded (or run) before the caller answers
    return rollout


def start_rollback(
    rollout: Rollout,
    *,
    mode: str,
    reason: str,
    trigger: str,
    operator: str = "",
    actor: Any = None,
) -> tuple[RollbackStep, str]:
    """Begin the rollback of a rollout whose row the caller holds. Returns its first step,
    claimed, and the claim's token: the caller runs it (`run_claimed`) once it commits."""
    check(rollout, RolloutState.ROLLING_BACK, "be aborted")
    now = clock.now()
    rollout.phases.filter(index=rollout.phase_index).update(
        ended_at=now, verdict=PhaseVerdict.ABORTED if operator else PhaseVerdict.FAILED
    )
    rollback = Rollback.objects.create(
        rollout=rollout,
        mode=mode,
        reason=reason,
        trigger=trigger,
        operator=operator,
        from_weight=rollout.weight,
        started_at=now,
    )
    first = plan_steps(rollback, now)
    rollout.state = RolloutState.ROLLING_BACK
    save(rollout, actor)
    audit(
        rollout,
        Event.ROLLBACK_STARTED,
        actor,
        mode=mode,
        reason=reason,
        trigger=trigger,
        operator=operator or None,
    )
    incident_open_for_rollout(rollout, reason)
    return first


def continue_in_background(rollout: Rollout) -> None:
    """Hand the rest of the rollback to a worker (`rollouts.tasks` listens, after the
    commit); without one, the engine's tick carries it on, so a dead broker delays nothing
    that matters."""
    rollback_started.send(sender=Rollout, rollout_id=rollout.pk)
