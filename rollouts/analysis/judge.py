"""The engine's one analysis function: from the metrics to a verdict.

`analyse(rollout, now)` evaluates every active abort rule (`rules`) and, at a decision
point, the phase's gates (`validation`), and returns what the engine acts on: a verdict
(healthy/warning/failing/inconclusive), a decision (none/pause/rollback), whether the
phase may advance, and every input it used (values, thresholds, windows), so that the
rollout page and the incident report can say exactly why.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from rollouts.analysis.rules import TickData, evaluate_rules, prepare
from rollouts.analysis.validation import phase_gates
from rollouts.choices import Decision, RuleStatus, Verdict
from rollouts.models import Rollout


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


@dataclass
class Analysis:
    at: datetime
    verdict: str
    action: str = Decision.NONE
    reason: str = ""
    rule: str = ""
    validation_passed: bool = False
    inconclusive: bool = True
    rules: list[dict[str, Any]] = field(default_factory=list)
    inputs: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["at"] = _iso(self.at)
        data["verdict"], data["action"] = str(self.verdict), str(self.action)
        return data


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
                "state": str(state.state),
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
    for action in (Decision.ROLLBACK, Decision.PAUSE):
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
        gates = phase_gates(rollout, now)
        result.inconclusive, result.validation_passed = gates["inconclusive"], gates["passed"]
        result.inputs = gates["inputs"]
        result.reason = result.reason or gates["reason"]
    else:
        result.inconclusive = all(
            r["state"] == RuleStatus.NO_DATA for r in result.rules if r["name"] != "complaints"
        )
        result.reason = "rules evaluated; validation at the phase's end"
    validation_failed = validate and not result.inconclusive and not result.validation_passed
    if RuleStatus.FIRING in states or validation_failed:
        result.verdict = Verdict.FAILING
    elif result.inconclusive:
        result.verdict = Verdict.INCONCLUSIVE
    elif RuleStatus.PENDING in states:
        result.verdict = Verdict.WARNING
    else:
        result.verdict = Verdict.HEALTHY
    return result
