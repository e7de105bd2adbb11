"""The judge on synthetic canaries: the library of tests/canaries.py and randomised ones,
all rolled out at once on the standard plan (1% 10m, 5% 20m, 20% 30m, then 100%), the
engine ticking once a simulated minute on the samples each canary pushed.

Prints, per canary kind, how the rollouts ended: regressions caught (paused, rolled
back, or their validation failing at a phase's end) within four phase ends, healthy
canaries that reached 100%, were paused or rolled back; and the judge's cost.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/canary_judge \\
        .venv/bin/python bench/judge.py [--random 200] [--seed 1]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import time_machine
from common import scratch_database
from django.contrib.auth import get_user_model

from governance.models import Release
from portal import clock
from rollouts import engine, lifecycle
from rollouts.analysis import validation
from rollouts.models import Phase, Plan, Rollout
from tests.canaries import LIBRARY, Canary, Run, drive, random_canary

T0 = "2026-11-26T14:00:00Z"
MAX_DECISIONS = 4


def start(canaries: list[Canary], seed: int) -> list[Run]:
    """One rollout per canary, each its own service, at the plan's first weight."""
    now, plan = clock.now(), Plan.objects.get(name="standard")
    steps = [*plan.steps, {"weight": 100, "duration_s": plan.monitoring_s}]
    user, _ = get_user_model().objects.get_or_create(username="bench")
    releases = Release.objects.bulk_create(
        Release(
            service=f"svc{n}",
            version="v2",
            declared_tier="low",
            tier="low",
            risk="low",
            state="deployed",
            created_by_name="bench",
        )
        for n in range(len(canaries))
    )
    rollouts = Rollout.objects.bulk_create(
        Rollout(
            release=release,
            service=release.service,
            version="v2",
            stable_version="v1",
            plan=plan.name,
            state="running",
            phase_started_at=now,
            phase_ends_at=now + timedelta(seconds=steps[0]["duration_s"]),
            monitoring_s=plan.monitoring_s,
            started_by=user,
            started_by_name="bench",
        )
        for release in releases
    )
    Phase.objects.bulk_create(
        Phase(rollout=r, index=i, weight=s["weight"], duration_s=s["duration_s"])
        for r in rollouts
        for i, s in enumerate(steps)
    )
    for rollout in rollouts:
        lifecycle.apply_phase_weight(rollout)
    return [
        Run(canary, Rollout.objects.get(pk=rollout.pk), random.Random(f"{seed} {canary.name}"))
        for canary, rollout in zip(canaries, rollouts, strict=True)
    ]


def timed(calls: list[float]) -> Callable[..., Any]:
    judge = validation.phase_judge

    def timing(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return judge(*args, **kwargs)
        finally:
            calls.append(time.perf_counter() - started)

    return timing


def kind(run: Run) -> str:
    if run.canary.name.startswith("random"):
        return "random: " + run.canary.name.split(" ", 2)[2]
    return "library: " + run.canary.name


def band(rps: float) -> str:
    edges = [200, 500, 1000, 2000, 5000]
    low = max(edge for edge in edges[:-1] if edge <= rps)
    return f"{low}-{edges[edges.index(low) + 1]} req/s"


def table(title: str, groups: dict[str, list[Run]]) -> None:
    print(f"\n{title:<54} {'n':>3}  how they ended (phase ends seen)")
    for name, runs in sorted(groups.items()):
        ends = Counter(run.outcome for run in runs)
        seen = Counter(run.decisions for run in runs)
        shown = ", ".join(f"{k} {v}" for k, v in sorted(ends.items()))
        named = sum(r.canary.catch in r.reason for r in runs if r.canary.expect == "stop")
        if any(r.canary.expect == "stop" for r in runs):
            shown += f"; naming it {named}"
        after = " ".join(f"{k}:{v}" for k, v in sorted(seen.items()))
        print(f"{name:<54} {len(runs):>3}  {shown} ({after})")


def report(runs: list[Run]) -> None:
    by_kind: dict[str, list[Run]] = defaultdict(list)
    by_band: dict[str, list[Run]] = defaultdict(list)
    for run in runs:
        by_kind[kind(run)].append(run)
        if run.canary.name.startswith("random") and run.canary.expect == "advance":
            by_band[band(run.canary.rps)].append(run)
    table("canaries", by_kind)
    table("random healthy canaries by traffic", by_band)
    for source in ("library", "random"):
        mine = [r for r in runs if r.canary.name.startswith("random") == (source == "random")]
        bad = [r for r in mine if r.canary.expect == "stop"]
        good = [r for r in mine if r.canary.expect == "advance"]
        caught = [r for r in bad if r.outcome in ("paused", "rolled_back", "failing")]
        named = [r for r in caught if r.canary.catch in r.reason]
        ends = Counter(r.outcome for r in good)
        held = ends["paused"] + ends["failing"]
        print(
            f"\n{source}: regressions caught within {MAX_DECISIONS} phase ends "
            f"{len(caught)}/{len(bad)} ({100 * len(caught) / max(1, len(bad)):.1f}%), "
            f"naming the metric {len(named)}; healthy {len(good)}: reached 100% "
            f"{ends['advanced']}, paused {held} ({100 * held / max(1, len(good)):.1f}%), "
            f"rolled back {ends['rolled_back']}"
        )
        for run in mine:  # the healthy held back, the regressions missed or caught otherwise
            expect, outcome = run.canary.expect, run.outcome
            if (expect == "advance") != (outcome == "advanced") or (
                expect == "stop" and run.canary.catch not in run.reason
            ):
                print(f"  {run.canary.name} ({run.canary.rps:.0f} req/s): {run.outcome}: ", end="")
                print(run.reason.replace("Insufficient data after one extension: ", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description="The judge on synthetic canaries.")
    parser.add_argument("--random", type=int, default=200, help="randomised canaries")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    canaries = LIBRARY + [random_canary(rng, n) for n in range(args.random)]
    judge_calls: list[float] = []
    ticks: list[tuple[float, int]] = []
    with scratch_database(), time_machine.travel(T0, tick=False) as traveller:
        runs = start(canaries, args.seed)
        validation.phase_judge = timed(judge_calls)  # type: ignore[assignment]
        tick = engine.tick

        def timed_tick() -> dict[str, int]:
            started = time.perf_counter()
            counts = tick()
            ticks.append((time.perf_counter() - started, counts["checked"]))
            return counts

        engine.tick = timed_tick  # type: ignore[assignment]
        user = get_user_model().objects.get(username="bench")

        def pause_failing(live: list[Run]) -> None:
            # API.md: a phase that ends failing pauses its rollout; until the engine does,
            # pause it here so it is not judged again every tick.
            for run in live:
                if run.outcome == "failing":
                    lifecycle.rollout_pause(rollout=run.rollout, actor=user, reason=run.reason)

        started = time.perf_counter()
        drive(
            runs,
            clock.now(),
            traveller.move_to,
            max_decisions=MAX_DECISIONS,
            max_minutes=180,
            after_tick=pause_failing,
        )
        wall = time.perf_counter() - started
    report(runs)
    tick_ms = [1000 * seconds / max(1, checked) for seconds, checked in ticks]
    judge_ms = sorted(1000 * s for s in judge_calls)
    checked = sum(c for _, c in ticks)
    print(
        f"\njudge: {len(judge_ms)} calls, {statistics.mean(judge_ms):.1f} ms each "
        f"(median {statistics.median(judge_ms):.1f}, p95 {judge_ms[int(0.95 * len(judge_ms))]:.1f},"
        f" max {judge_ms[-1]:.1f}); per rollout per tick {sum(judge_ms) / checked:.2f} ms "
        f"over {len(ticks)} ticks of up to {max(c for _, c in ticks)} rollouts"
    )
    print(
        f"tick: {statistics.mean(tick_ms):.2f} ms per rollout (median "
        f"{statistics.median(tick_ms):.2f}); simulation {wall:.0f} s"
    )


if __name__ == "__main__":
    main()
