"""Rollouts as the contract shows them."""

from __future__ import annotations

from typing import Any

from rollouts.choices import PauseKind, RolloutState
from rollouts.models import FullPromotion, Rollout


def pause_reason(rollout: Rollout) -> dict[str, Any] | None:
    """Why a paused rollout is paused (kind, detail, at); None when it is not paused."""
    if rollout.state != RolloutState.PAUSED:
        return None
    return {
        "kind": rollout.pause_kind or PauseKind.MANUAL,
        "detail": rollout.pause_detail,
        "at": rollout.paused_at,
    }


def full_promotion_json(request: FullPromotion) -> dict[str, Any]:
    """A full manual promotion waiting for its second member (the 202 answer)."""
    return {
        "awaiting": "second approver",
        "rollout": request.rollout_id,
        "requested_by": request.requested_by_name,
        "approver": request.approver_name or None,
        "expires_at": request.expires_at,
    }


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
        "pause_reason": pause_reason(rollout),
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
