"""The engine's one analysis function: from stored metric samples to a verdict.

`analyse(rollout, now)` evaluates every active abort rule and the phase's validation
gates and returns what the engine acts on: a verdict (healthy/warning/failing/
inconclusive), an action (none/pause/rollback), whether the phase may advance, and
every input it used (values, thresholds, windows), so that the rollout page and the
incident report can say exactly why.

Abort rules follow Prometheus alerting rules. Each evaluation (each engine tick)
computes the rule's metric over its trailing window (default 1 minute) of canary
samples. Condition true: the rule is `pending` from that moment and `firing` once it
has held for the rule's duration (`for:`); condition false: `ok`, and the timer
restarts. A window with too few requests (CANARY_MIN_REQUESTS) is `no_data`: never a
pass. A no-data evaluation keeps a pending timer running (nothing showed that the
condition cleared) but cannot make the rule fire by itself; the next evaluation with
data decides: still true with the duration reached → `firing`; false → `ok`. Rules act
once, when they start firing (a steward who resumes a paused rollout is not paused
again by the same firing rule).

Phase validation (the guide's gates): since the phase began, the canary served enough
requests, its error rate ≤ 0.5%, its p95 ≤ stable's p95 + 10% (the degradation
budget; without stable traffic, the stable baseline of the hour before the rollout),
and its throughput ≥ 95% of what its weight should bring (stable's rate x w/(100-w)).

Percentiles come from merged latency histograms, estimated as Prometheus'
`histogram_quantile` does: find the bucket where the cumulative count reaches
q x total and interpolate linearly between its bounds (the lowest bucket starts at 0);
a quantile in the `+Inf` bucket is the highest finite bound; no requests → no value.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Sum

from portal import clock
from portal.bulk import update_rows
from rollouts.choices import Variant, Verdict
from rollouts.models import (
    AbortRule,
    ComplaintReport,
    ConversionTarget,
    MetricSample,
    Rollout,
    RuleState,
)

# Fewer attempts than this make a conversion rate noise, not a measurement.
MIN_CONVERSION_ATTEMPTS = 100
MIN_PAYMENTS = 20


def histogram_quantile(q: float, bounds: list[float], counts: list[int]) -> float | None:
    total = sum(counts)
    if total <= 0:
        return None
    rank = q * total
    cumulative = 0.0
    finite = [b for b in bounds if not math.isinf(b)]
    for index, (upper, count) in enumerate(zip(bounds, counts, strict=True)):
        if cumulative + count >= rank and count > 0:
            if math.isinf(upper):
                return finite[-1] if finite else None
            lower = bounds[index - 1] if index > 0 else 0.0
            return lower + (upper - lower) * (rank - cumulative) / count
        cumulative += count
    return finite[-1] if finite else None


@dataclass
class WindowStats:
    start: datetime
    end: datetime
    requests: int = 0
    errors: int = 0
    status_4xx: int = 0
    status_5xx: int = 0
    complaints: int = 0
    bounds: list[float] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    conversions: dict[str, list[int]] = field(default_factory=dict)
    business: dict[str, float] = field(default_factory=dict)
    system: dict[str, float] = field(default_factory=dict)

    @property
    def enough(self) -> bool:
        return self.requests >= settings.CANARY_MIN_REQUESTS

    def rate(self, count: int) -> float | None:
        return count / self.requests if self.requests else None

    @property
    def error_rate(self) -> float | None:
        return self.rate(self.errors)

    @property
    def rps(self) -> float:
        return self.requests / max(1.0, (self.end - self.start).total_seconds())

    def quantile(self, q: float) -> float | None:
        return histogram_quantile(q, self.bounds, self.counts) if self.counts else None

    def conversion_rate(self, path: str) -> float | None:
        attempts, successes = self.conversions.get(path, (0, 0))
        return successes / attempts if attempts >= MIN_CONVERSION_ATTEMPTS else None


def window_stats(
    *,
    service: str,
    variant: str,
    start: datetime,
    end: datetime,
    version: str | None = None,
    detail: bool = True,
) -> WindowStats:
    """Totals of the samples ending in (start, end]; with `detail`, merged histograms,
    conversions, business sums and system averages too (all from one query)."""
    samples = MetricSample.objects.filter(
        service=service, variant=variant, end__gt=start, end__lte=end
    )
    if version:
        samples = samples.filter(version=version)
    stats = WindowStats(start, end)
    if version:
        stats.complaints += (
            ComplaintReport.objects.filter(
                service=service, version=version, at__gt=start, at__lte=end
            ).aggregate(n=Sum("count"))["n"]
            or 0
        )
    if not detail:
        totals = samples.aggregate(
            r=Sum("requests"),
            e=Sum("errors"),
            c4=Sum("status_4xx"),
            c5=Sum("status_5xx"),
            cp=Sum("complaints"),
        )
        stats.requests, stats.errors = totals["r"] or 0, totals["e"] or 0
        stats.status_4xx, stats.status_5xx = totals["c4"] or 0, totals["c5"] or 0
        stats.complaints += totals["cp"] or 0
        return stats
    rows = samples.values_list(*_DETAIL_FIELDS)
    _accumulate(stats, rows)
    return stats


_DETAIL_FIELDS = (
    "requests",
    "errors",
    "status_4xx",
    "status_5xx",
    "complaints",
    "latency_le",
    "latency_counts",
    "conversions",
    "business",
    "system",
)


def _accumulate(stats: WindowStats, rows: Iterable[tuple[Any, ...]]) -> None:
    """Add sample rows (the _DETAIL_FIELDS, in order) into the window's figures."""
    merged: dict[float, int] = defaultdict(int)
    conversions: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    business: dict[str, float] = defaultdict(float)
    system_sum: dict[str, float] = defaultdict(float)
    system_n: dict[str, int] = defaultdict(int)
    for requests, errors, c4, c5, complaints, bounds, counts, conv, biz, system in rows:
        stats.requests += requests
        stats.errors += errors
        stats.status_4xx += c4
        stats.status_5xx += c5
        stats.complaints += complaints
        for bound, count in zip(bounds or [], counts or [], strict=True):
            merged[math.inf if bound == "+Inf" else float(bound)] += count
        for path, block in (conv or {}).items():
            conversions[path][0] += block["attempts"]
            conversions[path][1] += block["successes"]
        for key, value in (biz or {}).items():
            business[key] += value
        for key, value in (system or {}).items():
            system_sum[key] += value
            system_n[key] += 1
    stats.bounds = sorted(merged)
    stats.counts = [merged[bound] for bound in stats.bounds]
    stats.conversions = dict(conversions)
    stats.business = dict(business)
    stats.system = {key: system_sum[key] / system_n[key] for key in system_sum}


def rule_value(
    rule: AbortRule, stats: WindowStats, targets: list[ConversionTarget]
) -> float | None:
    """The rule's metric over the window, or None when the window has too little data."""
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
        return "no_data", since
    if not condition:
        return "ok", None
    since = since or now
    return ("firing" if now - since >= duration else "pending"), since


@dataclass
class Analysis:
    at: datetime
    verdict: str
    action: str = "none"  # none | pause | rollback
    reason: str = ""
    rule: str = ""
    validation_passed: bool = False
    inconclusive: bool = True
    rules: list[dict[str, Any]] = field(default_factory=list)
    inputs: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["at"] = _iso(self.at)
        return data


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def _window_s(seconds: int) -> int:
    return max(1, round(clock.scaled(seconds).total_seconds()))


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


def prepare(rollouts: list[Rollout], now: datetime) -> TickData:
    data = TickData(
        now, list(AbortRule.objects.filter(is_active=True)), list(ConversionTarget.objects.all())
    )
    if not rollouts:
        return data
    counting = {
        _window_s(r.window_s) for r in data.rules if r.metric == AbortRule.Metric.COMPLAINTS
    }
    detailed = {_window_s(r.window_s) for r in data.rules} - counting
    services = {rollout.service for rollout in rollouts}
    rows: dict[tuple[str, str], list[tuple[datetime, tuple[Any, ...]]]] = defaultdict(list)
    if detailed:
        for service, version, end, *values in MetricSample.objects.filter(
            variant=Variant.CANARY,
            service__in=services,
            end__gt=now - timedelta(seconds=max(detailed)),
            end__lte=now,
        ).values_list("service", "version", "end", *_DETAIL_FIELDS):
            rows[(service, version)].append((end, tuple(values)))
    complaints: dict[int, dict[tuple[str, str], int]] = {}
    for seconds in counting:
        start = now - timedelta(seconds=seconds)
        sums: dict[tuple[str, str], int] = defaultdict(int)
        for row in (
            MetricSample.objects.filter(
                variant=Variant.CANARY, service__in=services, end__gt=start, end__lte=now
            )
            .values("service", "version")
            .annotate(n=Sum("complaints"))
        ):
            sums[(row["service"], row["version"])] += row["n"] or 0
        for row in (
            ComplaintReport.objects.filter(service__in=services, at__gt=start, at__lte=now)
            .values("service", "version")
            .annotate(n=Sum("count"))
        ):
            sums[(row["service"], row["version"])] += row["n"] or 0
        complaints[seconds] = sums
    for rollout in rollouts:
        key = (rollout.service, rollout.version)
        windows: dict[int, WindowStats] = {}
        for seconds in detailed:
            start = now - timedelta(seconds=seconds)
            windows[seconds] = stats = WindowStats(start, now)
            _accumulate(stats, (values for end, values in rows[key] if end > start))
        for seconds in counting:
            windows[seconds] = WindowStats(
                now - timedelta(seconds=seconds), now, complaints=complaints[seconds][key]
            )
        data.windows[rollout.pk] = windows
        data.states[rollout.pk] = {}
    for state in RuleState.objects.filter(rollout__in=rollouts):
        data.states[state.rollout_id][state.rule_id] = state
    return data


def evaluate_rules(rollout: Rollout, data: TickData) -> list[tuple[AbortRule, RuleState, bool]]:
    """Evaluate every active rule for the rollout; returns (rule, state, started firing).
    The new states are kept in `data` until `data.flush()`."""
    now, results = data.now, []
    for rule in data.rules:
        stats = data.windows[rollout.pk][_window_s(rule.window_s)]
        value = rule_value(rule, stats, data.targets)
        condition = (
            None
            if value is None
            else (value >= rule.threshold if rule.operator == "ge" else value > rule.threshold)
        )
        state = data.states[rollout.pk].get(rule.pk) or RuleState(rollout=rollout, rule=rule)
        was_firing = state.state == "firing"
        state.state, state.since = next_state(
            state.state, state.since, condition, now, clock.scaled(rule.duration_s)
        )
        started = state.state == "firing" and not was_firing
        if started:
            state.fired_at = now
        state.value, state.evaluated_at = value, now
        data.changed.append(state)
        results.append((rule, state, started))
    return results


def analyse(
    rollout: Rollout, now: datetime, data: TickData | None = None, validate: bool = True
) -> Analysis:
    """The verdict for one rollout. The engine passes the tick's `data` (and flushes it)
    and validates only at decision points (a phase's end); alone, it reads and writes
    what it needs itself."""
    alone = data is None
    data = data or prepare([rollout], now)
    evaluations = evaluate_rules(rollout, data)
    if alone:
        data.flush()
    result = Analysis(at=now, verdict=Verdict.INCONCLUSIVE)
    for rule, state, _started in evaluations:
        result.rules.append(
            {
                "name": rule.name,
                "state": state.state,
                "since": _iso(state.since),
                "value": _round(state.value),
                "threshold": rule.threshold,
                "operator": rule.operator,
                "duration_s": rule.duration_s,
                "window_s": rule.window_s,
                "action": rule.action,
            }
        )
    fired = [(rule, state) for rule, state, started in evaluations if started]
    for action in ("rollback", "pause"):
        hits = [(rule, state) for rule, state in fired if rule.action == action]
        if hits:
            rule, state = hits[0]
            op = "≥" if rule.operator == "ge" else ">"
            result.verdict, result.action, result.rule = Verdict.FAILING, action, rule.name
            result.reason = (
                f"Rule {rule.name}: {rule.metric} {_round(state.value)} {op} {rule.threshold} "
                f"held since {_iso(state.since)} ({rule.duration_s}s window {rule.window_s}s)"
                + (f"; alert {rule.stakeholders}" if rule.stakeholders else "")
            )
            return result
    states = [r["state"] for r in result.rules]
    if validate:
        _validate(rollout, now, result)
    else:
        result.inconclusive = all(
            r["state"] == "no_data" for r in result.rules if r["name"] != "complaints"
        )
        result.reason = "rules evaluated; validation at the phase's end"
    if "firing" in states:
        result.verdict = Verdict.FAILING
    elif result.inconclusive:
        result.verdict = Verdict.INCONCLUSIVE
    elif "pending" in states or (validate and not result.validation_passed):
        result.verdict = Verdict.WARNING
    else:
        result.verdict = Verdict.HEALTHY
    return result


def _validate(rollout: Rollout, now: datetime, result: Analysis) -> None:
    phase = window_stats(
        service=rollout.service,
        variant=Variant.CANARY,
        version=rollout.version,
        start=rollout.phase_started_at,
        end=now,
    )
    stable = window_stats(
        service=rollout.service, variant=Variant.STABLE, start=rollout.phase_started_at, end=now
    )
    baseline = stable
    if not stable.enough:  # at 100% there is no stable traffic: use the hour before
        baseline = window_stats(
            service=rollout.service,
            variant=Variant.STABLE,
            start=rollout.started_at - clock.scaled(3600),
            end=rollout.started_at,
        )
    p95, base_p95 = phase.quantile(0.95), baseline.quantile(0.95)
    p95_limit = base_p95 * 1.10 if base_p95 is not None else 300.0
    weight = rollout.weight
    expected_rps = stable.rps * weight / (100 - weight) if stable.enough and weight < 100 else None
    gates: dict[str, dict[str, Any]] = {
        "requests": {
            "value": phase.requests,
            "min": settings.CANARY_MIN_REQUESTS,
            "ok": phase.enough,
        },
        "error_rate": {
            "value": _round(phase.error_rate),
            "max": 0.005,
            "ok": phase.error_rate is not None and phase.error_rate <= 0.005,
        },
        "p95_ms": {
            "value": _round(p95, 1),
            "max": _round(p95_limit, 1),
            "baseline": _round(base_p95, 1),
            "ok": p95 is None or p95 <= p95_limit,
        },
        "throughput_rps": {
            "value": _round(phase.rps, 2),
            "min": _round(0.95 * expected_rps, 2) if expected_rps else None,
            "ok": expected_rps is None or phase.rps >= 0.95 * expected_rps,
        },
    }
    result.inconclusive = not phase.enough
    result.validation_passed = all(gate["ok"] for gate in gates.values())
    result.inputs = {
        "phase_window": [_iso(rollout.phase_started_at), _iso(now)],
        "weight": weight,
        "gates": gates,
        "stable": {"requests": stable.requests, "p95_ms": _round(stable.quantile(0.95), 1)},
    }
    if not result.reason:
        failed = [name for name, gate in gates.items() if not gate["ok"]]
        result.reason = (
            f"{phase.requests} canary requests this phase; {settings.CANARY_MIN_REQUESTS} needed"
            if result.inconclusive
            else ("validation passed" if not failed else f"validation failing: {', '.join(failed)}")
        )


def stable_window(service: str, start: datetime, minutes: int = 10) -> WindowStats:
    return window_stats(
        service=service, variant=Variant.STABLE, start=start, end=start + timedelta(minutes=minutes)
    )
