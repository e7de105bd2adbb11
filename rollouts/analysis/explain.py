"""A phase's gates in words, for a pause's `detail` and its alert: which metric, its
figures and the limit it missed ("p95 241 ms is 31% over stable (budget 10%)"), or what
had no data."""

from __future__ import annotations

from typing import Any


def _pct(value: float) -> str:
    return f"{value * 100:.2f}%"


def failed_gate(name: str, gate: dict[str, Any]) -> str:
    value: Any = gate.get("value")
    if name == "p95_ms":
        baseline, limit = gate.get("baseline"), gate["max"]
        if baseline:
            over = (value / baseline - 1) * 100
            budget = (limit / baseline - 1) * 100
            return f"p95 {value:.0f} ms is {over:.0f}% over stable (budget {budget:.0f}%)"
        return f"p95 {value:.0f} ms is over the {limit:.0f} ms limit (no stable baseline)"
    if name == "error_rate":
        return f"error rate {_pct(value)} is over the {_pct(gate['max'])} limit"
    if name == "throughput_rps":
        return f"throughput {value:g} rps is under the {gate['min']:g} rps its weight should bring"
    if name == "requests":
        return f"{value} canary requests this phase, {gate['min']} needed"
    limit = ", ".join(f"{key} {gate[key]}" for key in ("max", "min") if gate.get(key) is not None)
    return f"{name} {value}" + (f" ({limit})" if limit else " failed")


MISSING = {
    "p95_ms": "no p95: the canary reported no latency histogram",
    "error_rate": "no error rate: the canary reported no requests",
}


def failed_detail(gates: dict[str, dict[str, Any]]) -> str:
    failed = [n for n, gate in gates.items() if not gate["ok"] and not gate.get("no_data")]
    if failed == ["judge"]:  # the statistical judge alone: its own words name the metrics
        return str(gates["judge"].get("reason") or failed_gate("judge", gates["judge"]))
    return "; ".join(failed_gate(name, gates[name]) for name in failed if name != "judge")


def missing_detail(gates: dict[str, dict[str, Any]], source_error: str | None) -> str:
    """Why a phase is inconclusive: the source, too few requests, or the gates with no data."""
    if source_error:
        return f"the metrics source was unavailable: {source_error}"
    requests = gates.get("requests")
    if requests and not requests["ok"]:
        return failed_gate("requests", requests)
    missing = [
        MISSING.get(name, f"no data for {name}") for name, g in gates.items() if g.get("no_data")
    ]
    judge = gates.get("judge") or {}
    if not missing and not judge.get("ok", True):  # the judge could not judge: it says why
        return str(judge.get("reason", "the statistical judge could not judge this phase"))
    return "; ".join(missing)


def culprits(gates: dict[str, dict[str, Any]], inconclusive: bool) -> list[str]:
    """The gates that held the phase: failing ones, or (inconclusive) those without data."""
    if inconclusive:
        requests = gates.get("requests")
        if requests and not requests["ok"]:
            return ["requests"]
        return [name for name, gate in gates.items() if gate.get("no_data")]
    failed = [name for name, gate in gates.items() if not gate["ok"] and not gate.get("no_data")]
    # The judge beside a failing threshold gate names no other metric than that gate does.
    return failed if failed == ["judge"] else [name for name in failed if name != "judge"]
