"""Strict input under /api/ and /ops/: what used to be a 500 (or silently coerced) is a
4xx JSON answer with `detail`, and nothing is written."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from comms.models import Notice
from governance.models import AuditEvent, Release
from governance.services import vote_cast
from rollouts.models import MetricSample, Rollout
from tests.portal.refusals import refused, send

pytestmark = pytest.mark.django_db

KILL = "/ops/canary/abort"
SAMPLE = {
    "service": "backend",
    "version": "v2.1.0",
    "variant": "canary",
    "start": "2026-11-26T14:00:00Z",
    "end": "2026-11-26T14:00:10Z",
    "requests": 1000,
    "errors": 12,
    "conversions": {"/checkout": {"attempts": 100, "successes": 85}},
}
INCIDENT_VARS = {"STATUS": "Investigating", "SERVICES": "Backend API"}


@pytest.fixture
def rollout(
    new_release: Callable[..., Release],
    sign_all: Callable[[Release], None],
    team: dict[str, Any],
    client_for: Callable[..., APIClient],
) -> dict[str, Any]:
    release = new_release()
    sign_all(release)
    if release.approvals_required:
        vote_cast(release=release, voter=team["carol"], decision="approve", comment="ok")
        vote_cast(release=release, voter=team["dave"], decision="approve", comment="ok")
    response = client_for("erin", "canary:operate").post(
        f"/api/v1/releases/{release.pk}/deploy/", {"plan": "standard"}, format="json"
    )
    assert response.status_code == 201, response.json()
    return response.json()


# The eight causes of a 500 in the issue, one by one.


def test_json_nested_a_thousand_deep_is_a_400(client_for: Callable[..., APIClient]) -> None:
    deep = "[" * 1000 + "]" * 1000
    client = client_for("erin", "metrics:write")
    refused(send(client, "/api/v1/metrics/", '{"samples": ' + deep + "}"))
    refused(send(client, "/api/v1/metrics/", '{"samples": ' + "[" * 100_000 + "]" * 100_000 + "}"))
    refused(send(client_for("erin", "releases:write"), "/api/v1/releases/", deep))
    assert not MetricSample.objects.exists()


def test_nesting_within_the_limit_is_parsed() -> None:
    from portal.parsers import check_document

    check_document(json.loads("[" * 32 + "]" * 32))


def test_a_lone_surrogate_in_the_kill_switch_body_is_refused_and_audited(
    rollout: dict[str, Any], client_for: Callable[..., APIClient]
) -> None:
    body = '{"version": "\\ud800", "reason": "x", "confirmed": true}'
    unauthenticated = send(APIClient(), KILL, body)
    assert 400 <= unauthenticated.status_code < 500
    refused(unauthenticated, unauthenticated.status_code)
    assert AuditEvent.objects.filter(action="killswitch.refused").count() == 1
    refused(send(client_for("oscar", "canary:abort"), KILL, body))
    assert AuditEvent.objects.filter(action="killswitch.refused").count() == 2
    assert Rollout.objects.get(pk=rollout["id"]).state == "running"


def test_a_surrogate_as_raw_utf8_bytes_is_a_400(client_for: Callable[..., APIClient]) -> None:
    body = b'{"service": "backend", "version": "v\xed\xa0\x80", "tier": "low"}'
    refused(send(client_for("erin", "releases:write"), "/api/v1/releases/", body))
    assert not Release.objects.exists()


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/releases/?service=%00",
        "/api/v1/releases/?version=%00",
        "/api/v1/rollouts/?service=%00",
        "/api/v1/rollouts/?version=a%00b",
        "/api/v1/audit/?action=%00",
        "/ops/canary/metrics?version=%00",
        "/api/v1/incidents/%00/updates/",
    ],
)
def test_nul_in_query_filters_and_paths_is_a_400(
    url: str, client_for: Callable[..., APIClient]
) -> None:
    client = client_for("sam", "read", "status:write")
    method = "post" if "incidents" in url else "get"
    refused(getattr(client, method)(url))


def test_nul_in_notice_variables_is_a_400(client_for: Callable[..., APIClient]) -> None:
    client = client_for("sam", "comms:write")
    for bad in ("\u0000", "a\u0000b", "\ud800"):
        body = {"template": "incident_notification", "variables": {**INCIDENT_VARS}}
        body["variables"]["STATUS"] = bad
        refused(send(client, "/api/v1/notices/", body))
    body = {"template": "incident_notification", "variables": {**INCIDENT_VARS, "\u0000": "x"}}
    refused(send(client, "/api/v1/notices/", body))
    assert not Notice.objects.exists()


@pytest.mark.parametrize("requests", [2**64, 2**63, -(2**63) - 1, 10**30, 1e30])
def test_requests_beyond_its_column_is_a_400(
    requests: float, client_for: Callable[..., APIClient]
) -> None:
    sample = {**SAMPLE, "requests": requests}
    refused(send(client_for("erin", "metrics:write"), "/api/v1/metrics/", {"samples": [sample]}))
    assert not MetricSample.objects.exists()


def test_complaints_beyond_its_integer_column_is_a_400(
    client_for: Callable[..., APIClient],
) -> None:
    sample = {**SAMPLE, "complaints": 2**31}
    body = refused(
        send(client_for("erin", "metrics:write"), "/api/v1/metrics/", {"samples": [sample]})
    )
    assert "complaints" in body["detail"]


@pytest.mark.parametrize("moment", ["2024-02-30T00:00:00Z", "0001-01-01T00:00:00+23:59"])
def test_impossible_times_are_a_400(moment: str, client_for: Callable[..., APIClient]) -> None:
    sample = {**SAMPLE, "start": moment}
    refused(send(client_for("erin", "metrics:write"), "/api/v1/metrics/", {"samples": [sample]}))
    notice = {"template": "incident_notification", "variables": INCIDENT_VARS, "send_at": moment}
    refused(send(client_for("sam", "comms:write"), "/api/v1/notices/", notice))
    assert not MetricSample.objects.exists() and not Notice.objects.exists()


def test_the_latest_time_that_fits_utc_is_refused_past_it(
    client_for: Callable[..., APIClient],
) -> None:
    notice = {
        "template": "incident_notification",
        "variables": INCIDENT_VARS,
        "send_at": "9999-12-31T23:59:59-01:00",
    }
    refused(send(client_for("sam", "comms:write"), "/api/v1/notices/", notice))


@pytest.mark.parametrize(
    "change",
    [
        {"service": "back\u0000end"},
        {"service": "back\ud800end"},
        {"version": "v2\u0000"},
        {"version": "\udfff"},
        {"conversions": {"/check\u0000out": {"attempts": 1, "successes": 1}}},
        {"conversions": {"\ud83d": {"attempts": 1, "successes": 1}}},
    ],
)
def test_nul_or_a_surrogate_in_sample_text_is_a_400(
    change: dict[str, Any], client_for: Callable[..., APIClient]
) -> None:
    body = {"samples": [SAMPLE, {**SAMPLE, **change}]}
    refused(send(client_for("erin", "metrics:write"), "/api/v1/metrics/", body))
    assert not MetricSample.objects.exists()


def test_ingest_refuses_bad_text_when_called_in_process() -> None:
    from portal.errors import Invalid
    from rollouts.metrics.ingest import ingest

    for change in ({"service": "a\u0000"}, {"conversions": {"\ud800": {}}}):
        with pytest.raises(Invalid):
            ingest({"samples": [{**SAMPLE, **change}]})


# Booleans are true or false; nothing is coerced.


@pytest.mark.parametrize("confirmed", ["yes", "true", 1, "1", "on"])
def test_the_kill_switch_takes_only_true_as_confirmation(
    confirmed: Any, rollout: dict[str, Any], client_for: Callable[..., APIClient]
) -> None:
    body = {"version": "v2.1.0", "reason": "errors", "confirmed": confirmed}
    refused(send(client_for("oscar", "canary:abort"), KILL, body))
    assert Rollout.objects.get(pk=rollout["id"]).state == "running"


@pytest.mark.parametrize("confirmed", ["yes", "true", 1])
def test_abort_and_promote_take_only_true_as_confirmation(
    confirmed: Any, rollout: dict[str, Any], client_for: Callable[..., APIClient]
) -> None:
    url = f"/api/v1/rollouts/{rollout['id']}"
    abort = {"reason": "errors", "confirmed": confirmed}
    refused(send(client_for("oscar", "canary:abort"), f"{url}/abort/", abort))
    promote = {"mode": "manual", "confirmed": confirmed}
    refused(send(client_for("carol", "canary:operate"), f"{url}/promote/", promote))
    found = Rollout.objects.get(pk=rollout["id"])
    assert found.state == "running" and found.phase_index == 0


@pytest.mark.parametrize(
    "change",
    [
        {"tier": 1},
        {"service": 12},
        {"changelog": 12},
        {"changed_paths": "src/a.py"},
        {"changed_paths": [1]},
        {"change_types": "bug_fix"},
        {"changelog": "a\u0001b"},
        {"colour": "red"},
    ],
)
def test_release_fields_are_not_coerced(
    change: dict[str, Any], client_for: Callable[..., APIClient]
) -> None:
    body = {"service": "backend", "version": "v1", "tier": "low", **change}
    refused(send(client_for("erin", "releases:write"), "/api/v1/releases/", body))
    assert not Release.objects.exists()


def test_a_number_as_a_string_is_not_an_id(client_for: Callable[..., APIClient]) -> None:
    body = {"template": "incident_notification", "variables": INCIDENT_VARS, "release": "1"}
    refused(send(client_for("sam", "comms:write"), "/api/v1/notices/", body))
    body["release"] = 2**70
    refused(send(client_for("sam", "comms:write"), "/api/v1/notices/", body))


def test_json_without_nan_infinity_or_duplicate_keys(client_for: Callable[..., APIClient]) -> None:
    client = client_for("erin", "metrics:write")
    for text in (
        '{"samples": [{"requests": NaN}]}',
        '{"samples": [{"requests": Infinity}]}',
        '{"samples": [{"requests": 1e400}]}',
        '{"samples": [], "samples": [1]}',
    ):
        refused(send(client, "/api/v1/metrics/", text))


@pytest.mark.parametrize("query", ["limit=%C2%B2", "after=99999999999999999999", "limit=--1"])
def test_page_parameters_are_whole_numbers(
    query: str, client_for: Callable[..., APIClient]
) -> None:
    refused(client_for("erin", "read").get(f"/api/v1/releases/?{query}"))


def test_audit_release_filter_takes_ascii_digits(client_for: Callable[..., APIClient]) -> None:
    refused(client_for("erin", "read").get("/api/v1/audit/?release=%C2%B2"))


@pytest.mark.parametrize("body", ["null", "[]", '"resume"', "1"])
def test_a_body_is_a_json_object(
    body: str, rollout: dict[str, Any], client_for: Callable[..., APIClient]
) -> None:
    url = f"/api/v1/rollouts/{rollout['id']}"
    refused(send(client_for("sam", "canary:operate"), f"{url}/pause/", body))
    assert Rollout.objects.get(pk=rollout["id"]).state == "running"
