"""Rollouts as the contract shows them."""

from __future__ import annotations

from typing import Any

from rollouts.choices import RolloutState
from rollouts.models import Rollout


def rollout_json(rollout: Rollout) -> dict[str, Any]:
    phases = list(rollout.phases.all())
    analysis = rollout.last_analysis
    rollback = getattr(rollout, "rollback", None)
    return {
        "id": rollout.pk,
        "release": rollout.release_id,
        "service": rollout.service,
        "version": rollout.version,
        "stable_version": rollout.stable_version or None,
        "state": rollout.state,
        "plan": rollout.plan,
        "phase": {
            "index": rollout.phase_index,
            "weight": phases[rollout.phase_index].weight if phases else rollout.weight,
            "started_at": rollout.phase_started_at,
            "ends_at": None if rollout.state == RolloutState.PAUSED else rollout.phase_ends_at,
        },
        "weight": rollout.weight,
        "phases": [
            {
                "index": p.index,
                "weight": p.weight,
                "duration_s": p.duration_s,
                "started_at": p.started_at,
                "ended_at": p.ended_at,
                "verdict": p.verdict or None,
            }
            for p in phases
        ],
        "last_analysis": analysis,
        "rollback": None
        if rollback is None
        else {
            "mode": rollback.mode,
            "reason": rollback.reason,
            "trigger": rollback.trigger,
            "operator": rollback.operator or None,
            "from_weight": rollback.from_weight,
            "started_at": rollback.started_at,
            "finished_at": rollback.finished_at,
            "steps": [
                {
                    "name": s.name,
                    "weight": s.weight,
                    "status": s.status,
                    "timeout_s": s.timeout_s,
                    "started_at": s.started_at,
                    "finished_at": s.finished_at,
                    "duration_ms": s.duration_ms,
                    "detail": s.detail,
                }
                for s in rollback.steps.all()
            ],
            "verify_at": rollback.verify_at,
            "verification": rollback.verification,
        },
        "auto_promote": rollout.auto_promote,
        "pause_reason": rollout.pause_reason or None,
        "started_at": rollout.started_at,
        "ended_at": rollout.ended_at,
        "started_by": rollout.started_by_name,
        "incident_report": rollout.incident_report or None,
        "post_rollback_actions": [
            {
                "kind": a.kind,
                "due_at": a.due_at,
                "done_at": a.done_at,
                "assignee": a.assignee.get_username() if a.assignee else None,
            }
            for a in rollout.actions.select_related("assignee")
        ],
    }
