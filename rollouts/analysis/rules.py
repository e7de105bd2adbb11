"""Abort rules, evaluated as Prometheus evaluates alerting rules.

Each evaluation (each engine tick) computes the rule's metric over its trailing window
(default 1 minute) of canary samples. Condition true: the rule is `pending` from that
moment and `firing` once it has held for the rule's duration (`for:`); condition false:
`ok`, and the timer restarts. A window with too few requests (CANARY_MIN_REQUESTS) is
`no_data`: never a pass. A no-data evaluation keeps a pending timer running (nothing
showed that the condition cleared) but cannot make the rule fire by itself; the next
evaluation with data decides: still true with the duration reached → `firing`; false →
`ok`. Rules act once, when they start firing (a steward who resumes a paused rollout is
not paused again by the same firing rule).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from portal import clock
from portal.bulk import update_rows
from rollouts.choices import RuleStatus
from rollouts.metrics.base import MetricsSource, WindowStats, metrics_source
from rollouts.models import AbortRule, ConversionTarget, Rollout, RuleState

MIN_PAYMENTS = 20


def rule_value(
    rule: AbortRule, stats: WindowStats, targets: list[ConversionTarget]
) -> float | None:
    """The rule's metric over the window, or None when the window has too little data
    (or the source could not be asked)."""
    if stats.unavailable:
        return None
    metric = rule.metric
    if metric == AbortRule.Metric.COMPLAINTS:
        return float(stats.complaints)
    if metric in (AbortRule.Metric.DB_CONNECTIONS, AbortRule.Metric.MEMORY):
        return stats.system.get(metric)
    if metric == AbortRule.Metric.PAYMENT_FAILURE:
        attempted = stats.business.get("payments_attempted", 0)
        if attempted < MIN_PAYMENTS:
            return None
        return stats.business.get("payments_failed", 0) / attempted
    if metric == AbortRule.Metric.CONVERSION_DROP:
        drops = [
            (target.baseline - rate) / target.baseline
            for target in targets
            if (rate := stats.conversion_rate(target.path)) is not None and target.baseline > 0
        ]
        return max(drops) if drops else None
    if not stats.enough:
        return None
    if metric == AbortRule.Metric.ERROR_RATE:
        return stats.error_rate
    if metric == AbortRule.Metric.STATUS_5XX:
        return stats.rate(stats.status_5xx)
    if metric == AbortRule.Metric.P95_LATENCY:
        return stats.quantile(0.95)
    raise ValueError(f"unknown metric {metric}")


def next_state(
    state: str,
    since: datetime | None,
    condition: bool | None,
    now: datetime,
    duration: timedelta,
) -> tuple[str, datetime | None]:
    """One Prometheus-style evaluation; `condition` None means no data."""
    if condition is None:
        return RuleStatus.NO_DATA, since
    if not condition:
        return RuleStatus.OK, None
    since = since or now
    return (RuleStatus.FIRING if now - since >= duration else RuleStatus.PENDING), since


@dataclass
class TickData:
    """What the rules need for a set of rollouts, read in a few queries: the rules and
    conversion targets, every rule window of every rollout, and the rules' states."""

    now: datetime
    rules: list[AbortRule]
    targets: list[ConversionTarget]
    windows: dict[int, dict[int, WindowStats]] = field(default_factory=dict)
    states: dict[int, dict[int, RuleState]] = field(default_factory=dict)
    changed: list[RuleState] = field(default_factory=list)

    def flush(self) -> None:
        """Write the rule states evaluated since the last flush."""
        fresh = [state for state in self.changed if state.pk is None]
        stored = [state for state in self.changed if state.pk is not None]
        RuleState.objects.bulk_create(fresh, batch_size=1000)
        update_rows(stored, ["state", "since", "fired_at", "value", "evaluated_at"])
        self.changed = []


def window_s(seconds: int) -> int:
    return max(1, round(clock.scaled(seconds).total_seconds()))


def prepare(
    rollouts: list[Rollout], now: datetime, source: MetricsSource | None = None
) -> TickData:
    data = TickData(
        now, list(AbortRule.objects.filter(is_active=True)), list(ConversionTarget.objects.all())
    )
    if not rollouts:
        return data
    counting = {window_s(r.window_s) for r in data.rules if r.metric == AbortRule.Metric.COMPLAINTS}
    detailed = {window_s(r.window_s) for r in data.rules} - counting
    data.windows = (source or metrics_source()).rule_windows(rollouts, now, detailed, counting)
    data.states = {rollout.pk: {} for rollout in rollouts}
    for state in RuleState.objects.filter(rollout__in=rollouts):
        data.states[state.rollout_id][state.rule_id] = state
    return data


def evaluate_rules(rollout: Rollout, data: TickData) -> list[tuple[AbortRule, RuleState, bool]]:
    """Evaluate every active rule for the rollout; returns (rule, state, started firing).
    The new states are kept in `data` until `data.flush()`."""
    now, results = data.now, []
    for rule in data.rules:
        stats = data.windows[rollout.pk][window_s(rule.window_s)]
        value = rule_value(rule, stats, data.targets)
        condition = (
            None
            if value is None
            else (value >= rule.threshold if rule.operator == "ge" else value > rule.threshold)
        )
        state = data.states[rollout.pk].get(rule.pk) or RuleState(rollout=rollout, rule=rule)
        was_firing = state.state == RuleStatus.FIRING
        state.state, state.since = next_state(
            state.state, state.since, condition, now, clock.scaled(rule.duration_s)
        )
        started = state.state == RuleStatus.FIRING and not was_firing
        if started:
            state.fired_at = now
        state.value, state.evaluated_at = value, now
        data.changed.append(state)
        results.append((rule, state, started))
    return results
