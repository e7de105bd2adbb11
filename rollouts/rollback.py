"""The guide's rollback steps, as a registry of small step classes, and how a worker runs
one: claim, act, record.

A step is claimed first (`UPDATE ... SET status = 'running' WHERE status = 'pending'`,
committed at once), acted on outside any transaction or lock, with its timeout enforced
(a command's process group is killed, a webhook or alert call is abandoned, a traffic
call is given its deadline), and its result recorded in a short transaction. A claim
lasts the step's timeout plus a grace period; past that, its worker died (SIGKILL, a
lost machine). Then an idempotent step (traffic, the report, the page: PagerDuty
dedupes on its key) runs again, but a hook (stop canary, clear cache: commands and
webhooks outside the portal) is recorded `interrupted` and never run twice: it may have
run, so on-call is told to check. Every attempt at a step passes the same idempotency
key, `rollback-<rollback id>-step-<position>`, as `CANARY_IDEMPOTENCY_KEY` in a
command's environment and as `idempotency_key` (and an `Idempotency-Key` header) to a
webhook, so a hook can dedupe too.
"""

from __future__ import annotations

import secrets
import subprocess
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

import httpx
import structlog
from django.db import transaction

from comms.alerts import alert_quietly, send_alert
from portal import clock
from rollouts.choices import FINISHED_STEPS, RollbackMode, StepName, StepStatus
from rollouts.deadline import run_command, with_deadline
from rollouts.models import Rollback, RollbackStep, Rollout, ServiceHooks
from rollouts.reports import incident_report
from rollouts.traffic.truth import route

logger = structlog.get_logger(__name__)

GRADUAL_WEIGHTS = [20, 10, 5, 1]
GRADUAL_STEP_S = 300
CLAIM_GRACE_S = 30


class StepSkipped(Exception):
    pass


@dataclass
class Context:
    rollout: Rollout
    step: RollbackStep
    timeout: float
    weight: int | None = None  # the canary's weight after the step, when it moved it
    report: str | None = None


class Step(ABC):
    name: ClassVar[str]
    timeout_s: ClassVar[int]
    # May a step whose worker died be run again? Only when running it twice is harmless.
    rerun_after_crash: ClassVar[bool] = True

    @abstractmethod
    def run(self, ctx: Context) -> str:
        """Do the step within `ctx.timeout`; the detail to record. Raise StepSkipped when
        there is nothing to do, anything else when it failed."""


STEPS: dict[str, type[Step]] = {}


def register(cls: type[Step]) -> type[Step]:
    STEPS[cls.name] = cls
    return cls


@register
class RouteToStable(Step):
    name, timeout_s = StepName.ROUTE_TO_STABLE, 30

    def run(self, ctx: Context) -> str:
        route(ctx.rollout.service, 0, canary_version="", timeout=ctx.timeout)
        ctx.weight = 0
        return "all traffic on stable"


@register
class SetWeight(Step):
    name, timeout_s = StepName.SET_WEIGHT, 30

    def run(self, ctx: Context) -> str:
        weight = ctx.step.weight
        assert weight is not None
        route(ctx.rollout.service, weight, timeout=ctx.timeout)
        ctx.weight = weight
        return f"canary weight {weight}%"


class Hook(Step):
    """A configured command (run without a shell) or webhook."""

    kind: ClassVar[str]
    rerun_after_crash = False

    def run(self, ctx: Context) -> str:
        rollout, key = ctx.rollout, ctx.step.idempotency_key
        hooks = ServiceHooks.objects.filter(service=rollout.service).first()
        command = getattr(hooks, f"{self.kind}_command", "") if hooks else ""
        webhook = getattr(hooks, f"{self.kind}_webhook", "") if hooks else ""
        if not command and not webhook:
            raise StepSkipped(
                f"no {self.kind.replace('_', ' ')} command or webhook configured for "
                f"{rollout.service}"
            )
        if command:
            return run_command(command, ctx.timeout, key)
        payload = {
            "service": rollout.service,
            "version": rollout.version,
            "rollout": rollout.pk,
            "step": ctx.step.name,
            "idempotency_key": key,
        }

        def post() -> httpx.Response:
            return httpx.post(
                webhook, json=payload, headers={"Idempotency-Key": key}, timeout=ctx.timeout
            )

        response = with_deadline(post, ctx.timeout)
        response.raise_for_status()
        return f"POST {webhook} → {response.status_code}"


@register
class StopCanary(Hook):
    name, timeout_s, kind = StepName.STOP_CANARY, 60, "stop"


@register
class ClearCanaryCache(Hook):
    name, timeout_s, kind = StepName.CLEAR_CANARY_CACHE, 30, "clear_cache"


@register
class NotifyOncall(Step):
    # PagerDuty dedupes on the rollout's key: a second page beats a missing one.
    name, timeout_s = StepName.NOTIFY_ONCALL, 30

    def run(self, ctx: Context) -> str:
        rollout, rollback = ctx.rollout, ctx.rollout.rollback
        deliveries = with_deadline(
            lambda: send_alert(
                summary=f"Rollback of {rollout.service} {rollout.version}: {rollback.reason}",
                source=f"canary-portal/{rollout.service}",
                severity="critical",
                dedup_key=f"rollout-{rollout.pk}",
                details={
                    "trigger": rollback.trigger,
                    "weight": rollback.from_weight,
                    "rollout": rollout.pk,
                },
            ),
            ctx.timeout,
        )
        summary = ", ".join(f"{d.channel} {d.status}" for d in deliveries)
        if all(d.status == "skipped" for d in deliveries):
            raise StepSkipped(f"no alert channel configured ({summary})")
        if any(d.status == "failed" for d in deliveries):
            raise RuntimeError(
                summary + ": " + "; ".join(d.detail for d in deliveries if d.status == "failed")
            )
        return summary


@register
class IncidentReport(Step):
    name, timeout_s = StepName.INCIDENT_REPORT, 30

    def run(self, ctx: Context) -> str:
        ctx.report = incident_report(ctx.rollout)
        return "incident report written"


INSTANT = [
    StepName.ROUTE_TO_STABLE,
    StepName.STOP_CANARY,
    StepName.CLEAR_CANARY_CACHE,
    StepName.NOTIFY_ONCALL,
    StepName.INCIDENT_REPORT,
]


def timeout_of(step: RollbackStep) -> float:
    return clock.scaled(step.timeout_s).total_seconds()


def _claim_fields(step: RollbackStep, now: datetime, token: str) -> dict[str, Any]:
    expires = now + timedelta(seconds=timeout_of(step) + CLAIM_GRACE_S)
    return {
        "status": StepStatus.RUNNING,
        "claim_token": token,
        "claimed_at": now,
        "claim_expires_at": expires,
    }


def plan_steps(rollback: Rollback, now: datetime) -> tuple[RollbackStep, str]:
    """Write the rollback's steps; the first (all traffic to stable, or for a gradual
    rollback the first lower weight) comes back claimed, with its claim token, for the
    caller to run as soon as its transaction commits."""
    rows: list[tuple[str, int | None, datetime]] = []
    if rollback.mode == RollbackMode.GRADUAL:
        lower = [w for w in GRADUAL_WEIGHTS if w < rollback.from_weight]
        for n, weight in enumerate(lower):
            rows.append((StepName.SET_WEIGHT, weight, now + n * clock.scaled(GRADUAL_STEP_S)))
        last = now + len(rows) * clock.scaled(GRADUAL_STEP_S)
        rows += [(name, None, last) for name in INSTANT]
    else:
        rows = [(name, None, now) for name in INSTANT]
    steps = [
        RollbackStep(
            rollback=rollback,
            position=i,
            name=name,
            weight=weight,
            timeout_s=STEPS[name].timeout_s,
            not_before=not_before,
        )
        for i, (name, weight, not_before) in enumerate(rows)
    ]
    token = secrets.token_hex(8)
    for field, value in _claim_fields(steps[0], now, token).items():
        setattr(steps[0], field, value)
    RollbackStep.objects.bulk_create(steps)
    return steps[0], token


@dataclass
class Attempt:  # a step run, not yet recorded
    status: str
    detail: str
    started_at: datetime
    duration_ms: int
    ctx: Context


def attempt(rollout: Rollout, step: RollbackStep) -> Attempt:
    ctx = Context(rollout, step, timeout_of(step))
    started, started_at = time.perf_counter(), clock.now()
    try:
        detail, status = STEPS[step.name]().run(ctx), StepStatus.OK
    except StepSkipped as exc:
        detail, status = str(exc), StepStatus.SKIPPED
    except (subprocess.TimeoutExpired, httpx.TimeoutException, TimeoutError):
        detail, status = f"timed out after {ctx.timeout:g}s", StepStatus.TIMED_OUT
    except Exception as exc:
        detail, status = f"{type(exc).__name__}: {exc}"[:1000], StepStatus.FAILED
    duration_ms = round((time.perf_counter() - started) * 1000)
    return Attempt(status, detail, started_at, duration_ms, ctx)


def run_claimed(
    rollout: Rollout, step: RollbackStep, token: str, done: Attempt | None = None
) -> str:
    """Act on a step this worker has claimed (or take `done`, the attempt made before the
    claim: the kill switch's route to stable), then record what happened; a failing step
    never stops the steps after it."""
    ran = done or attempt(rollout, step)
    ctx, status, detail = ran.ctx, ran.status, ran.detail
    with transaction.atomic():
        RollbackStep.objects.filter(pk=step.pk, claim_token=token).update(
            status=status,
            detail=detail,
            started_at=ran.started_at,
            finished_at=clock.now(),
            duration_ms=ran.duration_ms,
        )
        changes: dict[str, Any] = {}
        if ctx.weight is not None:
            changes["weight"] = rollout.weight = ctx.weight
        if ctx.report is not None:
            changes["incident_report"] = rollout.incident_report = ctx.report
        if changes:
            Rollout.objects.filter(pk=rollout.pk).update(**changes)
    log = logger.info if status in (StepStatus.OK, StepStatus.SKIPPED) else logger.error
    log(
        "rollback_step",
        rollout=rollout.pk,
        step=str(step.name),
        status=str(status),
        detail=detail,
        duration_ms=ran.duration_ms,
    )
    return status


def _expired(rollout: Rollout, step: RollbackStep, now: datetime) -> None:
    """The worker that claimed `step` died before recording it."""
    stale = RollbackStep.objects.filter(
        pk=step.pk, status=StepStatus.RUNNING, claim_token=step.claim_token
    )
    if STEPS[step.name].rerun_after_crash:
        stale.update(status=StepStatus.PENDING, claim_token="")
        return
    detail = (
        f"interrupted: the worker running it stopped before recording a result (claimed "
        f"{step.claimed_at:%H:%M:%S}); not run again, as it may have run. Check "
        f"{rollout.service} by hand (idempotency key {step.idempotency_key})."
    )
    if stale.update(status=StepStatus.INTERRUPTED, detail=detail, finished_at=now) == 1:
        logger.error("rollback_step", rollout=rollout.pk, step=str(step.name), status="interrupted")
        alert_quietly(
            summary=f"Rollback of {rollout.service} {rollout.version}: {step.name} {detail}",
            source=f"canary-portal/{rollout.service}",
            severity="critical",
            details={"rollout": rollout.pk, "step": step.name, "key": step.idempotency_key},
        )


def run_next(rollout: Rollout) -> str:
    """Claim and run the rollback's next step if it is due: `ran`, `waiting` (not yet
    due), `busy` (another worker has it) or `done` (every step has a result)."""
    step = (
        RollbackStep.objects.filter(rollback__rollout=rollout)
        .exclude(status__in=FINISHED_STEPS)
        .order_by("position")
        .first()
    )
    if step is None:
        return "done"
    now = clock.now()
    if step.status == StepStatus.RUNNING:
        if step.claim_expires_at and step.claim_expires_at > now:
            return "busy"
        _expired(rollout, step, now)
        return "ran"
    if step.not_before and step.not_before > now:
        return "waiting"
    token = secrets.token_hex(8)
    claimed = RollbackStep.objects.filter(pk=step.pk, status=StepStatus.PENDING).update(
        **_claim_fields(step, now, token)
    )
    if claimed != 1:
        return "busy"
    run_claimed(rollout, step, token)
    return "ran"
