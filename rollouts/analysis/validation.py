"""The gates: a phase's validation (may the rollout advance?) and the verification ten
minutes after a rollback (is stable healthy again?). Every threshold is a field of the
rollout's plan (admin → Plans), seeded with the guide's values.

Phase validation: since the phase began, the canary served enough requests, its error
rate ≤ the plan's limit (0.5%), its p95 ≤ stable's p95 + the degradation budget (10%;
without stable traffic, the stable baseline of the hour before the rollout; without any
baseline, a fixed limit of 300 ms), and its throughput ≥ 95% of what its weight should
bring (stable's rate x w/(100-w)); and the statistical judge (`stats.phase_judge`) scores
the canary against stable over the whole phase: below its marginal score the phase fails,
and a phase it cannot judge (no data, too little traffic to see its floors) is inconclusive.
A gate whose metric has no data (no latency histogram: no p95) never passes: the phase is
inconclusive.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings

from portal import clock
from rollouts.analysis.stats import phase_judge
from rollouts.choices import Variant, VerificationResult
from rollouts.metrics.base import MetricsSource, metrics_source
from rollouts.models import Plan, Rollout

BASELINE_LOOKBACK_S = 3600


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def plan_of(rollout: Rollout) -> Plan:
    """The rollout's plan (its thresholds); the guide's values if it has been deleted."""
    return Plan.objects.filter(name=rollout.plan).first() or Plan(name=rollout.plan)


def phase_gates(
    rollout: Rollout, now: datetime, source: MetricsSource | None = None
) -> dict[str, Any]:
    """The guide's gates over the current phase: {"gates", "passed", "inconclusive",
    "inputs", "reason"}."""
    source, plan = source or metrics_source(), plan_of(rollout)
    phase = source.window(
        service=rollout.service,
        variant=Variant.CANARY,
        version=rollout.version,
        start=rollout.phase_started_at,
        end=now,
    )
    stable = source.window(
        service=rollout.service, variant=Variant.STABLE, start=rollout.phase_started_at, end=now
    )
    baseline = stable
    if not stable.enough:  # at 100% there is no stable traffic: use the hour before
        baseline = source.window(
            service=rollout.service,
            variant=Variant.STABLE,
            start=rollout.started_at - clock.scaled(BASELINE_LOOKBACK_S),
            end=rollout.started_at,
        )
    p95, base_p95 = phase.quantile(0.95), baseline.quantile(0.95)
    budget = 1 + plan.gate_p95_budget_pct / 100
    p95_limit = base_p95 * budget if base_p95 is not None else plan.gate_p95_fallback_ms
    weight = rollout.weight
    expected_rps = stable.rps * weight / (100 - weight) if stable.enough and weight < 100 else None
    min_rps = plan.gate_min_throughput * expected_rps if expected_rps else None
    max_errors = plan.gate_max_error_rate
    gates: dict[str, dict[str, Any]] = {
        "requests": {
            "value": phase.requests,
            "min": settings.CANARY_MIN_REQUESTS,
            "ok": phase.enough,
        },
        "error_rate": {
            "value": _round(phase.error_rate),
            "max": max_errors,
            "ok": phase.error_rate is not None and phase.error_rate <= max_errors,
            "no_data": phase.error_rate is None,
        },
        "p95_ms": {
            "value": _round(p95, 1),
            "max": _round(p95_limit, 1),
            "baseline": _round(base_p95, 1),
            "ok": p95 is not None and p95 <= p95_limit,
            "no_data": p95 is None,  # no latency histogram: never a pass
        },
        "throughput_rps": {
            "value": _round(phase.rps, 2),
            "min": _round(min_rps, 2),
            "ok": min_rps is None or phase.rps >= min_rps,
        },
    }
    judged = phase_judge(rollout, now, plan, source, canary=phase, stable=stable)
    gates["judge"] = judged.gate
    # A gate without data neither passes nor fails: the phase is inconclusive. So is every
    # gate while the canary has too few requests, or when the source could not be asked,
    # and a judge that cannot judge holds the phase unless another gate failed outright.
    down = next((w.error or "unavailable" for w in (phase, stable, baseline) if w.unavailable), "")
    missing = [name for name, gate in gates.items() if gate.get("no_data")]
    failed = [name for name, gate in gates.items() if not gate["ok"] and name not in missing]
    inconclusive = (
        bool(down)
        or not phase.enough
        or (bool(missing) and not failed)
        or (judged.inconclusive and failed == ["judge"])
    )
    unread = "; ".join(stats.error for stats in (phase, stable) if stats.error)
    if down:
        reason = f"metrics source unavailable: {down}"
    elif not phase.enough:
        needed = settings.CANARY_MIN_REQUESTS
        reason = f"{phase.requests} canary requests this phase; {needed} needed"
        reason += f" (metrics: {unread})" if unread else ""
    elif inconclusive and missing:
        reason = f"no data: {', '.join(missing)}"
    elif inconclusive:
        reason = judged.reason
    elif failed:
        reason = f"validation failing: {', '.join(failed)}"
        reason += f" ({judged.reason})" if "judge" in failed else ""
    else:
        reason = "validation passed"
    return {
        "gates": gates,
        "passed": not failed and not inconclusive,
        "inconclusive": inconclusive,
        "unavailable": phase.unavailable,
        "inputs": {
            "phase_window": [_iso(rollout.phase_started_at), _iso(now)],
            "weight": weight,
            "gates": gates,
            "stable": {"requests": stable.requests, "p95_ms": _round(stable.quantile(0.95), 1)},
            "source_error": down or None,
            "metrics_error": unread,
            "judge": judged.details,
        },
        "reason": reason,
    }


def verification_checks(
    rollout: Rollout, since: datetime, seconds: float, open_incidents: int
) -> dict[str, Any]:
    """After a rollback: stable's error rate and p95 under the plan's limits (1%, 250 ms)
    over `seconds` from `since`, and no other incident open."""
    plan = plan_of(rollout)
    minutes = max(1, round(seconds / 60))
    stats = metrics_source().window(
        service=rollout.service,
        variant=Variant.STABLE,
        start=since,
        end=since + timedelta(minutes=minutes),
    )
    error_rate, p95 = stats.error_rate, stats.quantile(0.95)
    enough = stats.requests >= settings.CANARY_MIN_REQUESTS
    max_errors, max_p95 = plan.verify_max_error_rate, plan.verify_max_p95_ms
    checks: dict[str, dict[str, Any]] = {
        "error_rate": {
            "value": error_rate,
            "limit": max_errors,
            "ok": enough and error_rate is not None and error_rate < max_errors,
        },
        "p95_ms": {"value": p95, "limit": max_p95, "ok": p95 is not None and p95 < max_p95},
        "active_incidents": {"value": open_incidents, "ok": open_incidents == 0},
    }
    outcome = (
        VerificationResult.PASSED
        if all(c["ok"] for c in checks.values())
        else (VerificationResult.INCONCLUSIVE if not enough else VerificationResult.FAILED)
    )
    return {"result": str(outcome), "requests": stats.requests, "checks": checks}
