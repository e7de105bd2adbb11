"""Rollout transitions. Each one locks the rollout row and checks its state, so a
tick, a steward and the kill switch racing on one rollout give one winner and a
Conflict (409) to the rest; each writes history and an audit event."""

from __future__ import annotations

import shlex
import subprocess
import time
from datetime import datetime, timedelta
from typing import Any

import httpx
import structlog
from django.conf import settings
from django.db import IntegrityError, transaction

from comms.alerts import alert_quietly, send_alert
from comms.notices import notice_lead_problem
from comms.services import (
    incident_open_for_rollout,
    incident_update_for_rollout,
    other_open_incidents,
)
from governance.audit import audit_append
from governance.choices import Risk
from governance.models import Release
from governance.services import release_mark_deployed
from portal import clock
from portal.bulk import update_rows
from portal.enqueue import enqueue_after_commit
from portal.errors import Conflict, Invalid
from rollouts.analysis import Analysis, TickData, analyse, prepare, stable_window
from rollouts.choices import (
    ABORTABLE_STATES,
    ACTIVE_STATES,
    PhaseVerdict,
    PostRollbackKind,
    RollbackMode,
    RolloutState,
    StepStatus,
)
from rollouts.models import (
    MetricSample,
    Phase,
    Plan,
    PostRollbackAction,
    Rollback,
    RollbackStep,
    Rollout,
    ServiceHooks,
    TrafficSplit,
)
from rollouts.reports import incident_report
from rollouts.traffic import traffic_adapter

logger = structlog.get_logger(__name__)

# The guide's instant rollback: (step, timeout in seconds).
INSTANT_STEPS = [
    ("route_to_stable", 30),
    ("stop_canary", 60),
    ("clear_canary_cache", 30),
    ("notify_oncall", 30),
    ("incident_report", 30),
]
GRADUAL_WEIGHTS = [20, 10, 5, 1]
GRADUAL_STEP_S = 300
VERIFY_AFTER_S = 600
ACTIONS_DUE_S = 86_400


def _audit(rollout: Rollout, action: str, actor: Any = None, **data: Any) -> None:
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


def _save(rollout: Rollout, actor: Any = None) -> None:
    rollout._history_user = actor  # type: ignore[attr-defined]
    rollout.save()


def _locked(rollout_id: int, allowed: tuple[str, ...], doing: str) -> Rollout:
    rollout = Rollout.objects.select_for_update().filter(pk=rollout_id).first()
    if rollout is None:
        raise Invalid(f"Rollout {rollout_id} does not exist.")
    if rollout.state not in allowed:
        raise Conflict(f"Rollout {rollout.pk} is {rollout.state}: it cannot {doing}.")
    return rollout


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
                weight=first["weight"],
                phase_started_at=now,
                phase_ends_at=now + timedelta(seconds=_scaled_s(first["duration_s"])),
                monitoring_s=_scaled_s(chosen.monitoring_s),
                started_by=actor,
                started_by_name=actor.get_username(),
            )
            _save(rollout, actor)
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
            traffic_adapter().set_weight(
                rollout.service,
                rollout.weight,
                canary_version=rollout.version,
                stable_version=stable,
                salt=rollout.salt,
            )
            _audit(rollout, "started", actor, plan=chosen.name, stable_version=stable)
    except IntegrityError:
        raise Conflict(f"Another rollout of {release.service} is active.") from None
    return rollout


def rollout_pause(*, rollout: Rollout, actor: Any, reason: str = "") -> Rollout:
    with transaction.atomic():
        rollout = _locked(rollout.pk, (RolloutState.RUNNING, RolloutState.MONITORING), "pause")
        _pause(rollout, reason or "paused by a steward", actor)
    return rollout


def _pause(rollout: Rollout, reason: str, actor: Any = None) -> None:
    now = clock.now()
    rollout.paused_from, rollout.state = rollout.state, RolloutState.PAUSED
    rollout.paused_at, rollout.pause_reason = now, reason
    rollout.paused_remaining_s = max(0.0, (rollout.phase_ends_at - now).total_seconds())
    _save(rollout, actor)
    _audit(rollout, "paused", actor, reason=reason)


def rollout_resume(*, rollout: Rollout, actor: Any) -> Rollout:
    with transaction.atomic():
        rollout = _locked(rollout.pk, (RolloutState.PAUSED,), "resume")
        now = clock.now()
        rollout.state = rollout.paused_from or RolloutState.RUNNING
        # The phase keeps the time it had left when it was paused.
        rollout.phase_ends_at = now + timedelta(seconds=rollout.paused_remaining_s or 0)
        rollout.paused_at, rollout.paused_from, rollout.paused_remaining_s = None, "", None
        rollout.pause_reason = ""
        _save(rollout, actor)
        _audit(rollout, "resumed", actor)
    return rollout


def rollout_promote(*, rollout: Rollout, actor: Any, mode: str, confirmed: bool) -> Rollout:
    """`manual` promotes now (confirmation required); `auto` promotes when validation passes
    at the end of the monitoring period."""
    if mode not in ("manual", "auto"):
        raise Invalid("mode must be manual or auto.")
    if mode == "manual" and confirmed is not True:
        raise Invalid("A manual promotion needs confirmed: true.")
    with transaction.atomic():
        rollout = _locked(rollout.pk, ABORTABLE_STATES, "be promoted")
        if mode == "auto":
            rollout.auto_promote = True
            _save(rollout, actor)
            _audit(rollout, "auto_promote_set", actor)
        else:
            _promote(rollout, actor, "manual")
    return rollout


def _promote(rollout: Rollout, actor: Any, how: str) -> None:
    now = clock.now()
    rollout.phases.filter(index=rollout.phase_index).update(
        ended_at=now, verdict=PhaseVerdict.PROMOTED
    )
    rollout.state, rollout.weight, rollout.ended_at = RolloutState.PROMOTED, 100, now
    traffic_adapter().route_all_to_stable(rollout.service, stable_version=rollout.version)
    _save(rollout, actor)
    _audit(rollout, "promoted", actor, how=how)


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
    with transaction.atomic():
        rollout = _locked(rollout.pk, ABORTABLE_STATES, "be aborted")
        who = operator or actor.get_username()
        _start_rollback(
            rollout,
            mode=mode,
            reason=reason,
            trigger=f"aborted by {who}",
            operator=who,
            actor=actor,
        )
    _continue_in_background(rollout)
    return rollout


def _start_rollback(
    rollout: Rollout,
    *,
    mode: str,
    reason: str,
    trigger: str,
    operator: str = "",
    actor: Any = None,
) -> Rollback:
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
    steps: list[tuple[str, int, int | None, datetime]] = []
    if mode == RollbackMode.GRADUAL:
        for n, weight in enumerate(w for w in GRADUAL_WEIGHTS if w < rollout.weight):
            steps.append(("set_weight", 30, weight, now + n * clock.scaled(GRADUAL_STEP_S)))
        last = now + len(steps) * clock.scaled(GRADUAL_STEP_S)
        steps += [(name, timeout, None, last) for name, timeout in INSTANT_STEPS]
    else:
        steps = [(name, timeout, None, now) for name, timeout in INSTANT_STEPS]
    RollbackStep.objects.bulk_create(
        RollbackStep(
            rollback=rollback,
            position=i,
            name=name,
            weight=weight,
            timeout_s=timeout,
            not_before=not_before,
        )
        for i, (name, timeout, weight, not_before) in enumerate(steps)
    )
    rollout.state = RolloutState.ROLLING_BACK
    _save(rollout, actor)
    _audit(
        rollout,
        "rollback_started",
        actor,
        mode=mode,
        reason=reason,
        trigger=trigger,
        operator=operator or None,
    )
    # The first step (all traffic to stable; for a gradual rollback, the first lower
    # weight) runs now, inside this transaction, not in a worker.
    _run_step(rollout, rollback.steps.get(position=0))
    incident_open_for_rollout(rollout, reason)
    return rollback


def _continue_in_background(rollout: Rollout) -> None:
    """Hand the rest of the rollback to a worker; without one, the engine's tick (canary_tick
    or beat) carries it on, so a dead broker delays nothing that matters."""
    from rollouts.tasks import rollback_continue

    enqueue_after_commit(rollback_continue, rollout.pk, skip_when_eager=True)


def _run_command_or_webhook(command: str, webhook: str, timeout: float, payload: dict) -> str:
    if command:
        result = subprocess.run(  # an operator-configured command, no shell
            shlex.split(command), capture_output=True, text=True, timeout=timeout, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"exit {result.returncode}: {result.stderr.strip()[:500]}")
        return f"ran {command!r}"
    response = httpx.post(webhook, json=payload, timeout=timeout)
    response.raise_for_status()
    return f"POST {webhook} → {response.status_code}"


class StepSkipped(Exception):
    pass


def _execute(rollout: Rollout, step: RollbackStep) -> str:
    timeout = clock.scaled(step.timeout_s).total_seconds()
    payload = {
        "service": rollout.service,
        "version": rollout.version,
        "rollout": rollout.pk,
        "step": step.name,
    }
    if step.name == "route_to_stable":
        traffic_adapter().route_all_to_stable(rollout.service)
        rollout.weight = 0
        return "all traffic on stable"
    if step.name == "set_weight":
        assert step.weight is not None
        traffic_adapter().set_weight(rollout.service, step.weight)
        rollout.weight = step.weight
        return f"canary weight {step.weight}%"
    if step.name in ("stop_canary", "clear_canary_cache"):
        hooks = ServiceHooks.objects.filter(service=rollout.service).first()
        kind = "stop" if step.name == "stop_canary" else "clear_cache"
        command = getattr(hooks, f"{kind}_command", "") if hooks else ""
        webhook = getattr(hooks, f"{kind}_webhook", "") if hooks else ""
        if not command and not webhook:
            raise StepSkipped(
                f"no {kind.replace('_', ' ')} command or webhook configured for {rollout.service}"
            )
        return _run_command_or_webhook(command, webhook, timeout, payload)
    if step.name == "notify_oncall":
        deliveries = send_alert(
            summary=f"Rollback of {rollout.service} {rollout.version}: {rollout.rollback.reason}",
            source=f"canary-portal/{rollout.service}",
            severity="critical",
            dedup_key=f"rollout-{rollout.pk}",
            details={
                "trigger": rollout.rollback.trigger,
                "weight": rollout.rollback.from_weight,
                "rollout": rollout.pk,
            },
        )
        summary = ", ".join(f"{d.channel} {d.status}" for d in deliveries)
        if all(d.status == "skipped" for d in deliveries):
            raise StepSkipped(f"no alert channel configured ({summary})")
        if any(d.status == "failed" for d in deliveries):
            raise RuntimeError(
                summary + ": " + "; ".join(d.detail for d in deliveries if d.status == "failed")
            )
        return summary
    if step.name == "incident_report":
        rollout.incident_report = incident_report(rollout)
        return "incident report written"
    raise ValueError(f"unknown rollback step {step.name}")


def _run_step(rollout: Rollout, step: RollbackStep) -> None:
    """Run one step, recording its result and duration; a failing step never stops the
    steps after it."""
    started = time.perf_counter()
    step.started_at = clock.now()
    try:
        step.detail = _execute(rollout, step)
        step.status = StepStatus.OK
    except StepSkipped as exc:
        step.status, step.detail = StepStatus.SKIPPED, str(exc)
    except (subprocess.TimeoutExpired, httpx.TimeoutException):
        step.status = StepStatus.TIMED_OUT
        step.detail = f"timed out after {clock.scaled(step.timeout_s).total_seconds():g}s"
    except Exception as exc:
        step.status, step.detail = StepStatus.FAILED, f"{type(exc).__name__}: {exc}"[:1000]
    step.duration_ms = round((time.perf_counter() - started) * 1000)
    step.finished_at = clock.now()
    step.save()
    rollout.save(update_fields=["weight", "incident_report"])
    log = logger.info if step.status in (StepStatus.OK, StepStatus.SKIPPED) else logger.error
    log(
        "rollback_step",
        rollout=rollout.pk,
        step=step.name,
        status=step.status,
        detail=step.detail,
        duration_ms=step.duration_ms,
    )


def rollback_continue(rollout_id: int) -> str:
    """Run the rollback steps that are due; finish the rollback when none are left."""
    now = clock.now()
    with transaction.atomic():
        rollout = (
            Rollout.objects.select_for_update(skip_locked=True)
            .filter(pk=rollout_id, state=RolloutState.ROLLING_BACK)
            .first()
        )
        if rollout is None:
            return "not rolling back (or busy)"
        rollback = rollout.rollback
        for step in rollback.steps.filter(status=StepStatus.PENDING):
            if step.not_before and step.not_before > now:
                return "waiting"
            _run_step(rollout, step)
        failed = rollback.steps.filter(status__in=[StepStatus.FAILED, StepStatus.TIMED_OUT])
        rollback.finished_at = clock.now()
        rollback.verify_at = rollback.finished_at + clock.scaled(VERIFY_AFTER_S)
        rollback.save()
        rollout.state = RolloutState.ABORTED if failed.exists() else RolloutState.ROLLED_BACK
        rollout.ended_at = rollback.finished_at
        rollout.incident_report = incident_report(rollout)
        _save(rollout)
        due = rollback.finished_at + clock.scaled(ACTIONS_DUE_S)
        PostRollbackAction.objects.bulk_create(
            PostRollbackAction(rollout=rollout, kind=kind, due_at=due)
            for kind in PostRollbackKind.values
        )
        _audit(rollout, "rolled_back", failed_steps=[s.name for s in failed])
    return rollout.state


def rollback_verify(rollout_id: int) -> dict[str, Any] | None:
    """Ten minutes after a rollback: stable's error rate < 1%, p95 < 250 ms, and no
    incident still open."""
    with transaction.atomic():
        rollback = (
            Rollback.objects.select_for_update(skip_locked=True)
            .filter(rollout_id=rollout_id, verified_at=None)
            .first()
        )
        if rollback is None or rollback.finished_at is None:
            return None
        stats = stable_window(
            rollback.rollout.service,
            rollback.finished_at,
            minutes=max(1, round(clock.scaled(VERIFY_AFTER_S).total_seconds() / 60)),
        )
        error_rate, p95 = stats.error_rate, stats.quantile(0.95)
        others = other_open_incidents(rollback.rollout)
        enough = stats.requests >= settings.CANARY_MIN_REQUESTS
        checks: dict[str, dict[str, Any]] = {
            "error_rate": {
                "value": error_rate,
                "limit": 0.01,
                "ok": enough and error_rate is not None and error_rate < 0.01,
            },
            "p95_ms": {"value": p95, "limit": 250, "ok": p95 is not None and p95 < 250},
            "active_incidents": {"value": others, "ok": others == 0},
        }
        outcome = (
            "passed"
            if all(c["ok"] for c in checks.values())
            else ("inconclusive" if not enough else "failed")
        )
        rollback.verification = {"result": outcome, "requests": stats.requests, "checks": checks}
        incident_update_for_rollout(
            rollback.rollout,
            verified=outcome == "passed",
            detail=", ".join(name for name, check in checks.items() if not check["ok"]),
        )
        rollback.verified_at = clock.now()
        rollback.save()
        _audit(rollback.rollout, "rollback_verified", result=outcome)
        return rollback.verification


def tick() -> dict[str, int]:
    """One engine tick over every active rollout; safe to run twice at once: live rollouts
    are locked together (SKIP LOCKED), so a second tick finds nothing to do."""
    counts = {
        "checked": 0,
        "advanced": 0,
        "promoted": 0,
        "paused": 0,
        "rolled_back": 0,
        "rollback_steps": 0,
        "verified": 0,
    }
    with transaction.atomic():
        rollouts = list(
            Rollout.objects.select_for_update(skip_locked=True).filter(
                state__in=[RolloutState.RUNNING, RolloutState.MONITORING]
            )
        )
        now = clock.now()
        data = prepare(rollouts, now)
        quiet = []
        for rollout in rollouts:
            outcome = _decide(rollout, now, data)
            counts["checked"] += 1
            if outcome == "checked":
                quiet.append(rollout)
            elif outcome in counts:
                counts[outcome] += 1
        data.flush()
        # An update, not save(): a verdict every tick is not a change worth a history row.
        update_rows(quiet, ["last_analysis"])
    rolling = Rollout.objects.filter(state=RolloutState.ROLLING_BACK)
    for rollout_id in rolling.values_list("pk", flat=True):
        rollback_continue(rollout_id)
        counts["rollback_steps"] += 1
    due = Rollback.objects.filter(verified_at=None, verify_at__lte=clock.now())
    for rollout_id in due.values_list("rollout_id", flat=True):
        counts["verified"] += rollback_verify(rollout_id) is not None
    return counts


def _decide(rollout: Rollout, now: datetime, data: TickData) -> str:
    """Act on one locked rollout's verdict; transitions run in a savepoint, so a failure
    on one rollout is logged and leaves the others to this tick."""
    decision_point = now >= rollout.phase_ends_at
    result = analyse(rollout, now, data, validate=decision_point)
    rollout.last_analysis = result.as_json()
    if result.action == "none" and not decision_point:
        return "checked"
    try:
        with transaction.atomic():
            return _transition(rollout, now, result)
    except Exception:
        logger.exception("tick_failed", rollout=rollout.pk)
        return "checked"


def _transition(rollout: Rollout, now: datetime, result: Analysis) -> str:
    if result.action == "rollback":
        _start_rollback(
            rollout,
            mode=RollbackMode.INSTANT,
            reason=result.reason,
            trigger=f"rule {result.rule}",
        )
        _continue_in_background(rollout)
        return "rolled_back"
    if result.action == "pause":
        _pause(rollout, result.reason)
        summary = f"{rollout.service} {rollout.version} paused: {result.reason}"
        transaction.on_commit(
            lambda: alert_quietly(
                summary=summary,
                source=f"canary-portal/{rollout.service}",
                severity="warning",
                details={"rule": result.rule, "rollout": rollout.pk},
            )
        )
        return "paused"
    if result.validation_passed:
        if rollout.state == RolloutState.MONITORING:
            if rollout.auto_promote:
                _promote(rollout, None, "auto")
                return "promoted"
        else:
            _advance(rollout, now)
            return "advanced"
    elif result.inconclusive:
        return _lacking_data(rollout, now)
    return "checked"


def _lacking_data(rollout: Rollout, now: datetime) -> str:
    """A phase without enough data is extended once, then paused for a steward."""
    phase = rollout.phases.get(index=rollout.phase_index)
    if not phase.extended:
        phase.extended = True
        phase.save(update_fields=["extended"])
        rollout.phase_ends_at = now + timedelta(seconds=phase.duration_s)
        _save(rollout)
        _audit(rollout, "phase_extended", phase=phase.index, reason="insufficient data")
        return "checked"
    _pause(rollout, "Insufficient data after one extension: a steward decides.")
    return "paused"


def _advance(rollout: Rollout, now: datetime) -> None:
    rollout.phases.filter(index=rollout.phase_index).update(
        ended_at=now, verdict=PhaseVerdict.PASSED
    )
    nxt = rollout.phases.get(index=rollout.phase_index + 1)
    nxt.started_at = now
    nxt.save(update_fields=["started_at"])
    rollout.phase_index, rollout.weight = nxt.index, nxt.weight
    rollout.phase_started_at = now
    rollout.phase_ends_at = now + timedelta(seconds=nxt.duration_s)
    if nxt.weight >= 100:
        rollout.state = RolloutState.MONITORING
    traffic_adapter().set_weight(rollout.service, rollout.weight)
    _save(rollout)
    _audit(rollout, "advanced", phase=nxt.index)


def actions_remind_overdue() -> int:
    """Mark overdue post-rollback actions as reminded, once, and tell whoever owns them."""
    now = clock.now()
    overdue = PostRollbackAction.objects.filter(done_at=None, reminded_at=None, due_at__lte=now)
    reminded = 0
    for action in overdue.select_related("rollout", "assignee"):
        claimed = PostRollbackAction.objects.filter(pk=action.pk, reminded_at=None).update(
            reminded_at=now
        )
        if claimed != 1:
            continue  # another worker got there first
        reminded += 1
        audit_append(
            action="post_rollback.overdue",
            obj=action,
            release_id=action.rollout.release_id,
            data={
                "kind": action.kind,
                "due_at": action.due_at.isoformat(),
                "assignee": action.assignee.get_username() if action.assignee else None,
            },
        )
        alert_quietly(
            summary=f"Overdue after the rollback of {action.rollout}: {action.get_kind_display()}",
            source="canary-portal/post-rollback",
            severity="warning",
            details={
                "due_at": action.due_at.isoformat(),
                "assignee": action.assignee.get_username() if action.assignee else None,
            },
        )
        logger.warning(
            "post_rollback_action_overdue",
            rollout=action.rollout_id,
            kind=action.kind,
            due_at=action.due_at.isoformat(),
        )
    return reminded


def action_close(*, action: PostRollbackAction, actor: Any, notes: str = "") -> PostRollbackAction:
    with transaction.atomic():
        action = PostRollbackAction.objects.select_for_update().get(pk=action.pk)
        if action.done_at is not None:
            raise Conflict("This action is already done.")
        action.done_at, action.done_by_name = clock.now(), actor.get_username()
        action.notes = notes or action.notes
        action._history_user = actor  # type: ignore[attr-defined]
        action.save()
        audit_append(
            action="post_rollback.done",
            actor=actor,
            obj=action,
            release_id=action.rollout.release_id,
            data={"kind": action.kind},
        )
    return action


def metrics_prune(*, batch: int = 10_000) -> int:
    """Delete raw samples older than METRICS_RETENTION_DAYS, a batch at a time."""
    cutoff = clock.now() - timedelta(days=settings.METRICS_RETENTION_DAYS)
    deleted = 0
    while True:
        ids = list(MetricSample.objects.filter(end__lt=cutoff).values_list("pk", flat=True)[:batch])
        if not ids:
            return deleted
        deleted += MetricSample.objects.filter(pk__in=ids).delete()[0]
