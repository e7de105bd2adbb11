"""Roles and API scopes of the contract, and which roles each scope needs."""

from __future__ import annotations

from django.db import models


class Role(models.TextChoices):
    """Roles are Django groups named by these slugs."""

    COUNCIL = "council", "Council stewards"
    STEWARD = "steward", "Platform stewards"
    OPS = "ops", "Ops guardians"
    FINANCE = "finance", "Finance team"
    SECURITY = "security", "Security team"
    COMPLIANCE = "compliance", "Compliance"
    ENGINEER = "engineer", "Release engineers"


class Scope(models.TextChoices):
    RELEASES_WRITE = "releases:write"
    CHECKLIST_SIGN = "checklist:sign"
    VOTES_WRITE = "votes:write"
    CANARY_OPERATE = "canary:operate"
    CANARY_ABORT = "canary:abort"
    METRICS_WRITE = "metrics:write"
    COMMS_WRITE = "comms:write"
    STATUS_WRITE = "status:write"
    READ = "read"


ALL_ROLES = frozenset(Role.values)

# The roles a user needs (any one of them) to use a scope. A view may narrow this
# further for one action (promote: council or steward), never widen it.
SCOPE_ROLES: dict[str, frozenset[str]] = {
    Scope.RELEASES_WRITE: frozenset({Role.ENGINEER}),
    Scope.CHECKLIST_SIGN: frozenset(
        {Role.STEWARD, Role.OPS, Role.FINANCE, Role.SECURITY, Role.COMPLIANCE, Role.ENGINEER}
    ),
    Scope.VOTES_WRITE: frozenset({Role.COUNCIL}),
    Scope.CANARY_OPERATE: frozenset({Role.ENGINEER, Role.COUNCIL, Role.STEWARD, Role.OPS}),
    Scope.CANARY_ABORT: frozenset({Role.COUNCIL, Role.STEWARD, Role.OPS}),
    Scope.METRICS_WRITE: ALL_ROLES,
    Scope.COMMS_WRITE: frozenset({Role.STEWARD, Role.OPS}),
    Scope.STATUS_WRITE: frozenset({Role.STEWARD, Role.OPS}),
    Scope.READ: ALL_ROLES,
}
