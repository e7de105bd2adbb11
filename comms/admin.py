"""Stewards and ops manage the status page here; every save republishes it."""

from __future__ import annotations

from typing import Any

from django import forms
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
from comms.notices import CHANNELS, is_channel, notice_create
from comms.services import component_set_status, incident_settle, request_publish
from comms.templating import check_variables, placeholders
from comms.text import CleanTextForm
from governance.admin.access import RoleAccess
from governance.choices import Role
from portal import clock
from portal.errors import Invalid

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
    form = CleanTextForm
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

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        """A changed status (on the change form or the list's editable column) is set by
        component_set_status, audited like the API's; the other fields are saved here."""
        wanted = obj.status
        if change and "status" in form.changed_data:
            obj.status = form.initial["status"]
        super().save_model(request, obj, form, change)
        if obj.status != wanted:
            component_set_status(obj, wanted, actor=request.user)


class UpdateInline(RoleAccess, admin.StackedInline):
    form = CleanTextForm
    edit_roles = OPERATORS
    model = IncidentUpdate
    extra = 1
    fields = ["status", "body", "display_at"]
    ordering = ["-display_at"]


@admin.register(Incident)
class IncidentAdmin(RoleAccess, Republish, SimpleHistoryAdmin):
    form = CleanTextForm
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

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        added = [update for formset in formsets for update in formset.new_objects]
        incident_settle(form.instance, added=added, actor=request.user, opened=not change)


@admin.register(Maintenance)
class MaintenanceAdmin(RoleAccess, Republish, SimpleHistoryAdmin):
    form = CleanTextForm
    edit_roles = OPERATORS
    list_display = ["name", "status", "scheduled_for", "scheduled_until"]
    list_filter = ["status"]
    fields = ["name", "body", "components", "scheduled_for", "scheduled_until", "status"]
    filter_horizontal = ["components"]


class MessageTemplateForm(CleanTextForm):
    class Meta:
        model = MessageTemplate
        fields = ["key", "name", "subject", "body", "channels", "lead_time_s"]

    def clean_channels(self) -> list[str]:
        channels = self.cleaned_data["channels"]
        if not isinstance(channels, list) or not channels:
            raise forms.ValidationError("A list of one or more channels.")
        unknown = [c for c in channels if not is_channel(c)]
        if unknown:
            raise forms.ValidationError(
                f"Unknown channel(s): {', '.join(map(str, unknown))}. Known: "
                + ", ".join(CHANNELS)
                + ", webhook:NAME."
            )
        return channels


@admin.register(MessageTemplate)
class MessageTemplateAdmin(RoleAccess, SimpleHistoryAdmin):
    """The guide's templates: subject and body with [PLACEHOLDER]s, channels, lead time."""

    form = MessageTemplateForm
    edit_roles = OPERATORS
    list_display = ["key", "name", "channels", "lead_time_s"]


class NoticeForm(CleanTextForm):
    """Compose a notice: a template and a value for each of its placeholders."""

    variables_text = forms.CharField(
        label="Variables",
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "cols": 80}),
    )

    class Meta:
        model = Notice
        fields = ["template", "release", "send_at"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["send_at"].required = False
        self.fields["send_at"].help_text = "Empty: now."
        self.fields["variables_text"].help_text = "One NAME: value per line. " + "; ".join(
            f"{t.key}: {' '.join(f'[{n}]' for n in sorted(placeholders(t.subject, t.body)))}"
            for t in MessageTemplate.objects.all()
        )

    def clean_variables_text(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for number, line in enumerate(self.cleaned_data["variables_text"].splitlines(), 1):
            if not line.strip():
                continue
            name, colon, value = line.partition(":")
            name = name.strip().strip("[]")
            if not colon or not name:
                raise forms.ValidationError(f"Line {number}: write NAME: value.")
            if name in values:
                raise forms.ValidationError(f"Line {number}: {name} is given twice.")
            values[name] = value.strip()
        return values

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or self.cleaned_data
        template, values = cleaned.get("template"), cleaned.get("variables_text")
        if template is not None and values is not None:
            try:
                check_variables((template.subject, template.body), values)
            except Invalid as refused:
                self.add_error("variables_text", refused.detail)
        return cleaned


@admin.register(Notice)
class NoticeAdmin(RoleAccess, admin.ModelAdmin):
    """Compose a notice (sent by a worker at its time); sent notices with each channel's
    result, read-only, failures visible."""

    view_roles = OPERATORS | frozenset({Role.COUNCIL})
    edit_roles = OPERATORS
    list_display = ["subject", "template", "release", "send_at", "state", "attempts", "last_error"]
    list_filter = ["state", "template"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a notice is a record of what was said

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):  # type: ignore[no-untyped-def]
        if obj is None:
            kwargs["form"] = NoticeForm
        return super().get_form(request, obj, change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return [*NoticeForm.Meta.fields, "variables_text"]
        return [f.name for f in Notice._meta.fields if f.name != "id"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [] if obj is None else self.get_fields(request, obj)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        data = form.cleaned_data
        created = notice_create(
            template=data["template"].key,
            variables=data["variables_text"],
            actor=request.user,
            release=data.get("release"),
            send_at=data.get("send_at"),
        )
        obj.pk, obj.subject = created.pk, created.subject

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        pass  # notice_create wrote everything
