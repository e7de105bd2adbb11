"""The guide's governance data: risk rules, checklist templates, notice policy.

Loaded by a data migration (with the migration's historical models) and available to
tests whose database was flushed. Idempotent: existing rows are left as edited.
"""

from __future__ import annotations

from typing import Any

ENG, SEC, STW, OPS, FIN, CMP = "engineer", "security", "steward", "ops", "finance", "compliance"
ALL_TIERS = ["low", "medium", "high"]

RISK_RULES = [
    ("src/backend/auth/**", ["security_audit"], "Authentication: security audit"),
    (
        "src/backend/payments/**",
        ["pci_compliance", "fraud_detection"],
        "Payments: PCI compliance and fraud detection",
    ),
    ("src/backend/avatars/**", ["privacy_review"], "Avatars: privacy review"),
    ("**/migrations/**", ["rollback_plan"], "Database migrations: rollback plan required"),
]

# key, label, section, signer roles, tiers, when notice required, when high-risk module
CHECKLIST = [
    ("ci_tests", "CI tests pass", "approvals", [ENG], ALL_TIERS, False, False),
    ("lint", "Lint checks pass", "approvals", [ENG], ["low"], False, False),
    (
        "integration_tests",
        "Integration tests pass",
        "approvals",
        [ENG],
        ["medium", "high"],
        False,
        False,
    ),
    ("e2e_tests", "E2E tests pass", "approvals", [ENG], ["high"], False, False),
    ("security_scan", "Security scan pass", "approvals", [SEC], ["medium", "high"], False, False),
    ("steward_approval", "Steward approval", "approvals", [STW], ["medium"], False, False),
    ("compliance_review", "Compliance review complete", "approvals", [CMP], ["high"], False, False),
    ("rollback_plan", "Rollback plan documented", "approvals", [STW, OPS], ["high"], False, False),
    ("security_audit", "Security audit", "risk", [SEC], [], False, False),
    ("pci_compliance", "PCI compliance", "risk", [CMP], [], False, False),
    ("fraud_detection", "Fraud detection review", "risk", [SEC], [], False, False),
    ("privacy_review", "Privacy review", "risk", [CMP], [], False, False),
    ("business_validation", "Business validation (finance)", "risk", [FIN], [], False, True),
    (
        "canary_env_ready",
        "Canary environment ready",
        "infrastructure",
        [OPS],
        ALL_TIERS,
        False,
        False,
    ),
    (
        "dashboards_configured",
        "Monitoring dashboards configured",
        "infrastructure",
        [OPS],
        ALL_TIERS,
        False,
        False,
    ),
    ("alert_rules_active", "Alert rules active", "infrastructure", [OPS], ALL_TIERS, False, False),
    (
        "rollback_tested",
        "Rollback procedure tested",
        "infrastructure",
        [OPS],
        ALL_TIERS,
        False,
        False,
    ),
    (
        "oncall_notified",
        "On-call engineer notified",
        "infrastructure",
        [OPS],
        ALL_TIERS,
        False,
        False,
    ),
    (
        "stakeholders_notified",
        "Stakeholders notified",
        "communications",
        [STW, OPS],
        ALL_TIERS,
        False,
        False,
    ),
    (
        "status_page_updated",
        "Status page updated",
        "communications",
        [STW, OPS],
        ALL_TIERS,
        False,
        False,
    ),
    ("customer_notice_sent", "Customer notice sent", "communications", [STW, OPS], [], True, False),
    ("db_backup_verified", "Database backup verified", "backups", [OPS], ALL_TIERS, False, False),
    (
        "config_backup_created",
        "Configuration backup created",
        "backups",
        [OPS],
        ALL_TIERS,
        False,
        False,
    ),
    (
        "artifact_snapshot_taken",
        "Artifact registry snapshot taken",
        "backups",
        [OPS],
        ALL_TIERS,
        False,
        False,
    ),
]

# The guide's "When notice is required" / "not required" lists.
NOTICE_POLICY = {
    "breaking_change": True,
    "ui_redesign": True,
    "feature_deprecation": True,
    "performance_degradation": True,
    "security_patch_user_action": True,
    "bug_fix": False,
    "performance_improvement": False,
    "internal_refactoring": False,
    "security_patch": False,
    "feature": False,
}


def seed_governance(
    RiskRule: Any = None, ChecklistTemplate: Any = None, NoticePolicy: Any = None
) -> None:
    if RiskRule is None:
        from governance.models import ChecklistTemplate, NoticePolicy, RiskRule
    for pattern, checks, description in RISK_RULES:
        RiskRule.objects.get_or_create(
            pattern=pattern,
            defaults={
                "risk": "critical",
                "approvals_required": 2,
                "extra_checks": checks,
                "description": description,
            },
        )
    for position, (key, label, section, roles, tiers, notice, high_risk) in enumerate(CHECKLIST):
        ChecklistTemplate.objects.get_or_create(
            key=key,
            defaults={
                "label": label,
                "section": section,
                "signer_roles": roles,
                "tiers": tiers,
                "when_notice_required": notice,
                "when_high_risk": high_risk,
                "position": position,
            },
        )
    for change_type, required in NOTICE_POLICY.items():
        NoticePolicy.objects.get_or_create(
            change_type=change_type, defaults={"requires_notice": required}
        )


_SHARED = ["**/migrations/**"]
SERVICES: dict[str, tuple[list[str], str]] = {
    "frontend": (
        ["frontend/pages/**", "frontend/components/**", "frontend/api/**", *_SHARED],
        "http://127.0.0.1:3000",
    ),
    "backend": (
        [
            "src/backend/api/**",
            "src/backend/services/**",
            "src/backend/models/**",
            "src/backend/auth/**",
            "src/backend/payments/**",
            "src/backend/avatars/**",
            *_SHARED,
        ],
        "http://127.0.0.1:8001",
    ),
}


def seed_services(
    Service: Any = None, services: dict[str, tuple[list[str], str]] = SERVICES
) -> None:
    """The guide's services (or the ones given), each only if missing."""
    if Service is None:
        from governance.models import Service
    for name, (modules, stable_url) in services.items():
        Service.objects.get_or_create(
            name=name, defaults={"modules": modules, "stable_url": stable_url}
        )
