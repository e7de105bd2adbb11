"""Releases in the admin: the gate, checklist sign-offs, votes and deploy, through the
same services as the API."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST
from simple_history.admin import SimpleHistoryAdmin

from governance import services
from governance.admin.access import SIGNERS_ONLY, RoleAccess
from governance.choices import (
    ChangeType,
    Decision,
    ItemStatus,
    Role,
)
from governance.models import (
    AuditEvent,
    ChecklistItem,
    Release,
)
from governance.roles import may_act, user_roles
from portal.errors import Refused


class ReleaseForm(forms.ModelForm):
    paths = forms.CharField(
        label="Changed paths",
        required=False,
        help_text="One path per line.",
        widget=forms.Textarea(attrs={"rows": 6, "cols": 80}),
    )
    types = forms.MultipleChoiceField(
        label="Change types",
        required=False,
        choices=ChangeType.choices,
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = Release
        fields = ["service", "version", "declared_tier", "changelog", "rollback_plan"]
        labels = {"declared_tier": "Declared tier"}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk and "service" in self.fields:
            self.fields["service"].disabled = True
            self.initial["paths"] = "\n".join(self.instance.changed_paths)
            self.initial["types"] = self.instance.change_types

    def clean_paths(self) -> list[str]:
        try:
            return services.clean_paths(self.cleaned_data["paths"].splitlines())
        except Refused as exc:
            raise ValidationError(exc.detail) from None


def _badge(value: str, tone: str) -> str:
    return format_html('<span class="badge badge-{}">{}</span>', tone, value)


class GateFilter(admin.SimpleListFilter):
    title = "gate"
    parameter_name = "gate"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("ready", "Ready"), ("blocked", "Blocked")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Release]) -> QuerySet[Release]:
        if self.value() == "ready":
            return queryset.filter(state="approved")
        if self.value() == "blocked":
            return queryset.filter(state="pending_approval")
        return queryset


@admin.register(Release)
class ReleaseAdmin(RoleAccess, SimpleHistoryAdmin):
    form = ReleaseForm
    edit_roles = frozenset({Role.ENGINEER})
    list_display = [
        "__str__",
        "tier_badge",
        "risk_badge",
        "gate_badge",
        "state",
        "created_by_name",
        "created_at",
    ]
    list_filter = ["state", GateFilter, "tier", "risk", "service"]
    search_fields = ["service", "version", "created_by_name"]
    history_list_display = ["state", "tier", "risk", "revision"]
    change_form_template = "admin/governance/release/change_form.html"
    actions = ["approve_selected", "reject_selected"]

    def action_roles(self, name: str) -> frozenset[str]:
        return frozenset({Role.COUNCIL})

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        if not may_act(request.user, frozenset({Role.COUNCIL})):
            actions.pop("approve_selected", None)
            actions.pop("reject_selected", None)
        return actions

    @admin.action(description="Approve selected releases (council)")
    def approve_selected(self, request: HttpRequest, queryset: QuerySet[Release]) -> Any:
        return self._vote_on(request, queryset, Decision.APPROVE)

    @admin.action(description="Reject selected releases (council)")
    def reject_selected(self, request: HttpRequest, queryset: QuerySet[Release]) -> Any:
        return self._vote_on(request, queryset, Decision.REJECT)

    def _vote_on(self, request: HttpRequest, queryset: QuerySet[Release], decision: str) -> Any:
        """First a page asking for the comment; then one vote per release."""
        comment = request.POST.get("comment", "").strip()
        if "confirm" not in request.POST or not comment:
            return TemplateResponse(
                request,
                "admin/governance/release/vote_confirmation.html",
                {
                    **self.admin_site.each_context(request),
                    "title": f"{decision.capitalize()} releases",
                    "releases": queryset,
                    "decision": decision,
                    "action": f"{decision}_selected",
                    "missing_comment": "confirm" in request.POST,
                    "opts": self.model._meta,
                    "action_checkbox_name": ACTION_CHECKBOX_NAME,
                },
            )
        for release in queryset:
            try:
                services.vote_cast(
                    release=release, voter=request.user, decision=decision, comment=comment
                )
                self.message_user(request, f"{release}: {decision} recorded.", messages.SUCCESS)
            except Refused as exc:
                self.message_user(request, f"{release}: {exc.detail}", messages.ERROR)
        return None

    @admin.display(description="tier", ordering="tier")
    def tier_badge(self, release: Release) -> str:
        tone = {"low": "ok", "medium": "warn", "high": "bad"}[release.tier]
        return _badge(release.tier, tone)

    @admin.display(description="risk", ordering="risk")
    def risk_badge(self, release: Release) -> str:
        tone = {"low": "ok", "medium": "warn", "high": "bad", "critical": "crit"}[release.risk]
        return _badge(release.risk, tone)

    @admin.display(description="gate")
    def gate_badge(self, release: Release) -> str:
        if release.is_deployed:
            return _badge("deployed", "muted")
        gate = services.release_gate(release)
        return (
            _badge("ready", "ok")
            if gate.ready
            else _badge(f"blocked ({len(gate.blocking)})", "bad")
        )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Release]:
        queryset = super().get_queryset(request)
        roles = user_roles(request.user)
        if request.user.is_superuser or not roles or not roles <= SIGNERS_ONLY:
            return queryset
        mine = {
            release_id
            for release_id, signers in ChecklistItem.objects.filter(required=True).values_list(
                "release_id", "signer_roles"
            )
            if roles & set(signers)
        }
        return queryset.filter(pk__in=mine)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and obj.is_deployed:
            return False
        return super().has_change_permission(request, obj)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is not None and not self.has_change_permission(request, obj):
            return [
                "service",
                "version",
                "declared_tier",
                "tier",
                "risk",
                "state",
                "changed_paths",
                "change_types",
                "changelog",
                "rollback_plan",
                "created_by_name",
                "created_at",
                "deployed_at",
            ]
        return super().get_fields(request, obj)

    def save_model(self, request: HttpRequest, obj: Release, form: Any, change: bool) -> None:
        data = form.cleaned_data
        fields = {
            "version": data["version"],
            "tier": data["declared_tier"],
            "changed_paths": data["paths"],
            "change_types": data["types"],
            "changelog": data["changelog"],
            "rollback_plan": data["rollback_plan"],
        }
        if change:
            services.release_update(release=obj, actor=request.user, **fields)
        else:
            created = services.release_create(
                author=request.user, service=data["service"], **fields
            )
            obj.pk = created.pk
        obj.refresh_from_db()

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<int:pk>/vote/",
                self.admin_site.admin_view(require_POST(self.vote_view)),
                name="governance_release_vote",
            ),
            path(
                "<int:pk>/sign/",
                self.admin_site.admin_view(require_POST(self.sign_view)),
                name="governance_release_sign",
            ),
            *super().get_urls(),
        ]

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        release = self.get_object(request, object_id)
        if release is not None:
            extra_context = {**(extra_context or {}), **self._panel(request, release)}
        return super().change_view(request, object_id, form_url, extra_context)

    def _panel(self, request: HttpRequest, release: Release) -> dict[str, Any]:
        roles = user_roles(request.user)
        gate = services.release_gate(release)
        signer_only = not request.user.is_superuser and bool(roles) and roles <= SIGNERS_ONLY
        items = [item for item in gate.items if not signer_only or roles & set(item.signer_roles)]
        return {
            "gate": gate,
            "gate_items": items,
            "signable_items": []
            if release.is_deployed
            else [item for item in gate.items if roles & set(item.signer_roles)],
            "can_vote": Role.COUNCIL in roles
            and request.user.pk != release.created_by_id
            and not release.is_deployed,
            "item_statuses": ItemStatus.choices,
            "activity": AuditEvent.objects.filter(release_id=release.pk).order_by("-seq")[:25],
        }

    def vote_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        release = get_object_or_404(self.get_queryset(request), pk=pk)
        decision = request.POST.get("decision", "")
        comment = request.POST.get("comment", "").strip()
        if not comment:
            self.message_user(request, "A vote needs a comment.", messages.ERROR)
        else:
            try:
                services.vote_cast(
                    release=release, voter=request.user, decision=decision, comment=comment
                )
                verb = "approved" if decision == Decision.APPROVE else "rejected"
                self.message_user(request, f"You {verb} {release}.", messages.SUCCESS)
            except Refused as exc:
                self.message_user(request, exc.detail, messages.ERROR)
        return HttpResponseRedirect(reverse("admin:governance_release_change", args=[pk]))

    def sign_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        release = get_object_or_404(self.get_queryset(request), pk=pk)
        evidence = request.POST.get("evidence_url", "").strip()
        try:
            if evidence and not evidence.startswith(("https://", "http://")):
                raise Refused("The evidence must be an http(s) URL.")
            forms.URLField(required=False, assume_scheme="https").clean(evidence)
            item = services.checklist_sign(
                release=release,
                key=request.POST.get("key", ""),
                user=request.user,
                status=request.POST.get("status", ""),
                evidence_url=evidence,
                note=request.POST.get("note", "").strip(),
            )
            self.message_user(request, f"{item.label}: {item.status}.", messages.SUCCESS)
        except Refused as exc:
            self.message_user(request, exc.detail, messages.ERROR)
        except ValidationError as exc:
            self.message_user(request, " ".join(exc.messages), messages.ERROR)
        return HttpResponseRedirect(reverse("admin:governance_release_change", args=[pk]))
