"""Every phase ends in a decision.

At a phase's deadline (its duration from when its weight was confirmed, or from a resume)
the engine validates it once, and:
- validation passed → the next phase (`lifecycle.advance`) or, at the end of the monitoring
  period, the promotion (the engine does both);
- validation failed (a gate with data missed its limit) → paused, kind `validation_failed`,
  or rolled back where the plan says `on_failed_validation: rollback`. A failing gate is
  not retried past the deadline: the gates read the whole phase, so a later look at the
  same window would only postpone the decision;
- inconclusive (too few requests, a metric with no data, the source unavailable) → the
  phase is extended once by its full duration; inconclusive again at the new deadline →
  paused, kind `inconclusive` (or `metrics_unavailable` when the source could not be asked).

Between deadlines, two things decide at any tick: an abort rule with action pause that
starts firing (kind `rule`), and the metrics source unreachable for a whole rule duration
(kind `metrics_unavailable`: every window the traffic and latency rules read came back
`unavailable` at every tick for the longest active rule duration).

Every pause or rollback is audited and alerted to whoever owns the metrics involved
(admin → Alert routes: latency and errors → on-call, margin and payments → finance); a
metric with no route alerts on-call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from comms.alerts import alert_members_quietly, alert_quietly
from portal import clock
from rollouts.analysis.explain import culprits, failed_detail, missing_detail
from rollouts.analysis.judge import Analysis
from rollouts.analysis.rules import TickData, window_s
from rollouts.analysis.validation import plan_of
from rollouts.choices import Audience, Decision, Event, OnFailedValidation, PauseKind, RollbackMode
from rollouts.lifecycle import audit, continue_in_background, pause, save, start_rollback
from rollouts.models import AbortRule, AlertRoute, Rollout
from rollouts.rollback import run_claimed

Act = Callable[[], Any]
PAUSE, ROLLBACK, EXTEND = "pause", "rollback", "extend"


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Decided:
    """What the engine does with one rollout: pause, roll back or extend its phase."""

    action: str
    kind: str
    detail: str
    metrics: tuple[str, ...] = ()
    stakeholders: str = ""


def decide(
    rollout: Rollout, result: Analysis, data: TickData, now: datetime, validated: bool
) -> Decided | None:
    """The decision for a live rollout, or None (advance, promote or wait: the engine's)."""
    if result.action == Decision.PAUSE:
        rule = next(rule for rule in data.rules if rule.name == result.rule)
        return Decided(PAUSE, PauseKind.RULE, result.reason, (rule.metric,), rule.stakeholders)
    down = source_down(rollout, data, now)
    if down is not None or not validated or result.validation_passed:
        return down
    gates = result.inputs.get("gates", {})
    if not result.inconclusive:
        on_failed = plan_of(rollout).on_failed_validation
        action = ROLLBACK if on_failed == OnFailedValidation.ROLLBACK else PAUSE
        metrics = tuple(culprits(gates, inconclusive=False))
        return Decided(action, PauseKind.VALIDATION_FAILED, failed_detail(gates), metrics)
    source_error = result.inputs.get("source_error")
    detail = missing_detail(gates, source_error)
    if not rollout.phases.get(index=rollout.phase_index).extended:
        return Decided(EXTEND, PauseKind.INCONCLUSIVE, detail)
    if source_error:
        return Decided(PAUSE, PauseKind.METRICS_UNAVAILABLE, detail, ("metrics_source",))
    metrics = tuple(culprits(gates, inconclusive=True))
    return Decided(PAUSE, PauseKind.INCONCLUSIVE, f"{detail}, after one extension", metrics)


def source_down(rollout: Rollout, data: TickData, now: datetime) -> Decided | None:
    """Track how long the metrics source has been unreachable for this rollout (on the
    row, `metrics_down_since`); a pause once that lasts the longest rule duration."""
    rules = [rule for rule in data.rules if rule.metric != AbortRule.Metric.COMPLAINTS]
    windows = data.windows.get(rollout.pk, {})
    read = [
        windows[window_s(rule.window_s)] for rule in rules if window_s(rule.window_s) in windows
    ]
    if not read or not all(stats.unavailable for stats in read):
        rollout.metrics_down_since = None
        return None
    since = rollout.metrics_down_since = rollout.metrics_down_since or now
    longest = max((clock.scaled(rule.duration_s) for rule in data.rules), default=timedelta(0))
    if now - since < longest:
        return None
    error = next((stats.error for stats in read if stats.error), "no answer")
    detail = (
        f"the metrics source has been unreachable since {_iso(since)} "
        f"({round(longest.total_seconds())} s, the longest rule duration): {error}"
    )
    return Decided(PAUSE, PauseKind.METRICS_UNAVAILABLE, detail, ("metrics_source",))


def audiences_for(metrics: Iterable[str]) -> list[str]:
    """Who owns these metrics (admin → Alert routes); on-call for a metric with no route."""
    metrics = list(metrics) or ["metrics_source"]
    routes: dict[str, set[str]] = {}
    for metric, audience in AlertRoute.objects.filter(metric__in=metrics).values_list(
        "metric", "audience"
    ):
        routes.setdefault(metric, set()).add(audience)
    found = set().union(*(routes.get(metric, {Audience.ON_CALL}) for metric in metrics))
    return sorted(found)


def act(rollout: Rollout, now: datetime, decided: Decided) -> tuple[str, Act | None]:
    """Carry a decision out on a rollout whose row the caller holds; returns the tick's
    outcome and what to run after the commit (the router, the alerts)."""
    if decided.action == EXTEND:
        extend_phase(rollout, now, decided.detail)
        return "checked", None
    audiences = audiences_for(decided.metrics)
    if decided.action == ROLLBACK:
        reason = f"Validation failed at the phase's deadline: {decided.detail}"
        first, token = start_rollback(
            rollout, mode=RollbackMode.INSTANT, reason=reason, trigger="validation failed"
        )
        continue_in_background(rollout)
        # On-call hears of every rollback from its own step; the metrics' owners from here.
        others = [audience for audience in audiences if audience != Audience.ON_CALL]

        def roll_back() -> None:
            run_claimed(rollout, first, token)
            notify(rollout, "rolled back", decided, others)

        return "rolled_back", roll_back
    pause(rollout, decided.kind, decided.detail, alerted=audiences, metrics=list(decided.metrics))
    return "paused", lambda: notify(rollout, "paused", decided, audiences)


def extend_phase(rollout: Rollout, now: datetime, reason: str) -> None:
    """An inconclusive phase gets its full duration once more."""
    phase = rollout.phases.get(index=rollout.phase_index)
    phase.extended = True
    phase.save(update_fields=["extended"])
    rollout.phase_ends_at = now + timedelta(seconds=phase.duration_s)
    save(rollout)
    audit(rollout, Event.PHASE_EXTENDED, phase=phase.index, reason=reason)


def notify(rollout: Rollout, what: str, decided: Decided, audiences: list[str]) -> None:
    """After the commit: each audience on its channels; a failing one stops no other."""
    summary = (
        f"{rollout.service} {rollout.version} {what} at {rollout.weight}% "
        f"({decided.kind}): {decided.detail}"
    )
    details = {
        "rollout": rollout.pk,
        "kind": decided.kind,
        "metrics": ", ".join(decided.metrics) or "-",
    }
    if decided.stakeholders:
        details["stakeholders"] = decided.stakeholders
    for audience in audiences:
        if audience == Audience.ON_CALL:
            alert_quietly(
                summary=summary,
                source=f"canary-portal/{rollout.service}",
                severity="warning",
                details=details,
            )
        else:
            alert_members_quietly(role=audience, summary=summary, details=details)
