"""Stewards and ops manage the status page here; every save republishes it."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from simple_history.admin import SimpleHistoryAdmin

from comms.models import (
    Component,
    Incident,
    IncidentUpdate,
    Maintenance,
    MessageTemplate,
    Notice,
)
from comms.services import request_publish
from governance.admin import RoleAccess
from governance.choices import Role
from portal import clock

OPERATORS = frozenset({Role.STEWARD, Role.OPS})


class Republish:
    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        obj._history_user = request.user
        if hasattr(obj, "updated_at"):
            obj.updated_at = clock.now()
        super().save_model(request, obj, form, change)  # type: ignore[misc]
        request_publish()

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)  # type: ignore[misc]
        request_publish()


@admin.register(Component)
class ComponentAdmin(RoleAccess, Republish, SimpleHistoryAdmin):
    edit_roles = OPERATORS
    list_display = ["name", "status", "group", "services", "position", "only_show_if_degraded"]
    list_editable = ["status"]
    fields = [
        "name",
        "description",
        "status",
        "position",
        "is_group",
        "group",
        "showcase",
        "only_show_if_degraded",
        "services",
    ]


class UpdateInline(admin.StackedInline):
    model = IncidentUpdate
    extra = 1
    fields = ["status", "body", "display_at"]
    ordering = ["-display_at"]


@admin.register(Incident)
class IncidentAdmin(RoleAccess, Republish, SimpleHistoryAdmin):
    edit_roles = OPERATORS
    list_display = ["name", "status", "impact", "started_at", "resolved_at", "rollout"]
    list_filter = ["status", "impact"]
    fields = [
        "name",
        "status",
        "impact",
        "components",
        "started_at",
        "monitoring_at",
        "resolved_at",
    ]
    filter_horizontal = ["components"]
    inlines = [UpdateInline]


@admin.register(Maintenance)
class MaintenanceAdmin(RoleAccess, Republish, SimpleHistoryAdmin):
    edit_roles = OPERATORS
    list_display = ["name", "status", "scheduled_for", "scheduled_until"]
    list_filter = ["status"]
    fields = ["name", "body", "components", "scheduled_for", "scheduled_until", "status"]
    filter_horizontal = ["components"]


@admin.register(MessageTemplate)
class MessageTemplateAdmin(RoleAccess, SimpleHistoryAdmin):
    """The guide's templates: subject and body with [PLACEHOLDER]s, channels, lead time."""

    edit_roles = OPERATORS
    list_display = ["key", "name", "channels", "lead_time_s"]


@admin.register(Notice)
class NoticeAdmin(RoleAccess, admin.ModelAdmin):
    """Sent notices with each channel's result; failures stay visible here."""

    view_roles = OPERATORS | frozenset({Role.COUNCIL})
    list_display = ["subject", "template", "release", "send_at", "state", "attempts", "last_error"]
    list_filter = ["state", "template"]
    readonly_fields = [f.name for f in Notice._meta.fields]
