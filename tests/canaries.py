"""A library of synthetic canaries, the metric samples they send, and a driver that runs
them through the engine minute by minute. Used by tests/rollouts/test_canary_library.py
and bench/judge.py.

A canary is a service's traffic (requests a second over both variants, stable's error
rate, a log-normal latency, conversion paths) and how its canary differs from stable.
`expect` says how its rollout must end: `advance` (reaches 100%), `stop` (paused, rolled
back or its validation failing at a phase's end, with `catch` in the reason) or
`cannot_tell` (too little traffic: paused, the reason saying what the phase cannot see).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from statistics import NormalDist
from typing import Any

from rollouts import engine
from rollouts.models import MetricSample, Rollout

STEP_S = 10
BOUNDS: list[float | str] = [10, 25, 50, 75, 100, 150, 200, 250, 300, 400, 500, 750, 1000, 2000]
BOUNDS.append("+Inf")
CHECKOUT = ("/checkout", 0.855, 0.10)  # the seeded target's baseline; a tenth of requests try


@dataclass(frozen=True)
class Canary:
    """One service and its canary: traffic, stable's rates, and the canary's difference."""

    name: str
    expect: str = "advance"
    catch: str = ""
    rps: float = 2000.0
    error_rate: float = 0.001
    median_ms: float = 60.0
    sigma: float = 0.6
    conversions: tuple[tuple[str, float, float], ...] = (CHECKOUT,)
    noise: float = 0.0  # log-normal spread of every 10 s sample's rates (both variants)
    errors_up: float = 0.0  # the canary's extra errors (not 5xx), absolute
    five_xx: float = 0.0  # the canary's extra 5xx (errors too), absolute
    slower: float = 1.0  # the canary's latencies x this
    converts: float = 1.0  # the canary's conversion rates x this
    throughput: float = 1.0  # share of its due traffic the canary gets
    histograms: bool = True
    silent: bool = False


HEALTHY = Canary("healthy")
LIBRARY = [
    HEALTHY,
    Canary("healthy, faster canary", slower=0.85),
    Canary(
        "noisy-healthy near every gate",
        rps=3000,
        error_rate=0.0035,  # +0.05 points (under the 0.2-point floor): 0.4%, the plan's
        errors_up=0.0005,  # limit is 0.5%
        slower=1.03,  # +3%: under the 5% floor and the 10% budget
        converts=0.99,  # -1%: under the 2% floor
        throughput=0.97,  # the throughput gate wants 95%
        noise=0.25,
    ),
    Canary("errors +1 point", "stop", "error_rate", errors_up=0.01),
    Canary(
        "errors +0.3 point (under the plan's 0.5% limit)", "stop", "error_rate", errors_up=0.003
    ),
    Canary("p95 +7% (under the 10% budget)", "stop", "p95", slower=1.07),
    Canary("p95 +15%", "stop", "p95", slower=1.15),
    Canary("p95 +30%", "stop", "p95", slower=1.30),
    Canary("conversion -3%", "stop", "conversion /checkout", converts=0.97),
    Canary("conversion -6%", "stop", "conversion", converts=0.94),
    Canary("5xx 3%", "stop", "status_5xx", five_xx=0.03),
    Canary("throughput 80%", "stop", "throughput_rps", throughput=0.80),
    Canary("no latency data", "stop", "p95", histograms=False),
    Canary("no data at all", "stop", "canary requests", silent=True),
    Canary("low traffic", "cannot_tell", "cannot detect", rps=60, error_rate=0.003),
]


def poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    count, threshold, product = 0, math.exp(-mean), rng.random()
    while product > threshold:
        count, product = count + 1, product * rng.random()
    return count


def binomial(rng: random.Random, n: int, p: float) -> int:
    if n <= 0 or p <= 0:
        return 0
    if p >= 1:
        return n
    if n < 40:
        return sum(rng.random() < p for _ in range(n))
    if n * p < 20:
        return min(n, poisson(rng, n * p))
    if n * (1 - p) < 20:
        return n - min(n, poisson(rng, n * (1 - p)))
    return min(n, max(0, round(rng.gauss(n * p, math.sqrt(n * p * (1 - p))))))


def histogram(rng: random.Random, n: int, median_ms: float, sigma: float) -> list[int]:
    """`n` log-normal latencies counted into BOUNDS (a multinomial draw)."""
    unit = NormalDist(math.log(median_ms), sigma)
    edges = [unit.cdf(math.log(float(b))) for b in BOUNDS[:-1]] + [1.0]
    counts, left, below = [], n, 0.0
    for edge in edges:
        share = (edge - below) / (1 - below) if below < 1 else 0.0
        drawn = binomial(rng, left, min(1.0, max(0.0, share)))
        counts.append(drawn)
        left, below = left - drawn, edge
    return counts


def samples(
    canary: Canary,
    rng: random.Random,
    *,
    service: str,
    version: str,
    variant: str,
    weight: int,
    start: datetime,
    seconds: int,
) -> list[MetricSample]:
    """One variant's samples, one per 10 s over [start, start + seconds)."""
    mine = variant == "canary"
    if mine and canary.silent:
        return []
    share = weight / 100 if mine else (100 - weight) / 100
    mean = canary.rps * STEP_S * share * (canary.throughput if mine else 1.0)
    rows = []
    for offset in range(0, seconds, STEP_S):
        wobble = math.exp(rng.gauss(0, canary.noise)) if canary.noise else 1.0
        n = poisson(rng, mean)
        if n == 0:
            continue
        five = binomial(rng, n, canary.error_rate * wobble + (canary.five_xx if mine else 0))
        other = binomial(rng, n - five, canary.errors_up if mine else 0.0)
        slow = (canary.slower if mine else 1.0) * math.exp(rng.gauss(0, canary.noise / 4))
        conversions = {}
        for path, rate, tries in canary.conversions:
            attempts = binomial(rng, n, tries)
            won = (
                rate * (canary.converts if mine else 1.0) * math.exp(rng.gauss(0, canary.noise / 8))
            )
            conversions[path] = {"attempts": attempts, "successes": binomial(rng, attempts, won)}
        begin = start + timedelta(seconds=offset)
        with_latency = canary.histograms or not mine
        rows.append(
            MetricSample(
                service=service,
                version=version,
                variant=variant,
                start=begin,
                end=begin + timedelta(seconds=STEP_S),
                requests=n,
                errors=five + other,
                status_4xx=binomial(rng, n, 0.01),
                status_5xx=five,
                latency_le=BOUNDS if with_latency else None,
                latency_counts=(
                    histogram(rng, n, canary.median_ms * slow, canary.sigma)
                    if with_latency
                    else None
                ),
                conversions=conversions or None,
            )
        )
    return rows


def random_canary(rng: random.Random, index: int) -> Canary:
    """A service drawn at random (200-5,000 requests/s, stable's error rate up to 0.3%, p95
    80-220 ms: under the seeded abort rules' limits; half with a conversion path the
    abort rules do not watch; up to 30% noise), half of them healthy (differences under
    every floor) and half with one regression above its floor."""
    sigma = rng.uniform(0.3, 0.7)
    base = Canary(
        f"random {index}",
        rps=10 ** rng.uniform(math.log10(200), math.log10(5000)),
        error_rate=rng.uniform(0.0, 0.003),
        median_ms=rng.uniform(80, 220) / math.exp(1.645 * sigma),
        sigma=sigma,
        conversions=(("/upgrade", rng.uniform(0.3, 0.9), rng.uniform(0.05, 0.15)),)
        if rng.random() < 0.5
        else (),
        noise=rng.uniform(0.0, 0.3),
    )
    if rng.random() < 0.5:
        return replace(
            base,
            name=f"{base.name} healthy",
            errors_up=rng.uniform(0.0, 0.0005),
            slower=rng.uniform(0.97, 1.02),
            converts=rng.uniform(0.99, 1.01),
        )
    kinds = ["errors", "5xx", "latency", "no latency", "silent"] + ["conversion"] * (
        2 if base.conversions else 0
    )
    kind = rng.choice(kinds)
    changes: dict[str, Any] = {
        "errors": {"errors_up": rng.uniform(0.003, 0.02), "catch": "error_rate"},
        "5xx": {"five_xx": rng.uniform(0.02, 0.06), "catch": "status_5xx"},
        "latency": {"slower": rng.uniform(1.10, 1.6), "catch": "p95"},
        "conversion": {"converts": rng.uniform(0.90, 0.96), "catch": "conversion"},
        "no latency": {"histograms": False, "catch": "p95"},
        "silent": {"silent": True, "catch": "canary requests"},
    }[kind]
    return replace(base, name=f"{base.name} {kind}", expect="stop", **changes)


@dataclass
class Run:
    """A canary's rollout as the driver saw it."""

    canary: Canary
    rollout: Rollout
    rng: random.Random
    decisions: int = 0
    outcome: str = ""  # advanced, paused, rolled_back, failing (validation failed), missed
    reason: str = ""
    minutes: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def live(self) -> bool:
        return not self.outcome


def _end(run: Run, rollout: Rollout, due: bool, max_decisions: int) -> None:
    analysis = rollout.last_analysis or {}
    said = analysis.get("reason", "")
    if due:
        run.decisions += 1
        run.history.append(analysis)
    if rollout.state in ("rolling_back", "rolled_back", "aborted"):
        run.outcome, run.reason = "rolled_back", f"{rollout.incident_report} | {said}"
    elif rollout.state == "paused":
        run.outcome, run.reason = "paused", f"{rollout.pause_kind}: {rollout.pause_detail} | {said}"
    elif rollout.state in ("monitoring", "promoted"):
        run.outcome = "advanced"
    elif due and not analysis.get("validation_passed") and not analysis.get("inconclusive"):
        # A phase ended with its validation failing: API.md says the rollout pauses.
        run.outcome, run.reason = "failing", said
    elif run.canary.expect == "stop" and run.decisions >= max_decisions:
        run.outcome, run.reason = "missed", said


def drive(
    runs: Iterable[Run],
    start: datetime,
    move_to: Callable[[datetime], Any],
    *,
    max_decisions: int = 4,
    max_minutes: int = 240,
    after_tick: Callable[[list[Run]], Any] | None = None,
) -> None:
    """Minute by minute from `start`: each live rollout's samples of the last minute at its
    weight, then one engine tick. A run ends when its rollout reaches 100%, is paused or
    rolled back, or a phase ends with its validation failing; a regression also after
    `max_decisions` phase ends."""
    runs = list(runs)
    for minute in range(1, max_minutes + 1):
        live = [run for run in runs if run.live]
        if not live:
            return
        now = start + timedelta(minutes=minute)
        rows: list[MetricSample] = []
        for run in live:
            rollout = run.rollout
            for variant, version in (
                ("stable", rollout.stable_version),
                ("canary", rollout.version),
            ):
                rows += samples(
                    run.canary,
                    run.rng,
                    service=rollout.service,
                    version=version,
                    variant=variant,
                    weight=rollout.weight,
                    start=now - timedelta(minutes=1),
                    seconds=60,
                )
        MetricSample.objects.bulk_create(rows, batch_size=5000)
        move_to(now)
        due = {run.rollout.pk: now >= run.rollout.phase_ends_at for run in live}
        engine.tick()
        fresh = Rollout.objects.in_bulk([run.rollout.pk for run in live])
        for run in live:
            run.rollout, run.minutes = fresh[run.rollout.pk], minute
            _end(run, run.rollout, due[run.rollout.pk], max_decisions)
        if after_tick:
            after_tick(live)
