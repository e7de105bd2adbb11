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


class Tier(models.TextChoices):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class Risk(models.TextChoices):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


RISK_ORDER: list[str] = [Risk.LOW, Risk.MEDIUM, Risk.HIGH, Risk.CRITICAL]


class ChangeType(models.TextChoices):
    BREAKING_CHANGE = "breaking_change", "Breaking change"
    UI_REDESIGN = "ui_redesign", "UI redesign"
    FEATURE_DEPRECATION = "feature_deprecation", "Feature deprecation"
    PERFORMANCE_DEGRADATION = "performance_degradation", "Performance degradation (expected)"
    BUG_FIX = "bug_fix", "Bug fix"
    PERFORMANCE_IMPROVEMENT = "performance_improvement", "Performance improvement"
    INTERNAL_REFACTORING = "internal_refactoring", "Internal refactoring"
    SECURITY_PATCH = "security_patch", "Security patch"
    SECURITY_PATCH_USER_ACTION = "security_patch_user_action", "Security patch (user action needed)"
    FEATURE = "feature", "Feature"


class ReleaseState(models.TextChoices):
    PENDING_APPROVAL = "pending_approval"
    APPROVED = "approved"
    DEPLOYED = "deployed"


class ItemStatus(models.TextChoices):
    PENDING = "pending"
    PASSED = "passed"
    FAILED = "failed"


class Decision(models.TextChoices):
    APPROVE = "approve"
    REJECT = "reject"


class Section(models.TextChoices):
    APPROVALS = "approvals", "Required approvals"
    RISK = "risk", "High-risk module checks"
    INFRASTRUCTURE = "infrastructure", "Infrastructure readiness"
    COMMUNICATIONS = "communications", "Communications"
    BACKUPS = "backups", "Backups"


class ChecklistKey(models.TextChoices):
    """The contract's checklist keys; which ones a release needs is data (templates)."""

    CI_TESTS = "ci_tests", "CI tests pass"
    LINT = "lint", "Lint checks pass"
    INTEGRATION_TESTS = "integration_tests", "Integration tests pass"
    E2E_TESTS = "e2e_tests", "E2E tests pass"
    SECURITY_SCAN = "security_scan", "Security scan pass"
    STEWARD_APPROVAL = "steward_approval", "Steward approval"
    COMPLIANCE_REVIEW = "compliance_review", "Compliance review complete"
    ROLLBACK_PLAN = "rollback_plan", "Rollback plan documented"
    SECURITY_AUDIT = "security_audit", "Security audit"
    PCI_COMPLIANCE = "pci_compliance", "PCI compliance"
    FRAUD_DETECTION = "fraud_detection", "Fraud detection review"
    PRIVACY_REVIEW = "privacy_review", "Privacy review"
    BUSINESS_VALIDATION = "business_validation", "Business validation (finance)"
    CANARY_ENV_READY = "canary_env_ready", "Canary environment ready"
    DASHBOARDS_CONFIGURED = "dashboards_configured", "Monitoring dashboards configured"
    ALERT_RULES_ACTIVE = "alert_rules_active", "Alert rules active"
    ROLLBACK_TESTED = "rollback_tested", "Rollback procedure tested"
    ONCALL_NOTIFIED = "oncall_notified", "On-call engineer notified"
    STAKEHOLDERS_NOTIFIED = "stakeholders_notified", "Stakeholders notified"
    STATUS_PAGE_UPDATED = "status_page_updated", "Status page updated"
    CUSTOMER_NOTICE_SENT = "customer_notice_sent", "Customer notice sent"
    DB_BACKUP_VERIFIED = "db_backup_verified", "Database backup verified"
    CONFIG_BACKUP_CREATED = "config_backup_created", "Configuration backup created"
    ARTIFACT_SNAPSHOT_TAKEN = "artifact_snapshot_taken", "Artifact registry snapshot taken"


class RouterKind(models.TextChoices):
    """What moves a service's traffic: only the embedded router is available today."""

    EMBEDDED = "embedded", "Embedded (decision API and middleware)"
    NGINX = "nginx", "nginx"
    HAPROXY = "haproxy", "HAProxy"


class MetricsSource(models.TextChoices):
    """Where a service's canary metrics come from: the push store, or its Prometheus."""

    PUSH = "push", "Push (ingest API)"
    PROMETHEUS = "prometheus", "Prometheus"
