"""Writes on releases: create, change, sign off, vote, state. Every one locks the release,
records history and an audit event, and recomputes the release's state from its gate."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from governance.audit import audit_append
from governance.choices import (
    ChangeType,
    Decision,
    ItemStatus,
    ReleaseState,
    Role,
    Tier,
)
from governance.gate import Gate, gate_evaluate
from governance.models import (
    ChecklistItem,
    ChecklistTemplate,
    NoticePolicy,
    Release,
    RiskRule,
    Vote,
)
from governance.roles import user_roles
from governance.rules import assess, normalise_path
from portal import clock
from portal.errors import Conflict, Invalid, NotAllowed, NotFound

# Changes to these make earlier votes stale.
VOTE_INVALIDATING_FIELDS = ("version", "changed_paths", "rollback_plan")
EDITABLE_FIELDS = ("version", "tier", "changed_paths", "change_types", "changelog", "rollback_plan")


def approval_expiry() -> timedelta:
    return clock.scaled(settings.APPROVAL_EXPIRY_DAYS * 86400)


def release_gate(release: Release) -> Gate:
    return gate_evaluate(release, now=clock.now(), approval_expiry=approval_expiry())


def clean_paths(paths: list[str]) -> list[str]:
    cleaned: list[str] = []
    for raw in paths:
        path = normalise_path(raw)
        if not path or "\x00" in path or ".." in path.split("/"):
            raise Invalid(f"Invalid changed path {raw!r}.")
        if path not in cleaned:
            cleaned.append(path)
    return cleaned


def _check_values(tier: str | None, change_types: list[str] | None) -> None:
    if tier is not None and tier not in Tier.values:
        raise Invalid(f"Unknown tier {tier!r}: use {', '.join(Tier.values)}.")
    unknown = sorted(set(change_types or []) - set(ChangeType.values))
    if unknown:
        raise Invalid(f"Unknown change type(s): {', '.join(unknown)}.")


def _reassess(release: Release) -> set[str]:
    """Recompute tier, risk, rules, approvals and notice; return the required item keys."""
    result = assess(
        declared_tier=release.declared_tier,
        changed_paths=release.changed_paths,
        change_types=release.change_types,
        rules=RiskRule.objects.filter(is_active=True),
        templates=ChecklistTemplate.objects.all(),
        notice_types=frozenset(
            NoticePolicy.objects.filter(requires_notice=True).values_list("change_type", flat=True)
        ),
        high_tier_approvals=settings.COUNCIL_APPROVALS_HIGH_TIER,
    )
    release.tier = result.tier
    release.risk = result.risk
    release.matched_rules = result.matched_rules
    release.approvals_required = result.approvals_required
    release.notice_required = result.notice_required
    return set(result.required_keys)


def _sync_items(release: Release, required_keys: set[str]) -> None:
    """Create the items now required; keep the others (and their sign-offs) but mark them."""
    existing = {item.key: item for item in release.items.all()}
    for template in ChecklistTemplate.objects.all():
        required = template.key in required_keys
        item = existing.get(template.key)
        if item is None and required:
            ChecklistItem.objects.create(
                release=release,
                key=template.key,
                label=template.label,
                section=template.section,
                signer_roles=template.signer_roles,
                position=template.position,
            )
        elif item is not None:
            fresh = (template.label, template.section, template.signer_roles, template.position)
            if (item.label, item.section, item.signer_roles, item.position, item.required) != (
                *fresh,
                required,
            ):
                item.label, item.section, item.signer_roles, item.position = fresh
                item.required = required
                item.save()


def _set_state(release: Release, actor: Any, reason: str) -> None:
    if release.is_deployed:
        return
    gate = release_gate(release)
    state = ReleaseState.APPROVED if gate.ready else ReleaseState.PENDING_APPROVAL
    if state == release.state:
        return
    previous, release.state = release.state, state
    release.updated_at = clock.now()
    release._history_user = actor  # type: ignore[attr-defined]
    release.save(update_fields=["state", "updated_at"])
    audit_append(
        action="release.state_changed",
        actor=actor,
        obj=release,
        release_id=release.pk,
        data={"from": previous, "to": state, "reason": reason, "blocking": gate.blocking},
    )


def _locked(release: Release) -> Release:
    return Release.objects.select_for_update().get(pk=release.pk)


def release_create(
    *,
    author: Any,
    service: str,
    version: str,
    tier: str,
    changed_paths: list[str] | None = None,
    change_types: list[str] | None = None,
    changelog: str = "",
    rollback_plan: str = "",
) -> Release:
    _check_values(tier, change_types)
    paths = clean_paths(changed_paths or [])
    try:
        with transaction.atomic():
            release = Release(
                service=service,
                version=version,
                declared_tier=tier,
                tier=tier,
                risk=tier,
                changed_paths=paths,
                change_types=sorted(set(change_types or [])),
                changelog=changelog,
                rollback_plan=rollback_plan,
                created_by=author,
                created_by_name=author.get_username(),
            )
            required_keys = _reassess(release)
            release._history_user = author  # type: ignore[attr-defined]
            release.save()
            _sync_items(release, required_keys)
            audit_append(
                action="release.created",
                actor=author,
                obj=release,
                release_id=release.pk,
                data={
                    "service": service,
                    "version": version,
                    "declared_tier": tier,
                    "tier": release.tier,
                    "risk": release.risk,
                    "matched_rules": [rule["pattern"] for rule in release.matched_rules],
                },
            )
            _set_state(release, author, "created")
    except IntegrityError:
        raise Conflict(f"Release {service} {version} already exists.") from None
    return release


def release_update(*, release: Release, actor: Any, **changes: Any) -> Release:
    unknown = sorted(set(changes) - set(EDITABLE_FIELDS))
    if unknown:
        raise Invalid(f"These fields cannot be changed: {', '.join(unknown)}.")
    _check_values(changes.get("tier"), changes.get("change_types"))
    if "changed_paths" in changes:
        changes["changed_paths"] = clean_paths(changes["changed_paths"])
    if "change_types" in changes:
        changes["change_types"] = sorted(set(changes["change_types"]))
    if "tier" in changes:
        changes["declared_tier"] = changes.pop("tier")
    try:
        with transaction.atomic():
            release = _locked(release)
            if release.is_deployed:
                raise Conflict("The release is already deployed; it can no longer change.")
            diff = {
                name: {"from": getattr(release, name), "to": value}
                for name, value in changes.items()
                if getattr(release, name) != value
            }
            if not diff:
                return release
            for name in diff:
                setattr(release, name, changes[name])
            if any(name in diff for name in VOTE_INVALIDATING_FIELDS):
                release.revision += 1
            release.updated_at = clock.now()
            _sync_items(release, _reassess(release))
            release._history_user = actor  # type: ignore[attr-defined]
            release.save()
            audit_append(
                action="release.updated",
                actor=actor,
                obj=release,
                release_id=release.pk,
                data={"changes": diff, "revision": release.revision},
            )
            _set_state(release, actor, "changed")
    except IntegrityError:
        raise Conflict(
            f"Release {release.service} {changes.get('version')} already exists."
        ) from None
    return release


def releases_reassess_open(*, actor: Any, reason: str) -> int:
    """After a risk rule, template or notice policy changed: recompute undeployed releases."""
    count = 0
    for release_id in Release.objects.exclude(state=ReleaseState.DEPLOYED).values_list(
        "pk", flat=True
    ):
        with transaction.atomic():
            release = Release.objects.select_for_update().get(pk=release_id)
            if release.is_deployed:
                continue
            _sync_items(release, _reassess(release))
            release._history_user = actor  # type: ignore[attr-defined]
            release.save()
            _set_state(release, actor, reason)
            count += 1
    return count


def checklist_sign(
    *,
    release: Release,
    key: str,
    user: Any,
    status: str,
    evidence_url: str = "",
    note: str = "",
) -> ChecklistItem:
    if status not in ItemStatus.values:
        raise Invalid(f"Unknown status {status!r}: use {', '.join(ItemStatus.values)}.")
    with transaction.atomic():
        release = _locked(release)
        item = release.items.filter(key=key, required=True).first()
        if item is None:
            raise NotFound(f"Release {release} does not require the checklist item {key!r}.")
        roles = user_roles(user)
        if not roles & set(item.signer_roles):
            raise NotAllowed(
                f"{item.label} is signed by {' or '.join(item.signer_roles)}; "
                f"you hold {', '.join(sorted(roles)) or 'no role'}."
            )
        if release.is_deployed:
            raise Conflict("The release is already deployed; its checklist is closed.")
        if (
            key == "rollback_plan"
            and status == ItemStatus.PASSED
            and not release.rollback_plan.strip()
        ):
            raise Invalid("The release has no rollback plan to approve: add one first.")
        previous = item.status
        item.status = status
        item.signed_by = user
        item.signed_by_name = user.get_username()
        item.signed_at = clock.now()
        item.evidence_url = evidence_url
        item.note = note
        item._history_user = user  # type: ignore[attr-defined]
        item.save()
        audit_append(
            action="checklist.signed",
            actor=user,
            obj=item,
            release_id=release.pk,
            data={
                "key": key,
                "from": previous,
                "to": status,
                "evidence_url": evidence_url,
                "note": note,
            },
        )
        _set_state(release, user, f"checklist {key} {status}")
    return item


def vote_cast(
    *, release: Release, voter: Any, decision: str, comment: str = ""
) -> tuple[Vote, bool]:
    """Cast or replace a council member's vote; returns (vote, created)."""
    if decision not in Decision.values:
        raise Invalid(f"Unknown decision {decision!r}: use approve or reject.")
    with transaction.atomic():
        release = _locked(release)
        if Role.COUNCIL not in user_roles(voter):
            raise NotAllowed("Only council members vote on releases.")
        if voter.pk == release.created_by_id:
            raise NotAllowed("Authors cannot vote on their own release.")
        if release.is_deployed:
            raise Conflict("The release is already deployed; voting is closed.")
        vote = Vote.objects.filter(release=release, voter=voter).first()
        created = vote is None
        previous = None if vote is None else vote.decision
        vote = vote or Vote(release=release, voter=voter)
        vote.voter_name = voter.get_username()
        vote.decision = decision
        vote.comment = comment
        vote.cast_at = clock.now()
        vote.revision = release.revision
        vote._history_user = voter  # type: ignore[attr-defined]
        vote.save()
        audit_append(
            action="vote.cast" if created else "vote.replaced",
            actor=voter,
            obj=vote,
            release_id=release.pk,
            data={
                "decision": decision,
                "previous": previous,
                "comment": comment,
                "revision": release.revision,
            },
        )
        _set_state(release, voter, f"vote {decision} by {vote.voter_name}")
    return vote, created


def approvals_refresh() -> int:
    """Periodic: releases whose approvals expired go back to pending_approval."""
    changed = 0
    for release_id in Release.objects.filter(state=ReleaseState.APPROVED).values_list(
        "pk", flat=True
    ):
        with transaction.atomic():
            release = Release.objects.select_for_update().get(pk=release_id)
            before = release.state
            _set_state(release, None, "approvals expired or no longer valid")
            changed += release.state != before
    return changed


def release_mark_deployed(*, release: Release, actor: Any) -> Release:
    """Called by the deploy action, inside its transaction: refuses unless the gate is ready."""
    release = _locked(release)
    gate = release_gate(release)
    if not gate.ready:
        raise Conflict("The release gate is not ready.", blocking=gate.blocking)
    release.state = ReleaseState.DEPLOYED
    release.deployed_at = clock.now()
    release._history_user = actor  # type: ignore[attr-defined]
    release.save(update_fields=["state", "deployed_at", "updated_at"])
    audit_append(
        action="release.deployed", actor=actor, obj=release, release_id=release.pk, data={}
    )
    return release
