"""The incident report written at the end of a rollback: what ran, at what weight,
which rule or who aborted it and why, and the timeline."""

from __future__ import annotations

from governance.models import AuditEvent
from rollouts.models import Rollout


def _at(value: object) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "-"  # type: ignore[attr-defined]


def incident_report(rollout: Rollout) -> str:
    rollback = rollout.rollback
    analysis = rollout.last_analysis or {}
    lines = [
        f"Incident report: rollback of {rollout.service} {rollout.version}",
        "",
        f"Release: #{rollout.release_id} {rollout.service} {rollout.version} "
        f"(stable {rollout.stable_version or 'unknown'}), plan {rollout.plan}",
        f"Canary weight when the rollback began: {rollback.from_weight}% "
        f"(phase {rollout.phase_index})",
        f"Trigger: {rollback.trigger}",
        f"Reason: {rollback.reason}",
        f"Mode: {rollback.mode}",
    ]
    if rollback.trigger.startswith("rule") and analysis:
        lines += [
            "",
            "Analysis at the time:",
            f"  verdict {analysis.get('verdict')}: {analysis.get('reason')}",
        ]
        for rule in analysis.get("rules", []):
            lines.append(
                f"  rule {rule.get('name')}: {rule.get('state')} "
                f"(value {rule.get('value')}, threshold {rule.get('threshold')})"
            )
        inputs = analysis.get("inputs", {})
        if inputs:
            lines.append(f"  inputs: {inputs}")
    lines += ["", "Rollback steps:"]
    for step in rollback.steps.all():
        lines.append(
            f"  {step.position + 1}. {step.name}"
            f"{f' {step.weight}%' if step.weight is not None else ''}: {step.status}"
            f" ({step.duration_ms if step.duration_ms is not None else '-'} ms, "
            f"timeout {step.timeout_s}s) {step.detail}"
        )
    lines += ["", "Timeline:"]
    for event in AuditEvent.objects.filter(
        object_type="rollouts.rollout", object_id=str(rollout.pk)
    ).order_by("seq"):
        data = event.data
        lines.append(
            f"  {_at(event.at)} {event.action} by {event.actor} (weight {data.get('weight')}%)"
        )
    return "\n".join(lines) + "\n"
