"""Rollouts in the admin: watch them, and pause, resume, promote or abort them through
the same services as the API (with a confirmation page, and a reason for aborts)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from simple_history.admin import SimpleHistoryAdmin

from governance.admin.access import STEWARDS, RoleAccess
from governance.choices import Role
from governance.roles import may_act
from portal import clock
from portal.errors import Refused
from rollouts import followups, lifecycle, promotion
from rollouts.models import (
    AbortRule,
    AlertRoute,
    ComplaintReport,
    ConversionTarget,
    MetricThreshold,
    Plan,
    PostRollbackAction,
    Rollout,
    Segment,
)

OPERATORS = frozenset({Role.STEWARD, Role.OPS})
ABORTERS = frozenset({Role.COUNCIL, Role.STEWARD, Role.OPS})

# action name → (roles allowed, label, needs a reason, service call)
ACTIONS: dict[str, tuple[frozenset[str], str, bool, Callable[..., Any]]] = {
    "pause_selected": (
        OPERATORS,
        "Pause",
        False,
        lambda r, u, reason: lifecycle.rollout_pause(rollout=r, actor=u, reason=reason),
    ),
    "resume_selected": (
        OPERATORS,
        "Resume",
        False,
        lambda r, u, reason: lifecycle.rollout_resume(rollout=r, actor=u),
    ),
    "promote_selected": (
        STEWARDS,
        "Promote to the next phase",
        False,
        lambda r, u, reason: promotion.rollout_promote(
            rollout=r, actor=u, mode="manual", confirmed=True
        ),
    ),
    "promote_full_selected": (
        STEWARDS,
        "Promote fully (a second member confirms within 15 minutes)",
        False,
        lambda r, u, reason: _full(r, u),
    ),
    "abort_selected": (
        ABORTERS,
        "Abort and roll back",
        True,
        lambda r, u, reason: lifecycle.rollout_abort(rollout=r, actor=u, reason=reason),
    ),
}


def _full(rollout: Rollout, user: Any) -> str:
    asked = promotion.rollout_promote_full(rollout=rollout, actor=user, confirmed=True)
    if asked.confirmed_at is None:
        return (
            f"full promotion asked by {asked.requested_by_name}: awaiting a second member "
            f"(council or steward) until {asked.expires_at:%H:%M:%S %Z}."
        )
    return f"promoted by {asked.requested_by_name} and {asked.confirmed_by_name}."


def _confirmable(name: str) -> Any:
    _roles, label, needs_reason, call = ACTIONS[name]

    def action(modeladmin: RolloutAdmin, request: HttpRequest, queryset: QuerySet[Rollout]) -> Any:
        reason = request.POST.get("reason", "").strip()
        if "confirm" not in request.POST or (needs_reason and not reason):
            return TemplateResponse(
                request,
                "admin/rollouts/rollout/confirm_action.html",
                {
                    **modeladmin.admin_site.each_context(request),
                    "title": f"{label}: please confirm",
                    "label": label,
                    "action": name,
                    "rollouts": queryset,
                    "needs_reason": needs_reason,
                    "missing_reason": "confirm" in request.POST,
                    "opts": Rollout._meta,
                    "action_checkbox_name": ACTION_CHECKBOX_NAME,
                },
            )
        for rollout in queryset:
            try:
                said = call(rollout, request.user, reason)
                done = said if isinstance(said, str) else f"{label.lower()} done."
                modeladmin.message_user(
                    request, f"{rollout.service} {rollout.version}: {done}", messages.SUCCESS
                )
            except Refused as exc:
                modeladmin.message_user(request, f"{rollout}: {exc.detail}", messages.ERROR)
        return None

    action.__name__ = name
    return admin.action(description=f"{label} selected rollouts")(action)


@admin.register(Rollout)
class RolloutAdmin(RoleAccess, SimpleHistoryAdmin):
    list_display = [
        "service",
        "version",
        "state",
        "pause_kind",
        "weight",
        "phase_index",
        "plan",
        "started_by_name",
        "started_at",
        "ended_at",
    ]
    list_filter = ["state", "pause_kind", "service", "plan"]
    search_fields = ["service", "version"]
    change_form_template = "admin/rollouts/rollout/change_form.html"
    actions = [_confirmable(name) for name in ACTIONS]
    fields = [
        "release",
        "service",
        "version",
        "stable_version",
        "plan",
        "state",
        "weight",
        "phase_index",
        "phase_started_at",
        "phase_ends_at",
        "auto_promote",
        "pause_kind",
        "pause_detail",
        "paused_at",
        "started_by_name",
        "started_at",
        "ended_at",
    ]

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        for name, (allowed, *_rest) in ACTIONS.items():
            if not may_act(request.user, allowed):  # the API's check, superusers included
                actions.pop(name, None)
        return actions

    def action_roles(self, name: str) -> frozenset[str]:
        return ACTIONS[name][0] if name in ACTIONS else frozenset()

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        rollout = self.get_object(request, object_id)
        if rollout is not None:
            extra_context = {
                **(extra_context or {}),
                "phases": rollout.phases.all(),
                "rollback": getattr(rollout, "rollback", None),
                "post_actions": rollout.actions.select_related("assignee"),
                "full_promotions": rollout.full_promotions.all()[:5],
                "now": clock.now(),
            }
        return super().change_view(request, object_id, form_url, extra_context)


@admin.register(PostRollbackAction)
class PostRollbackActionAdmin(RoleAccess, SimpleHistoryAdmin):
    """Follow-ups due within 24 h of a rollback: assign them, close them."""

    view_roles = frozenset({Role.COUNCIL, Role.STEWARD, Role.OPS, Role.ENGINEER})
    edit_roles = frozenset({Role.COUNCIL, Role.STEWARD, Role.OPS})
    list_display = [
        "kind",
        "rollout",
        "due_at",
        "assignee",
        "done_at",
        "done_by_name",
        "reminded_at",
    ]
    list_filter = ["kind", ("done_at", admin.EmptyFieldListFilter)]
    fields = [
        "rollout",
        "kind",
        "due_at",
        "assignee",
        "notes",
        "done_at",
        "done_by_name",
        "reminded_at",
    ]
    readonly_fields = ["rollout", "kind", "due_at", "done_at", "done_by_name", "reminded_at"]
    actions = ["mark_done"]

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    @admin.action(description="Mark selected actions done", permissions=["change"])
    def mark_done(self, request: HttpRequest, queryset: QuerySet[PostRollbackAction]) -> None:
        for action in queryset:
            try:
                followups.action_close(action=action, actor=request.user)
            except Refused as exc:
                self.message_user(request, f"{action}: {exc.detail}", messages.WARNING)


@admin.register(Plan)
class PlanAdmin(RoleAccess, SimpleHistoryAdmin):
    edit_roles = STEWARDS
    list_display = ["name", "description", "monitoring_s", "check_every_s"]


@admin.register(Segment)
class SegmentAdmin(RoleAccess, SimpleHistoryAdmin):
    edit_roles = STEWARDS
    list_display = ["name", "attribute", "value", "share_pct", "is_active"]


@admin.register(AbortRule)
class AbortRuleAdmin(RoleAccess, SimpleHistoryAdmin):
    view_roles = frozenset({Role.COUNCIL, Role.STEWARD, Role.OPS, Role.ENGINEER})
    edit_roles = STEWARDS
    list_display = [
        "name",
        "metric",
        "operator",
        "threshold",
        "duration_s",
        "window_s",
        "action",
        "stakeholders",
        "is_active",
    ]
    list_filter = ["action", "is_active"]


@admin.register(AlertRoute)
class AlertRouteAdmin(RoleAccess, SimpleHistoryAdmin):
    """Who hears about a pause or rollback on a metric; a metric with no route alerts
    on-call."""

    view_roles = frozenset({Role.COUNCIL, Role.STEWARD, Role.OPS, Role.FINANCE})
    edit_roles = STEWARDS
    list_display = ["metric", "audience"]
    list_filter = ["audience"]


@admin.register(MetricThreshold)
class MetricThresholdAdmin(RoleAccess, SimpleHistoryAdmin):
    edit_roles = STEWARDS
    list_display = ["key", "warning", "critical", "higher_is_worse"]


@admin.register(ConversionTarget)
class ConversionTargetAdmin(RoleAccess, SimpleHistoryAdmin):
    edit_roles = STEWARDS | frozenset({Role.FINANCE})
    list_display = ["path", "baseline", "min_acceptable"]


@admin.register(ComplaintReport)
class ComplaintReportAdmin(RoleAccess, admin.ModelAdmin):
    """Support's count of customer complaints about a version; the complaints rule adds
    these to the `complaints` reported with metrics."""

    edit_roles = frozenset({Role.COUNCIL, Role.STEWARD, Role.OPS})
    list_display = ["service", "version", "count", "at", "reported_by", "note"]
    list_filter = ["service"]
    fields = ["service", "version", "count", "at", "note"]

    def save_model(
        self, request: HttpRequest, obj: ComplaintReport, form: Any, change: bool
    ) -> None:
        obj.reported_by = request.user.get_username()
        super().save_model(request, obj, form, change)
