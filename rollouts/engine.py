"""The engine's tick: for each live rollout, read (its metrics, through the metrics
source), judge (`analysis.judge.analyse`: abort rules, then the phase's gates), decide
(`decisions`: every phase ends in one; rollback, pause, extend, advance, promote or
nothing) and act (a transition from `lifecycle`, then the router call and the alerts after
the commit). A paused rollout is still judged by its rollback rules. Then it carries every
rollback on (`rollback`: each due step claimed, run and recorded) and verifies finished ones.

Live rollouts are locked together (SKIP LOCKED) while they are judged, so two ticks at
once do the work once; the transaction holds no outside call. Rollback continuations run
in worker threads, one per rollout, and the tick waits for them only briefly
(`CANARY_ROLLBACK_WAIT_S`, default 1 s): a hook that hangs until its timeout holds up its
own rollback, never another rollout's tick.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import datetime
from typing import Any

import structlog
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, OuterRef, Subquery

from comms.services import incident_update_for_rollout, other_open_incidents
from portal import clock
from portal.bulk import update_rows
from rollouts.analysis.judge import Analysis, analyse
from rollouts.analysis.rules import TickData, prepare
from rollouts.analysis.validation import verification_checks
from rollouts.choices import (
    FAILED_STEPS,
    LIVE_STATES,
    Decision,
    Event,
    PromoteMode,
    RollbackMode,
    RolloutState,
    VerificationResult,
)
from rollouts.decisions import Decided, decide
from rollouts.decisions import act as decided_act
from rollouts.followups import actions_schedule
from rollouts.lifecycle import (
    advance,
    apply_phase_weight,
    audit,
    check,
    continue_in_background,
    promote,
    save,
    start_rollback,
)
from rollouts.models import Phase, Rollback, Rollout
from rollouts.reports import incident_report
from rollouts.rollback import run_claimed, run_next
from rollouts.traffic.base import push
from rollouts.traffic.truth import held_back, reconcile, route

logger = structlog.get_logger(__name__)

VERIFY_AFTER_S = 600
ACTIONS_DUE_S = 86_400

Act = Callable[[], Any]
_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="rollback")
_running: dict[int, Future[str]] = {}  # rollout id → its continuation in this process
_running_lock = threading.Lock()


def tick() -> dict[str, int]:
    """One engine tick over every active rollout; safe to run twice at once."""
    counts = dict.fromkeys(
        ("checked", "advanced", "promoted", "paused", "rolled_back", "rollback_steps"), 0
    )
    after: list[Act] = []
    with transaction.atomic():
        # Paused rollouts too: a paused canary still serves its weight, so its rollback
        # rules keep watching it (nothing else acts on it until a person resumes it).
        rollouts = list(
            Rollout.objects.select_for_update(skip_locked=True).filter(
                state__in=[RolloutState.RUNNING, RolloutState.MONITORING, RolloutState.PAUSED]
            )
        )
        now = clock.now()
        data = prepare(rollouts, now)
        # Judge every rollout first, then act: the transitions' audit events (and the
        # audit trail's lock) come last, just before the commit.
        verdicts = [(rollout, _judge(rollout, now, data)) for rollout in rollouts]
        data.flush()
        quiet = []
        for rollout, judged in verdicts:
            outcome = "checked" if judged is None else _act(rollout, now, *judged, after)
            counts["checked"] += 1
            if outcome == "checked":
                quiet.append(rollout)
            elif outcome in counts:
                counts[outcome] += 1
        # An update, not save(): a verdict every tick is not a change worth a history row.
        update_rows(quiet, ["last_analysis", "metrics_down_since"])
    for act in after:  # committed: router calls, first rollback steps, alerts
        act()
    counts["router_retries"] = reconcile() + catch_up()
    counts["rollback_steps"] = continue_rollbacks()
    due = Rollback.objects.filter(verified_at=None, verify_at__lte=clock.now())
    counts["verified"] = sum(
        rollback_verify(rollout_id) is not None
        for rollout_id in due.values_list("rollout_id", flat=True)
    )
    return counts


def _judge(
    rollout: Rollout, now: datetime, data: TickData
) -> tuple[Analysis, Decided | None] | None:
    """The rollout's verdict, kept on it, and the decision it leads to; None when there
    is nothing to do. A paused rollout is judged by its rollback rules only."""
    paused = rollout.state == RolloutState.PAUSED
    decision_point = not paused and now >= rollout.phase_ends_at
    result = analyse(rollout, now, data, validate=decision_point)
    rollout.last_analysis = result.as_json()
    if paused:
        return (result, None) if result.action == Decision.ROLLBACK else None
    decided = decide(rollout, result, data, now, validated=decision_point)
    if result.action == Decision.NONE and decided is None and not decision_point:
        return None
    return result, decided


def _act(
    rollout: Rollout, now: datetime, result: Analysis, decided: Decided | None, after: list[Act]
) -> str:
    """Act on one locked rollout's verdict; transitions run in a savepoint, so a failure
    on one rollout is logged and leaves the others to this tick."""
    try:
        with transaction.atomic():
            outcome, act = _transition(rollout, now, result, decided)
    except Exception:
        logger.exception("tick_failed", rollout=rollout.pk)
        return "checked"
    if act is not None:
        after.append(act)
    return outcome


def _transition(
    rollout: Rollout, now: datetime, result: Analysis, decided: Decided | None
) -> tuple[str, Act | None]:
    if result.action == Decision.ROLLBACK:
        first, token = start_rollback(
            rollout, mode=RollbackMode.INSTANT, reason=result.reason, trigger=f"rule {result.rule}"
        )
        continue_in_background(rollout)
        return "rolled_back", lambda: run_claimed(rollout, first, token)
    if decided is not None:
        return decided_act(rollout, now, decided)
    if result.validation_passed and _phase_weight_applied(rollout):
        if rollout.state == RolloutState.MONITORING:
            if rollout.auto_promote:
                promote(rollout, None, PromoteMode.AUTO)
                return "promoted", lambda: push(
                    rollout,
                    "the promotion",
                    lambda: route(rollout.service, 0, stable_version=rollout.version, promote=True),
                )
        else:
            advance(rollout, now)
            return "advanced", lambda: apply_phase_weight(rollout)
    return "checked", None


def _phase_weight_applied(rollout: Rollout) -> bool:
    """A phase counts once the router has confirmed its weight: until then, no advance."""
    return rollout.weight >= rollout.phases.get(index=rollout.phase_index).weight


def catch_up() -> int:
    """Retry the raises the routers have not confirmed (a new rollout's first weight, an
    advance), each once its router's backoff is over; how many were confirmed."""
    phase_weight = Phase.objects.filter(
        rollout=OuterRef("pk"), index=OuterRef("phase_index")
    ).values("weight")[:1]
    behind = Rollout.objects.filter(state__in=LIVE_STATES).annotate(wanted=Subquery(phase_weight))
    return sum(
        apply_phase_weight(rollout)
        for rollout in behind.filter(weight__lt=F("wanted"))
        if not held_back(rollout.service)
    )


def rollback_continue(rollout_id: int) -> str:
    """Run the rollback steps that are due, one claimed step at a time, holding no lock;
    finish the rollback when every step has a result."""
    rollout = (
        Rollout.objects.select_related("rollback")
        .filter(pk=rollout_id, state=RolloutState.ROLLING_BACK)
        .first()
    )
    if rollout is None:
        return "not rolling back"
    while (outcome := run_next(rollout)) == "ran":
        pass
    if outcome != "done":
        return outcome
    failed = rollout.rollback.steps.filter(status__in=FAILED_STEPS)
    finished = finish_rollback(rollout_id, list(failed.values_list("name", flat=True)))
    return finished.state if finished else "finished elsewhere"


def _continue_here(rollout_id: int) -> str:
    try:
        return rollback_continue(rollout_id)
    except Exception:
        logger.exception("rollback_continue_failed", rollout=rollout_id)
        return "failed"
    finally:
        connection.close()


def continue_rollbacks() -> int:
    """Carry on every rollback: in worker threads (each its own connection), waiting at
    most CANARY_ROLLBACK_WAIT_S for them; inline when called inside a transaction, whose
    rows other connections could not see."""
    ids = list(Rollout.objects.filter(state=RolloutState.ROLLING_BACK).values_list("pk", flat=True))
    if connection.in_atomic_block:
        for rollout_id in ids:
            rollback_continue(rollout_id)
        return len(ids)
    futures = []
    with _running_lock:
        for rollout_id in ids:
            running = _running.get(rollout_id)
            if running is None or running.done():
                _running[rollout_id] = running = _pool.submit(_continue_here, rollout_id)
            futures.append(running)
    wait(futures, timeout=settings.CANARY_ROLLBACK_WAIT_S)
    return len(ids)


def rollback_verify(rollout_id: int) -> dict[str, Any] | None:
    """Ten minutes after a rollback: stable's error rate and p95 under the plan's limits,
    and no incident still open."""
    with transaction.atomic():
        rollback = (
            Rollback.objects.select_for_update(skip_locked=True)
            .filter(rollout_id=rollout_id, verified_at=None)
            .first()
        )
        if rollback is None or rollback.finished_at is None:
            return None
        rollout = rollback.rollout
        rollback.verification = verification = verification_checks(
            rollout,
            rollback.finished_at,
            clock.scaled(VERIFY_AFTER_S).total_seconds(),
            other_open_incidents(rollout),
        )
        checks = verification["checks"]
        incident_update_for_rollout(
            rollout,
            verified=verification["result"] == VerificationResult.PASSED,
            detail=", ".join(name for name, check in checks.items() if not check["ok"]),
        )
        rollback.verified_at = clock.now()
        rollback.save()
        audit(rollout, Event.ROLLBACK_VERIFIED, result=verification["result"])
        return verification


def finish_rollback(rollout_id: int, failed_steps: list[str]) -> Rollout | None:
    """Every step has a result: the rollout is rolled back (or aborted, when a step failed),
    its verification is scheduled and the guide's follow-ups are due within 24 h."""
    with transaction.atomic():
        rollout = Rollout.objects.select_for_update().filter(pk=rollout_id).first()
        if rollout is None or rollout.state != RolloutState.ROLLING_BACK:
            return None  # another worker finished it
        to = RolloutState.ABORTED if failed_steps else RolloutState.ROLLED_BACK
        check(rollout, to, "finish its rollback")
        rollback = rollout.rollback
        rollback.finished_at = clock.now()
        rollback.verify_at = rollback.finished_at + clock.scaled(VERIFY_AFTER_S)
        rollback.save()
        rollout.state, rollout.ended_at = to, rollback.finished_at
        rollout.incident_report = incident_report(rollout)
        save(rollout)
        due = rollback.finished_at + clock.scaled(ACTIONS_DUE_S)
        actions_schedule(rollout, due)
        audit(rollout, Event.ROLLED_BACK, failed_steps=failed_steps)
    return rollout
