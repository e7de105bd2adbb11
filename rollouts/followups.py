"""The guide's follow-ups after a rollback: five actions due within 24 h, with one
reminder each when overdue, closed by whoever did them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import structlog
from django.db import transaction

from comms.alerts import alert_quietly
from governance.audit import audit_append
from portal import clock
from portal.errors import Conflict
from rollouts.choices import PostRollbackKind
from rollouts.models import PostRollbackAction, Rollout

logger = structlog.get_logger(__name__)


def actions_schedule(rollout: Rollout, due: datetime) -> None:
    PostRollbackAction.objects.bulk_create(
        PostRollbackAction(rollout=rollout, kind=kind, due_at=due)
        for kind in PostRollbackKind.values
    )


def actions_remind_overdue() -> int:
    """Mark overdue post-rollback actions as reminded, once, and tell whoever owns them."""
    now = clock.now()
    overdue = PostRollbackAction.objects.filter(done_at=None, reminded_at=None, due_at__lte=now)
    reminded = 0
    for action in overdue.select_related("rollout", "assignee"):
        claimed = PostRollbackAction.objects.filter(pk=action.pk, reminded_at=None).update(
            reminded_at=now
        )
        if claimed != 1:
            continue  # another worker got there first
        reminded += 1
        audit_append(
            action="post_rollback.overdue",
            obj=action,
            release_id=action.rollout.release_id,
            data={
                "kind": action.kind,
                "due_at": action.due_at.isoformat(),
                "assignee": action.assignee.get_username() if action.assignee else None,
            },
        )
        alert_quietly(
            summary=f"Overdue after the rollback of {action.rollout}: {action.get_kind_display()}",
            source="canary-portal/post-rollback",
            severity="warning",
            details={
                "due_at": action.due_at.isoformat(),
                "assignee": action.assignee.get_username() if action.assignee else None,
            },
        )
        logger.warning(
            "post_rollback_action_overdue",
            rollout=action.rollout_id,
            kind=action.kind,
            due_at=action.due_at.isoformat(),
        )
    return reminded


def action_close(*, action: PostRollbackAction, actor: Any, notes: str = "") -> PostRollbackAction:
    with transaction.atomic():
        action = PostRollbackAction.objects.select_for_update().get(pk=action.pk)
        if action.done_at is not None:
            raise Conflict("This action is already done.")
        action.done_at, action.done_by_name = clock.now(), actor.get_username()
        action.notes = notes or action.notes
        action._history_user = actor  # type: ignore[attr-defined]
        action.save()
        audit_append(
            action="post_rollback.done",
            actor=actor,
            obj=action,
            release_id=action.rollout.release_id,
            data={"kind": action.kind},
        )
    return action
