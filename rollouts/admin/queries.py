"""Metric queries in the admin: the PromQL a Prometheus source runs for each figure,
edited by stewards and ops with history, and tried on a service's Prometheus now (for
its running canary, or a version given) before anyone relies on it."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from simple_history.admin import SimpleHistoryAdmin

from governance.admin.access import RoleAccess
from governance.choices import MetricsSource, Role
from governance.models import Service
from rollouts.admin.rollouts import OPERATORS
from rollouts.lifecycle import active_rollout
from rollouts.metrics.selection import ServiceSources
from rollouts.models import MetricQuery


class TestForm(forms.Form):
    service = forms.ModelChoiceField(
        queryset=Service.objects.none(), to_field_name="name", empty_label=None
    )
    version = forms.CharField(
        max_length=64, required=False, help_text="Blank: the service's running canary."
    )
    window_s = forms.IntegerField(
        label="Window (s)",
        min_value=1,
        max_value=86_400,
        initial=60,
        help_text="Never shorter than four scrape intervals.",
    )
    query = forms.CharField(widget=forms.Textarea(attrs={"rows": 4, "cols": 100}))

    def __init__(self, *args: Any, services: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["service"].queryset = services  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        service = data.get("service")
        if service is not None and not data.get("version"):
            running = active_rollout(service.name)
            if running is None:
                raise forms.ValidationError(f"No rollout of {service} is running: name a version.")
            data["version"] = running.version
        return data


@admin.register(MetricQuery)
class MetricQueryAdmin(RoleAccess, SimpleHistoryAdmin):
    view_roles = frozenset({Role.COUNCIL, Role.STEWARD, Role.OPS, Role.ENGINEER})
    edit_roles = OPERATORS
    list_display = ["metric", "scope", "query", "description"]
    list_filter = ["metric", "service"]
    fields = ["service", "metric", "query", "description"]
    change_form_template = "admin/rollouts/metricquery/change_form.html"

    @admin.display(description="service", ordering="service")
    def scope(self, obj: MetricQuery) -> str:
        return obj.service or "every service"

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<path:object_id>/test/",
                self.admin_site.admin_view(self.test_view),
                name="rollouts_metricquery_test",
            ),
            *super().get_urls(),
        ]

    def test_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Run the query (or an edit of it) now and show Prometheus' raw answer or error."""
        query = self.get_object(request, object_id)
        if query is None:
            raise Http404
        if not self.has_change_permission(request, query):
            raise PermissionDenied
        services = Service.objects.filter(metrics=MetricsSource.PROMETHEUS)
        if query.service:
            services = services.filter(name=query.service)
        form = TestForm(
            request.POST if request.method == "POST" else None,
            services=services,
            initial={"query": query.query, "service": query.service or services.first()},
        )
        outcome = None
        if form.is_valid():
            data, service = form.cleaned_data, form.cleaned_data["service"]
            outcome = (
                ServiceSources()
                .prometheus(service.prometheus_url)
                .try_query(
                    data["query"],
                    service=service.name,
                    version=data["version"],
                    window_s=data["window_s"],
                )
            )
            outcome["version"] = data["version"]
        return TemplateResponse(
            request,
            "admin/rollouts/metricquery/test.html",
            {
                **self.admin_site.each_context(request),
                "title": f"Test the {query.metric} query",
                "opts": self.opts,
                "original": query,
                "form": form,
                "no_service": not services.exists(),
                "outcome": outcome,
            },
        )
