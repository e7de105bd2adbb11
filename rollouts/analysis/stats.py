"""The statistical judge: canary against stable over the phase's whole history, metric by
metric, to a score (Kayenta's idea, our own code).

The phase so far is split into equal intervals (one a minute, at most 30), both
variants read interval by interval through the metrics source.

- Latency: Mann-Whitney U on the per-interval p95s (intervals under 50 requests left
  out), not on requests rebuilt from histogram buckets: those are a few tied values, so
  many that any difference is "significant", and the tail is what matters. Effect: the
  canary's p95 over the phase against stable's, in percent.
- Error rate, 5xx rate and each conversion path stable reports: two-proportion z-tests
  on the phase's totals. Effect: the difference in points (errors) or the relative
  change in percent (conversions).

One-sided tests: only the harmful direction counts. `p_value` says the canary is worse
at all; `p_floor` that it is worse by more than the plan's effect floor (the same test
with the difference shifted by the floor). A metric fails when p_floor < 1 - confidence:
a difference under the floor never fails, however significant. It passes when it does
not fail and the phase could tell a difference of the floor from none (`mde`, its
minimum detectable effect at the plan's confidence and power, is at most the floor);
otherwise it is `underpowered`; without data, `no_data`.

Score: the weighted share of judged metrics (pass or fail) that pass, 0-100; a critical
metric (error rate, a conversion) failing makes it 0. At or above the plan's pass score
the judge passes, from marginal to pass it is marginal (the gate holds), under marginal
the phase's validation fails. Inconclusive instead of a pass: a metric without data, an
error rate the phase cannot measure to its floor at this traffic, or, in the last phase
before 100%, any metric it cannot measure to its floor.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

from portal import clock
from rollouts.analysis.significance import beyond_floor, detectable, greater, quantile, z_test
from rollouts.choices import Variant
from rollouts.metrics.base import MIN_CONVERSION_ATTEMPTS, MetricsSource, WindowStats
from rollouts.models import Plan, Rollout

MAX_INTERVALS = 30
MIN_INTERVALS = 5  # per variant; fewer and a p95 shift cannot be told from noise
MIN_INTERVAL_REQUESTS = 50
WEIGHTS = {"error_rate": 30.0, "status_5xx": 10.0, "p95_latency": 30.0, "conversion": 30.0}
CHANGES = {
    "error_rate": "an error-rate rise",
    "status_5xx": "a 5xx rise",
    "p95_latency": "a p95 rise",
}
PASS, FAIL, UNDERPOWERED, NO_DATA = "pass", "fail", "underpowered", "no_data"


@dataclass
class Metric:
    """One metric's comparison: values, effect (in `unit`), p-value and what it can see."""

    name: str
    test: str
    unit: str
    floor: float
    weight: float
    critical: bool
    result: str = NO_DATA
    canary: float | None = None
    stable: float | None = None
    effect: float | None = None
    p_value: float | None = None  # the canary worse than stable at all
    p_floor: float | None = None  # the canary worse than stable by more than the floor
    mde: float | None = None
    n: list[int] = field(default_factory=lambda: [0, 0])
    note: str = ""

    def settle(self, alpha: float) -> None:
        if self.p_floor is not None and self.p_floor < alpha:
            self.result = FAIL
        else:
            self.result = PASS if self.mde is not None and self.mde <= self.floor else UNDERPOWERED

    def blind_spot(self) -> str:
        """What the phase cannot see, for a steward (the smallest effect it sees, rounded up)."""
        change = CHANGES.get(self.name, "a drop")
        if self.mde is None:
            return self.note or f"it cannot detect {change} of any size"
        size = f"{math.ceil(self.mde * 100) / 100:g} {self.unit}"
        return f"it cannot detect {change} under {size} (floor {self.floor:g})"


@dataclass
class Judgement:
    """The judge's gate entry, whether it holds the phase as inconclusive, and why."""

    gate: dict[str, Any]
    inconclusive: bool
    reason: str
    details: dict[str, Any]


def _r(value: float | None, digits: int = 4) -> float | None:
    return None if value is None or math.isnan(value) else round(value, digits)


def spans(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The phase so far in equal intervals: one a (scaled) minute, at most MAX_INTERVALS."""
    elapsed = (end - start).total_seconds()
    count = max(1, min(MAX_INTERVALS, int(elapsed // clock.scaled(60).total_seconds())))
    step = timedelta(seconds=elapsed / count)
    edges = [start + step * i for i in range(count)] + [end]
    return list(pairwise(edges))


def interval_p95s(
    source: MetricsSource, rollout: Rollout, variant: str, parts: list[tuple[datetime, datetime]]
) -> list[float]:
    """Each interval's p95 (intervals with too few requests left out), read in one call
    where the source can (the push store's `windows`), else a `window` per interval."""
    version = rollout.version if variant == Variant.CANARY else None
    mine: dict[str, Any] = {"service": rollout.service, "variant": variant, "version": version}
    if batch := getattr(source, "windows", None):
        found = batch(spans=parts, **mine)
    else:
        found = [source.window(start=a, end=b, **mine) for a, b in parts]
    return [
        p95
        for stats in found
        if stats.requests >= MIN_INTERVAL_REQUESTS and (p95 := stats.quantile(0.95)) is not None
    ]


def proportion(
    metric: Metric, counts: tuple[int, int, int, int], worse: int, alpha: float, power: float
) -> Metric:
    """A rate (errors, 5xx: effect in points) or a conversion (relative effect in %)."""
    x_c, n_c, x_s, n_s = counts
    metric.n = [n_c, n_s]
    if n_c <= 0 or n_s <= 0:
        metric.note = "no canary data" if n_c <= 0 else "no stable data"
        return metric
    p_c, p_s = x_c / n_c, x_s / n_s
    scale = (100 / p_s if p_s else math.nan) if metric.unit == "%" else 100.0
    metric.canary, metric.stable = _r(p_c, 5), _r(p_s, 5)
    metric.effect = _r((p_c - p_s) * scale, 3)
    metric.p_value = _r(z_test(x_c, n_c, x_s, n_s, worse), 6)
    # The floor in points (errors) or percent (conversions): a fraction either way.
    metric.p_floor = _r(beyond_floor(p_c, n_c, p_s, n_s, worse, metric.floor / 100), 6)
    mde = detectable(p_s, n_c, n_s, worse, alpha, power)
    metric.mde = None if mde is None else _r(mde * scale, 3)
    metric.settle(alpha)
    return metric


def latency(
    canary: list[float],
    stable: list[float],
    pooled: tuple[float | None, float | None],
    floor: float,
    alpha: float,
    power: float,
) -> Metric:
    """The p95 over the phase, compared with Mann-Whitney U on per-interval p95s."""
    metric = Metric("p95_latency", "Mann-Whitney U", "%", floor, WEIGHTS["p95_latency"], False)
    metric.n = [len(canary), len(stable)]
    p_c, p_s = pooled
    if p_c is None or p_s is None:
        side = "the canary" if p_c is None else "stable"
        metric.note = f"{side} sent no latency histograms: no p95 to compare"
        return metric
    metric.canary, metric.stable = _r(p_c, 1), _r(p_s, 1)
    metric.effect = _r((p_c / p_s - 1) * 100, 2) if p_s else None
    if min(len(canary), len(stable)) < MIN_INTERVALS:
        metric.result = UNDERPOWERED
        metric.note = (
            f"{len(canary)} intervals with ≥ {MIN_INTERVAL_REQUESTS} canary requests "
            f"({MIN_INTERVALS} needed)"
        )
        return metric
    metric.p_value = _r(greater(canary, stable), 6)
    metric.p_floor = _r(greater([c / (1 + floor / 100) for c in canary], stable), 6)
    # The shift a t-test would see at this spread (Mann-Whitney is about as efficient).
    spread = math.sqrt(
        statistics.variance(canary) / len(canary) + statistics.variance(stable) / len(stable)
    )
    z, middle = quantile(alpha) + quantile(1 - power), statistics.median(stable)
    metric.mde = _r(z * spread / middle * 100, 2) if middle else None
    metric.settle(alpha)
    return metric


def compare(
    canary: WindowStats, stable: WindowStats, p95s: tuple[list[float], list[float]], plan: Plan
) -> list[Metric]:
    """Every metric's comparison: error rate first, then 5xx, p95 and conversions."""
    alpha, power = 1 - plan.judge_confidence, plan.judge_power
    floor, n_c, n_s, z = plan.judge_error_floor_pts, canary.requests, stable.requests, "z-test"
    error = Metric("error_rate", z, "points", floor, WEIGHTS["error_rate"], True)
    fives = Metric("status_5xx", z, "points", floor, WEIGHTS["status_5xx"], False)
    pooled = (canary.quantile(0.95), stable.quantile(0.95))
    metrics = [
        proportion(error, (canary.errors, n_c, stable.errors, n_s), 1, alpha, power),
        proportion(fives, (canary.status_5xx, n_c, stable.status_5xx, n_s), 1, alpha, power),
        latency(*p95s, pooled, plan.judge_p95_floor_pct, alpha, power),
    ]
    paths = sorted(
        p for p, (tries, _) in stable.conversions.items() if tries >= MIN_CONVERSION_ATTEMPTS
    )
    for path in paths:
        tries_c, wins_c = canary.conversions.get(path, (0, 0))
        tries_s, wins_s = stable.conversions[path]
        weight = WEIGHTS["conversion"] / len(paths)
        drop = Metric(f"conversion {path}", z, "%", plan.judge_conversion_floor_pct, weight, True)
        metrics.append(proportion(drop, (wins_c, tries_c, wins_s, tries_s), -1, alpha, power))
    return metrics


def score(metrics: list[Metric]) -> float | None:
    judged = [m for m in metrics if m.result in (PASS, FAIL)]
    if not judged:
        return None
    if any(m.critical and m.result == FAIL for m in judged):
        return 0.0
    return 100 * sum(m.weight for m in judged if m.result == PASS) / sum(m.weight for m in judged)


def _explain(metric: Metric) -> str:
    return (
        f"{metric.name} {metric.effect:+g} {metric.unit} against stable, beyond the "
        f"{metric.floor:g} floor (p={metric.p_floor:.2g})"
    )


def phase_judge(
    rollout: Rollout,
    now: datetime,
    plan: Plan,
    source: MetricsSource,
    *,
    canary: WindowStats,
    stable: WindowStats,
) -> Judgement:
    """The judge over the current phase so far; `canary` and `stable` are its totals."""
    marginal, passing = plan.judge_marginal_score, plan.judge_pass_score
    details: dict[str, Any] = {
        "pass": passing,
        "marginal": marginal,
        "confidence": plan.judge_confidence,
        "power": plan.judge_power,
    }
    if rollout.weight >= 100:
        reason, gate = "at 100% no stable to compare with", {"class": "not_applicable", "ok": True}
        return Judgement(gate, False, reason, details | gate | {"reason": reason})
    parts = spans(rollout.phase_started_at, now)
    p95s = (
        interval_p95s(source, rollout, Variant.CANARY, parts),
        interval_p95s(source, rollout, Variant.STABLE, parts),
    )
    metrics = compare(canary, stable, p95s, plan)
    value = score(metrics)
    failing = [m for m in metrics if m.result == FAIL]
    missing = [m for m in metrics if m.result == NO_DATA]
    blind = [m for m in metrics if m.result == UNDERPOWERED]
    error = metrics[0]
    last = rollout.phases.filter(index=rollout.phase_index + 1, weight__gte=100).exists()
    inconclusive = True
    if value is not None and value < marginal:
        verdict, inconclusive = FAIL, False
        reason = f"judge score {value:.0f} < {marginal:g}: " + "; ".join(map(_explain, failing))
    elif missing:
        verdict = "inconclusive"
        reason = "; ".join(f"{m.name}: {m.note}" for m in missing)
    elif error.result == UNDERPOWERED:
        verdict = "inconclusive"
        seen = f"at {rollout.weight}% this phase saw {error.n[0]:,} canary requests"
        reason = f"{seen}: {error.blind_spot()}"
    elif last and blind:
        verdict = "inconclusive"
        reason = "before 100% every metric must be measurable: " + "; ".join(
            f"{m.name}: {m.blind_spot()}" for m in blind
        )
    else:
        verdict, inconclusive = ("marginal" if (value or 0) < passing else PASS), False
        reason = f"judge score {value:.0f} ({verdict}; pass {passing:g}, marginal {marginal:g})"
        if blind:
            reason += "; not yet measurable: " + "; ".join(
                f"{m.name}: {m.blind_spot()}" for m in blind
            )
    step = (parts[0][1] - parts[0][0]).total_seconds()
    details |= {
        "class": verdict,
        "score": _r(value, 1),
        "reason": reason,
        "intervals": {"count": len(parts), "seconds": round(step, 1)},
        "metrics": [asdict(m) for m in metrics],
    }
    gate = {"value": _r(value, 1), "min": marginal, "pass": passing, "class": verdict}
    gate["ok"], gate["reason"] = verdict in (PASS, "marginal"), reason
    return Judgement(gate, inconclusive, reason, details)
