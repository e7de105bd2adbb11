"""The reference data that shapes releases (risk rules, checklist templates, the notice
policy), API tokens and the audit trail in the admin."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from simple_history.admin import SimpleHistoryAdmin

from governance import services
from governance.admin.access import STEWARDS, RoleAccess
from governance.choices import (
    ALL_ROLES,
    ChecklistKey,
    Role,
    Tier,
)
from governance.models import (
    ApiToken,
    AuditEvent,
    ChecklistTemplate,
    NoticePolicy,
    RiskRule,
)
from governance.tokens import token_revoke


class ReassessOnSave:
    """Rules, templates and the notice policy shape open releases: recompute them."""

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        obj._history_user = request.user
        super().save_model(request, obj, form, change)  # type: ignore[misc]
        from governance.audit import audit_append

        audit_append(
            action=f"{obj._meta.model_name}.{'changed' if change else 'created'}",
            actor=request.user,
            obj=obj,
            data={"changed": form.changed_data, "value": str(obj)},
        )
        count = services.releases_reassess_open(actor=request.user, reason=f"{obj} changed")
        self.message_user(request, f"{count} open release(s) reassessed.")  # type: ignore[attr-defined]


class RiskRuleForm(forms.ModelForm):
    class Meta:
        model = RiskRule
        fields = [
            "pattern",
            "risk",
            "approvals_required",
            "extra_checks",
            "description",
            "is_active",
        ]

    def clean_pattern(self) -> str:
        pattern = self.cleaned_data["pattern"].strip()
        if not pattern or pattern.startswith("/") or ".." in pattern.split("/"):
            raise ValidationError("Use a path glob relative to the repository root.")
        return pattern

    def clean_extra_checks(self) -> list[str]:
        checks = self.cleaned_data["extra_checks"] or []
        if not isinstance(checks, list):
            raise ValidationError("A list of checklist keys.")
        unknown = sorted(set(checks) - set(ChecklistKey.values))
        if unknown:
            raise ValidationError(f"Unknown checklist key(s): {', '.join(unknown)}.")
        return checks


@admin.register(RiskRule)
class RiskRuleAdmin(RoleAccess, ReassessOnSave, SimpleHistoryAdmin):
    form = RiskRuleForm
    view_roles = frozenset({Role.COUNCIL, Role.STEWARD, Role.OPS, Role.ENGINEER})
    edit_roles = STEWARDS
    list_display = ["pattern", "risk", "approvals_required", "extra_checks", "is_active"]
    list_filter = ["risk", "is_active"]


class ChecklistTemplateForm(forms.ModelForm):
    class Meta:
        model = ChecklistTemplate
        fields = [
            "key",
            "label",
            "section",
            "signer_roles",
            "tiers",
            "when_notice_required",
            "when_high_risk",
            "position",
        ]

    def clean_signer_roles(self) -> list[str]:
        roles = self.cleaned_data["signer_roles"] or []
        if not isinstance(roles, list) or not roles or set(roles) - ALL_ROLES:
            raise ValidationError(
                f"A non-empty list of roles among {', '.join(sorted(ALL_ROLES))}."
            )
        return roles

    def clean_tiers(self) -> list[str]:
        tiers = self.cleaned_data["tiers"] or []
        if not isinstance(tiers, list) or set(tiers) - set(Tier.values):
            raise ValidationError("A list of tiers: low, medium, high.")
        return tiers


@admin.register(ChecklistTemplate)
class ChecklistTemplateAdmin(RoleAccess, ReassessOnSave, SimpleHistoryAdmin):
    form = ChecklistTemplateForm
    view_roles = frozenset({Role.COUNCIL, Role.STEWARD, Role.OPS, Role.ENGINEER})
    edit_roles = STEWARDS
    list_display = [
        "key",
        "label",
        "section",
        "signer_roles",
        "tiers",
        "when_notice_required",
        "when_high_risk",
    ]
    list_filter = ["section"]


@admin.register(NoticePolicy)
class NoticePolicyAdmin(RoleAccess, ReassessOnSave, SimpleHistoryAdmin):
    view_roles = frozenset({Role.COUNCIL, Role.STEWARD, Role.OPS, Role.ENGINEER})
    edit_roles = STEWARDS
    list_display = ["change_type", "requires_notice"]


@admin.register(ApiToken)
class ApiTokenAdmin(RoleAccess, SimpleHistoryAdmin):
    """Tokens are issued with `manage.py issue_token` (shown once); here they are
    inspected and revoked."""

    view_roles = frozenset({Role.STEWARD})
    edit_roles = frozenset({Role.STEWARD})
    list_display = ["prefix", "user", "name", "scopes", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["user__username", "name", "prefix"]
    readonly_fields = [
        "user",
        "name",
        "prefix",
        "scopes",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    exclude = ["key_hash"]
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    @admin.action(description="Revoke selected tokens", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        revoked = sum(token_revoke(token=token, acting_user=request.user) for token in queryset)
        self.message_user(request, f"Revoked {revoked} token(s).", messages.SUCCESS)


@admin.register(AuditEvent)
class AuditEventAdmin(RoleAccess, admin.ModelAdmin):
    view_roles = frozenset({Role.COUNCIL, Role.STEWARD, Role.OPS})
    list_display = ["seq", "at", "actor", "action", "object_type", "object_id", "release_id"]
    list_filter = ["action"]
    search_fields = ["actor", "action", "object_id"]
    readonly_fields = [field.name for field in AuditEvent._meta.fields]
