"""The services' admin: the catalogue (modules, URLs, the router and its state, the
metrics source) and the hooks that stop a canary and clear its cache."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import URLField
from django.http import HttpRequest
from simple_history.admin import SimpleHistoryAdmin

from governance.admin.access import RoleAccess
from governance.choices import Role, RouterKind
from governance.models import Service
from governance.roles import may_act
from rollouts.admin.rollouts import OPERATORS
from rollouts.lifecycle import active_rollout
from rollouts.metrics.selection import metrics_problems
from rollouts.models import ServiceHooks
from rollouts.services_json import router_state
from rollouts.traffic.checks import ROUTER_OPTIONS, router_problems
from rollouts.traffic.router import RouterError
from rollouts.traffic.truth import serve_current


@admin.register(ServiceHooks)
class ServiceHooksAdmin(RoleAccess, SimpleHistoryAdmin):
    view_roles = frozenset({Role.COUNCIL, Role.STEWARD, Role.OPS, Role.ENGINEER})
    edit_roles = OPERATORS
    list_display = [
        "service",
        "stop_command",
        "stop_webhook",
        "clear_cache_command",
        "clear_cache_webhook",
    ]


ROUTER_FIELDS = ["router", *ROUTER_OPTIONS]
METRICS_FIELDS = ["metrics", "prometheus_url"]


class ServiceForm(forms.ModelForm):
    def _post_clean(self) -> None:
        super()._post_clean()  # type: ignore[misc]
        for problem in router_problems(self.instance) + metrics_problems(self.instance):
            self.add_error(None, problem.replace("--", "").replace("-", " "))
        busy = active_rollout(self.instance.name) if self.instance.pk else None
        if busy is not None and any(f in self.changed_data for f in ROUTER_FIELDS):
            self.add_error(None, f"Rollout {busy.pk} is {busy.state}: change the router after it.")

    def clean_modules(self) -> list[str]:
        modules = self.cleaned_data["modules"]
        if not isinstance(modules, list) or not all(
            isinstance(glob, str) and glob.strip() for glob in modules
        ):
            raise ValidationError('A list of non-empty glob patterns, e.g. ["src/api/**"].')
        return modules


@admin.register(Service)
class ServiceAdmin(RoleAccess, SimpleHistoryAdmin):
    """Stewards and ops edit modules and URLs; the router and its commands and sockets, and
    the metrics source and its Prometheus, are set by superusers (who may edit the whole
    service: its URLs are the router's too) or `service_set`."""

    form = ServiceForm
    formfield_overrides = {URLField: {"assume_scheme": "http"}}
    view_roles = frozenset({Role.COUNCIL, Role.STEWARD, Role.OPS, Role.ENGINEER})
    edit_roles = OPERATORS
    list_display = ["name", "stable_url", "canary_url", "router", "router_state", "metrics"]
    fields = [
        *("name", "modules", "stable_url", "canary_url"),
        *ROUTER_FIELDS,
        *METRICS_FIELDS,
        "router_state",
    ]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_change_permission(request, obj) or request.user.is_superuser

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        readonly = ["router_state"]
        if request.user.is_superuser:  # the router's settings include its URLs
            return readonly
        readonly += ROUTER_FIELDS + METRICS_FIELDS
        if not may_act(request.user, self.edit_roles):
            readonly += ["name", "modules", "stable_url", "canary_url"]
        return readonly

    def save_model(self, request: HttpRequest, obj: Service, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if obj.router == RouterKind.EMBEDDED:
            return
        try:
            detail = serve_current(obj.name)
        except (RouterError, TimeoutError) as exc:
            self.message_user(request, f"The router did not confirm: {exc}", messages.ERROR)
        else:
            self.message_user(request, detail, messages.INFO)

    @admin.display(description="router state")
    def router_state(self, obj: Service) -> str:
        state = router_state(obj)
        applied = state["applied_at"]
        when = f", applied {applied:%Y-%m-%d %H:%M:%S}" if applied else ""
        if state["ok"]:
            return f"{state['weight']}% to the canary, confirmed{when}"
        return (
            f"NOT CONFIRMED: {state['pending_weight']}% waits ({state['error']}); "
            f"the router serves {state['weight']}%{when}; next attempt "
            f"{state['next_attempt_at']:%H:%M:%S}"
        )
