"""The statistical judge (rollouts/analysis/stats.py, significance.py): its tests keep
their promises, and a phase's gates use it as one more gate."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import time_machine
from scipy.stats import binom

from governance.models import Release
from rollouts import engine, lifecycle
from rollouts.analysis.significance import beyond_floor, detectable, z_test
from rollouts.analysis.validation import phase_gates
from rollouts.metrics.push import PushStore
from rollouts.models import MetricSample, Plan, Rollout
from tests.rollouts.conftest import T0, at, feed

ALPHA, POWER = 0.01, 0.8
SLOWER = {  # p95 214 ms against HEALTHY_LATENCY's 200 ms: +7%, over the floor, under budget
    "le": [25, 50, 100, 200, 300, 500, 1000, "+Inf"],
    "counts": [100, 300, 395, 150, 35, 15, 5, 0],
}


def rejections(p_c: float, p_s: float, n_c: int, n_s: int, test: Callable[..., float]) -> float:
    """How often `test` rejects at ALPHA over 4,000 simulated phases."""
    seed = 7
    canary = binom.rvs(n_c, p_c, size=4000, random_state=seed)
    stable = binom.rvs(n_s, p_s, size=4000, random_state=seed + 1)
    return sum(test(int(c), int(s)) < ALPHA for c, s in zip(canary, stable, strict=True)) / 4000


def test_the_detectable_rise_is_seen_as_often_as_the_power_says() -> None:
    n_c, n_s, p0 = 2400, 240_000, 0.005
    mde = detectable(p0, n_c, n_s, 1, ALPHA, POWER)
    assert mde is not None and 0.004 < mde < 0.006
    seen = rejections(p0 + mde, p0, n_c, n_s, lambda c, s: z_test(c, n_c, s, n_s, 1))
    assert 0.76 <= seen <= 0.84, seen
    half = rejections(p0 + mde / 2, p0, n_c, n_s, lambda c, s: z_test(c, n_c, s, n_s, 1))
    assert half < 0.4, half


def test_a_rise_at_the_floor_fails_no_more_often_than_alpha() -> None:
    n_c, n_s, p0, floor = 200_000, 2_000_000, 0.002, 0.002
    fails = rejections(
        p0 + floor, p0, n_c, n_s, lambda c, s: beyond_floor(c / n_c, n_c, s / n_s, n_s, 1, floor)
    )
    assert fails <= 0.02, fails
    # Twice the floor, with this much traffic, always fails.
    fails = rejections(
        p0 + 2 * floor,
        p0,
        n_c,
        n_s,
        lambda c, s: beyond_floor(c / n_c, n_c, s / n_s, n_s, 1, floor),
    )
    assert fails == 1.0


@pytest.fixture
def clock() -> Iterator[Any]:
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


@pytest.fixture
def rollout(approved: Callable[..., Release], team: dict[str, Any], clock: Any) -> Rollout:
    return lifecycle.rollout_start(
        release=approved(tier="medium"), actor=team["erin"], stable_version="v2.0.3"
    )


def phase(rollout: Rollout, *, canary: dict[str, Any], stable: dict[str, Any]) -> None:
    """Ten minutes of samples of both variants."""
    feed("backend", "v2.0.3", "stable", at(0), 600, **stable)
    feed("backend", rollout.version, "canary", at(0), 600, **canary)


def judge_of(gates: dict[str, Any]) -> dict[str, Any]:
    return {m["name"]: m for m in gates["inputs"]["judge"]["metrics"]}


@pytest.mark.django_db
def test_at_1_percent_a_phase_with_few_requests_says_what_it_cannot_see(
    rollout: Rollout, clock: Any
) -> None:
    phase(rollout, canary={"requests": 4}, stable={"requests": 400, "errors": 2})
    clock.move_to(at(600))
    gates = phase_gates(rollout, at(600))
    assert gates["inconclusive"] and not gates["passed"]
    found = re.fullmatch(
        r"at 1% this phase saw 240 canary requests: "
        r"it cannot detect an error-rate rise under ([\d.]+) points \(floor 0\.2\)",
        gates["reason"],
    )
    assert found and 1.9 <= float(found[1]) <= 2.3, gates["reason"]
    engine.tick()  # the engine extends the phase rather than passing it
    rollout.refresh_from_db()
    assert (rollout.state, rollout.phase_index) == ("running", 0)
    assert rollout.last_analysis["verdict"] == "inconclusive"
    assert rollout.phases.get(index=0).extended


@pytest.mark.django_db
def test_a_tiny_but_significant_rise_passes_and_the_floor_is_plan_data(
    rollout: Rollout, clock: Any
) -> None:
    phase(  # +0.05 points on 120,000 canary requests: significant, under the floor
        rollout,
        canary={"requests": 2000, "errors": 3},
        stable={"requests": 200_000, "errors": 200},
    )
    clock.move_to(at(600))
    gates = phase_gates(rollout, at(600))
    error = judge_of(gates)["error_rate"]
    assert error["p_value"] < 0.001 and error["effect"] == pytest.approx(0.05)
    assert error["result"] == "pass" and gates["passed"], gates["reason"]
    assert gates["gates"]["judge"] == {
        "value": 100.0,
        "min": 75.0,
        "pass": 95.0,
        "class": "pass",
        "ok": True,
        "reason": "judge score 100 (pass; pass 95, marginal 75)",
    }
    Plan.objects.filter(name="standard").update(judge_error_floor_pts=0.02)
    gates = phase_gates(rollout, at(600))
    assert judge_of(gates)["error_rate"]["result"] == "fail"
    assert not gates["passed"] and not gates["inconclusive"]
    assert gates["reason"].startswith("validation failing: judge (judge score 0 < 75: error_rate")


@pytest.mark.django_db
def test_a_p95_rise_over_the_floor_fails_the_judge_inside_the_budget(
    rollout: Rollout, clock: Any
) -> None:
    phase(rollout, canary={"requests": 200, "latency": SLOWER}, stable={"requests": 20_000})
    clock.move_to(at(600))
    gates = phase_gates(rollout, at(600))
    p95 = judge_of(gates)["p95_latency"]
    assert p95["effect"] == pytest.approx(7.14, abs=0.01) and p95["result"] == "fail"
    assert gates["gates"]["p95_ms"]["ok"]  # within the 10% budget
    assert gates["gates"]["judge"]["value"] == pytest.approx(100 * 40 / 70, abs=0.1)
    assert gates["reason"].startswith("validation failing: judge (judge score 57 < 75: p95")


@pytest.mark.django_db
def test_a_5xx_rise_alone_is_marginal(rollout: Rollout, clock: Any) -> None:
    phase(
        rollout,
        canary={"requests": 1000, "errors": 4, "status_5xx": 4},
        stable={"requests": 1000, "errors": 4, "status_5xx": 1},
    )
    clock.move_to(at(600))
    gates = phase_gates(rollout, at(600))
    assert judge_of(gates)["status_5xx"]["result"] == "fail"
    assert gates["gates"]["judge"]["class"] == "marginal" and gates["passed"]


@pytest.mark.django_db
def test_a_canary_without_latency_histograms_is_inconclusive(rollout: Rollout, clock: Any) -> None:
    phase(rollout, canary={"requests": 200}, stable={"requests": 20_000})
    MetricSample.objects.filter(variant="canary").update(latency_le=None, latency_counts=None)
    clock.move_to(at(600))
    gates = phase_gates(rollout, at(600))
    assert gates["inconclusive"] and not gates["passed"]
    assert (
        gates["inputs"]["judge"]["reason"]
        == "p95_latency: the canary sent no latency histograms: no p95 to compare"
    )


@pytest.mark.django_db
def test_the_push_store_reads_consecutive_windows_as_window_does() -> None:
    feed("backend", "v2.0.3", "stable", at(0), 600, requests=300, errors=2, conversions=None)
    spans = [(at(0), at(95)), (at(95), at(300)), (at(300), at(600))]
    store = PushStore()
    together = store.windows(service="backend", variant="stable", spans=spans)
    apart = [store.window(service="backend", variant="stable", start=a, end=b) for a, b in spans]
    assert [(w.requests, w.errors, w.counts) for w in together] == [
        (w.requests, w.errors, w.counts) for w in apart
    ]
    assert [w.requests for w in together] == [2700, 6300, 9000]
