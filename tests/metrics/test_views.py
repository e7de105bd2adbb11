"""What people see of a Prometheus-read service: the live comparison and the dashboard
read it through the service's own source, and say so when it cannot be read; metric
queries are edited in the admin and tested there against the service's Prometheus."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core.management import call_command

from governance.models import Release, Service
from rollouts import lifecycle
from rollouts.models import MetricQuery, Rollout
from tests.conftest import logged_in
from tests.metrics.conftest import CANARY, FAILING, STABLE, Stack
from tests.rollouts.conftest import approved
from tests.servers import closed_port

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("prometheus_settings")]
__all__ = ["approved"]  # the fixture


def use_prometheus(url: str) -> None:
    call_command("service_set", "backend", "--metrics=prometheus", f"--prometheus-url={url}")


@pytest.fixture
def failing_rollout(approved: Callable[..., Release], team: dict[str, Any]) -> Rollout:
    return lifecycle.rollout_start(
        release=approved(version=FAILING), actor=team["erin"], stable_version=STABLE
    )


def test_the_comparison_and_the_dashboard_read_the_services_prometheus(
    stack: Stack,
    failing_rollout: Rollout,
    team: dict[str, Any],
    api: Callable[..., Any],
    token_for: Callable[..., str],
) -> None:
    use_prometheus(stack.prometheus.url)
    client = api(token_for(team["erin"], "read"))
    figures = client.get(f"/ops/canary/metrics?version={FAILING}").json()
    assert figures["metrics_source"] == {"problems": [], "unavailable": False}
    assert figures["requests"]["canary"] > 0 and figures["requests"]["stable"] > 0
    recent = figures["error_rate"]["5m"]
    assert 0.05 <= recent["canary"] <= 0.16 and recent["level"] == "critical"
    assert recent["stable"] == 0.0  # stable is its own version, v2.0.0
    assert 0 < figures["latency_ms"]["canary"]["p95"] <= 5
    page = logged_in(team["oscar"]).get(f"/rollouts/{failing_rollout.pk}/dashboard/")
    text = page.content.decode()
    assert page.status_code == 200 and "canary error %" in text and "stable p95" in text
    assert 'id="metrics-source"' not in text

    use_prometheus(f"http://127.0.0.1:{closed_port()}")
    figures = client.get(f"/ops/canary/metrics?version={FAILING}").json()
    assert figures["metrics_source"]["unavailable"] is True
    assert figures["error_rate"]["5m"] == {"canary": None, "stable": None, "level": "no_data"}
    assert figures["requests"] == {"canary": 0, "stable": 0}
    text = logged_in(team["oscar"]).get(f"/rollouts/{failing_rollout.pk}/dashboard/")
    assert "unreachable" in text.content.decode()


def test_a_query_is_edited_with_history_and_one_without_a_version_is_refused(
    team: dict[str, Any],
) -> None:
    query = MetricQuery.objects.get(service="", metric="requests")
    url = f"/admin/rollouts/metricquery/{query.pk}/change/"
    form = {"service": "", "metric": "requests", "query": "sum(x)", "description": ""}
    assert logged_in(team["erin"]).post(url, form).status_code == 403
    refused = logged_in(team["oscar"]).post(url, form)
    assert refused.status_code == 200 and "Name {version}" in refused.content.decode()
    changed = 'sum(increase(requests_served{job="{service}",v="{version}"}[{window}]))'
    assert logged_in(team["oscar"]).post(url, {**form, "query": changed}).status_code == 302
    query.refresh_from_db()
    assert query.query == changed and query.history.latest().history_user == team["oscar"]


def test_test_this_query_shows_prometheus_answer_or_its_error(
    stack: Stack, team: dict[str, Any], failing_rollout: Rollout
) -> None:
    use_prometheus(stack.prometheus.url)
    query = MetricQuery.objects.get(service="", metric="errors")
    change = logged_in(team["oscar"]).get(f"/admin/rollouts/metricquery/{query.pk}/change/")
    assert 'id="test-query"' in change.content.decode()
    url = f"/admin/rollouts/metricquery/{query.pk}/test/"
    assert logged_in(team["erin"]).post(url, {}).status_code == 403
    form = {"service": "backend", "version": "", "window_s": 60, "query": query.query}

    page = logged_in(team["oscar"]).post(url, form).content.decode()  # the running canary
    assert 'id="query-result"' in page and "&quot;resultType&quot;: &quot;vector&quot;" in page
    assert f"version=&quot;{FAILING}&quot;" in page and "[60s]" in page

    broken = {**form, "version": CANARY, "query": "sum(rate(x[{window}])"}
    page = logged_in(team["oscar"]).post(url, broken).content.decode()
    assert 'id="query-error"' in page and "Prometheus refused the query: bad_data" in page

    nothing = {**form, "query": 'absent_metric{version="{version}"}'}
    assert 'id="query-empty"' in logged_in(team["oscar"]).post(url, nothing).content.decode()

    Service.objects.filter(name="backend").update(
        prometheus_url=f"http://127.0.0.1:{closed_port()}"
    )
    page = logged_in(team["oscar"]).post(url, form).content.decode()
    assert "Prometheus could not be reached" in page


def test_test_this_query_needs_a_version_when_no_canary_runs(
    stack: Stack, team: dict[str, Any]
) -> None:
    query = MetricQuery.objects.get(service="", metric="requests")
    url = f"/admin/rollouts/metricquery/{query.pk}/test/"
    assert 'id="no-service"' in logged_in(team["oscar"]).get(url).content.decode()
    use_prometheus(stack.prometheus.url)
    form = {"service": "backend", "version": "", "window_s": 1, "query": query.query}
    page = logged_in(team["oscar"]).post(url, form).content.decode()
    assert "No rollout of backend is running: name a version." in page
    page = logged_in(team["oscar"]).post(url, {**form, "version": CANARY}).content.decode()
    assert "window 4 s" in page and "[4s]" in page  # widened to four scrape intervals
