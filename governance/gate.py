"""The release gate: one function that the API, the admin and the deploy action all use."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from governance.choices import Decision, ItemStatus, Role
from governance.models import ChecklistItem, Release, Service, Vote
from governance.roles import user_roles
from governance.rules import path_matches


@dataclass(frozen=True)
class VoteView:
    vote: Vote
    stale_reason: str | None

    @property
    def stale(self) -> bool:
        return self.stale_reason is not None

    def as_json(self) -> dict[str, Any]:
        return {
            "voter": self.vote.voter_name,
            "decision": self.vote.decision,
            "comment": self.vote.comment,
            "at": self.vote.cast_at,
            "stale": self.stale,
            "stale_reason": self.stale_reason,
        }


@dataclass(frozen=True)
class Gate:
    ready: bool
    blocking: list[str]
    items: list[ChecklistItem]
    votes: list[VoteView]
    approvals_required: int
    approvals: int
    rejections: int
    warnings: list[str]

    def as_json(self) -> dict[str, Any]:
        return {
            "ready": self.ready,
            "blocking": self.blocking,
            "warnings": self.warnings,
            "checklist": [item_json(item) for item in self.items],
            "approvals": {
                "required": self.approvals_required,
                "approvals": self.approvals,
                "rejections": self.rejections,
                "votes": [vote.as_json() for vote in self.votes],
            },
        }


def item_json(item: ChecklistItem) -> dict[str, Any]:
    return {
        "key": item.key,
        "label": item.label,
        "section": item.section,
        "status": item.status,
        "signer_roles": item.signer_roles,
        "signed_by": item.signed_by_name or None,
        "signed_at": item.signed_at,
        "evidence_url": item.evidence_url or None,
        "note": item.note,
    }


def _stale_reason(vote: Vote, release: Release, now: datetime, expiry: timedelta) -> str | None:
    if vote.revision != release.revision:
        return "the release changed after this vote"
    if vote.cast_at <= now - expiry:
        return "expired"
    voter = vote.voter
    if voter is None or not voter.is_active or Role.COUNCIL not in user_roles(voter):
        return "the voter is no longer a council member"
    if voter.pk == release.created_by_id:
        return "authors cannot approve their own release"
    return None


def coverage_warnings(release: Release) -> list[str]:
    """Changed paths that no module of the release's service covers: shown, never blocking."""
    service = Service.objects.filter(name=release.service).first()
    if service is None:
        return [f"Service {release.service} is not in the service catalogue"]
    return [
        f"{path} is not covered by any module of {service.name}"
        for path in release.changed_paths
        if not any(path_matches(module, path) for module in service.modules)
    ]


def gate_evaluate(release: Release, *, now: datetime, approval_expiry: timedelta) -> Gate:
    items = list(release.items.filter(required=True))
    votes = [
        VoteView(vote, _stale_reason(vote, release, now, approval_expiry))
        for vote in release.votes.select_related("voter")
    ]
    current = [view for view in votes if not view.stale]
    approvals = sum(view.vote.decision == Decision.APPROVE for view in current)
    rejecters = [view.vote.voter_name for view in current if view.vote.decision == Decision.REJECT]

    blocking: list[str] = []
    if release.is_deployed:
        blocking.append("Release is already deployed")
    if approvals < release.approvals_required:
        blocking.append(f"Council approval: {approvals} of {release.approvals_required}")
    if rejecters:
        blocking.append(f"Council approval: rejected by {', '.join(rejecters)}")
    blocking.extend(
        f"{item.label}: {item.status}" for item in items if item.status != ItemStatus.PASSED
    )
    return Gate(
        ready=not blocking,
        blocking=blocking,
        items=items,
        votes=votes,
        approvals_required=release.approvals_required,
        approvals=approvals,
        rejections=len(rejecters),
        warnings=coverage_warnings(release),
    )
