"""Refused calls to the kill switch and the API: what they leave in the audit trail is a
bounded summary (who, what, why, the body's size and hash), past a limit they get 429,
and an authorised kill switch is never slowed down by them."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from governance.audit import audit_verify
from governance.models import AuditEvent, Release
from tests.servers import closed_port

pytestmark = pytest.mark.django_db

KILL = "/ops/canary/abort"
BODY = {
    "version": "v2.1.0",
    "service": "backend",
    "reason": "High error rate detected",
    "confirmed": True,
    "operator": "@jermaineMerritt",
}


def stored_bytes(event: AuditEvent) -> int:
    """What one event takes in the trail (its text columns; the rest is a few numbers)."""
    texts = (event.actor, event.action, event.object_type, event.object_id, event.data_json)
    return sum(len(text.encode()) for text in texts) + len(event.prev_hash) + len(event.hash)


def refused() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action="killswitch.refused"))


@pytest.fixture
def client_for(team: dict[str, Any], token_for: Callable[..., str], api: Callable[..., Any]):
    return lambda name, *scopes: api(token_for(team[name], *scopes))


@pytest.fixture
def running(approved: Callable[..., Release], client_for: Callable[..., Any]) -> dict[str, Any]:
    release = approved()
    response = client_for("erin", "canary:operate").post(
        f"/api/v1/releases/{release.pk}/deploy/", {"plan": "standard"}, format="json"
    )
    assert response.status_code == 201, response.json()
    return response.json()


@pytest.fixture
def frozen() -> Iterator[Any]:
    """Time stopped at the start of a minute."""
    with time_machine.travel(timezone.now().replace(second=0, microsecond=0), tick=False) as t:
        yield t


def test_a_2_mb_unauthenticated_body_leaves_at_most_4_kib(api: Callable[..., Any]) -> None:
    # Many fields (each value short): what the old summary copied key by key.
    junk = {f"field-{n:07d}": "x" * 8 for n in range(2_000_000 // 25)}
    body = json.dumps({**BODY, **junk}).encode()
    assert len(body) >= 2_000_000
    response = api().post(KILL, body, content_type="application/json")
    assert response.status_code == 401 and response.json()["detail"]
    [event] = refused()
    assert stored_bytes(event) <= 4096
    assert (event.actor, event.actor_user_id) == ("anonymous", None)
    assert event.data["body"] == {"bytes": len(body), "sha256": hashlib.sha256(body).hexdigest()}
    assert event.data["status"] == 401 and "credentials" in event.data["detail"]
    assert (event.data["method"], event.data["path"], event.data["address"]) == (
        "POST",
        KILL,
        "127.0.0.1",
    )
    assert audit_verify().ok


@pytest.mark.parametrize(
    "raw",
    [
        b'{"version": "\\ud800", "reason": "x", "confirmed": true}',  # a lone surrogate
        b'{"version": "v\xff\xfe", ',  # neither UTF-8 nor JSON
        b"\x00" * 64,
    ],
    ids=["lone-surrogate", "broken-bytes", "nul-bytes"],
)
def test_a_body_no_parser_takes_is_still_audited(api: Callable[..., Any], raw: bytes) -> None:
    response = api().post(KILL, raw, content_type="application/json")
    assert response.status_code == 401 and response.json()["detail"]
    [event] = refused()
    assert event.data["body"] == {"bytes": len(raw), "sha256": hashlib.sha256(raw).hexdigest()}
    assert audit_verify().ok


def test_an_authorised_callers_refused_body_is_summarised_with_clipped_fields(
    running: dict[str, Any], client_for: Callable[..., Any]
) -> None:
    raw = json.dumps(
        {
            # Parsed (the strict parser refuses NUL and lone surrogates before any field
            # is read), then refused by validation: control characters, confirmed false.
            "version": "v" * 5000,
            "service": "\U0001f600" * 3000,
            "reason": "\x01\x02" * 3000 + "é" * 3000,
            "confirmed": False,
            "operator": '"\\' * 5000,
        }
    ).encode()
    response = client_for("oscar", "canary:abort").post(KILL, raw, content_type="application/json")
    assert response.status_code == 400 and response.json()["detail"]
    [event] = refused()
    assert stored_bytes(event) <= 4096
    assert (event.actor, event.data["status"]) == ("oscar", 400)
    assert event.data["body"] == {"bytes": len(raw), "sha256": hashlib.sha256(raw).hexdigest()}
    fields = event.data["fields"]
    assert fields["version"].startswith("vvv") and fields["confirmed"] == "False"
    assert "\x02" not in fields["reason"] and "\x01" not in fields["reason"]
    assert audit_verify().ok


def test_refusals_say_who_was_refused_and_why(
    running: dict[str, Any], client_for: Callable[..., Any]
) -> None:
    assert client_for("erin", "canary:abort").post(KILL, BODY, format="json").status_code == 403
    [event] = refused()
    assert event.actor == "erin" and event.actor_user_id is not None
    assert (event.data["method"], event.data["path"], event.data["address"]) == (
        "POST",
        KILL,
        "127.0.0.1",
    )
    assert event.data["status"] == 403 and "council" in event.data["detail"]
    assert "fields" not in event.data  # the body of a caller without the role is not parsed


def test_past_the_limit_refused_callers_get_429_and_the_kill_switch_still_works(
    settings: Any,
    running: dict[str, Any],
    client_for: Callable[..., Any],
    api: Callable[..., Any],
    frozen: Any,
) -> None:
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "refused": "3/m"}
    assert [api().post(KILL, BODY, format="json").status_code for _ in range(3)] == [401] * 3
    throttled = api().post(KILL, BODY, format="json")
    assert throttled.status_code == 429
    assert throttled["Retry-After"] == "60" and throttled.json()["detail"]
    # Whatever the refusal: a bad token, a missing scope, a missing role.
    assert api("not-a-token").post(KILL, BODY, format="json").status_code == 429
    assert client_for("carol", "read").post(KILL, BODY, format="json").status_code == 429
    assert client_for("erin", "canary:abort").post(KILL, BODY, format="json").status_code == 429

    # The authorised caller, from the same address, in the middle of the flood.
    response = client_for("oscar", "canary:abort").post(KILL, BODY, format="json")
    assert response.status_code == 202, response.json()
    assert response.json() == {"rollout": running["id"], "state": "rolling_back"}

    assert len(refused()) == 3
    [first] = AuditEvent.objects.filter(action="killswitch.throttled")
    assert (first.actor, first.data["status"], first.data["throttled_previous_minute"]) == (
        "anonymous",
        429,
        0,
    )
    assert AuditEvent.objects.filter(action="killswitch.invoked").count() == 1

    frozen.shift(59)
    assert api().post(KILL, BODY, format="json").status_code == 429
    frozen.shift(1)  # the three refusals are a minute old: three more are let through
    assert [api().post(KILL, BODY, format="json").status_code for _ in range(4)] == [
        *[401] * 3,
        429,
    ]
    # One throttled event a minute per address, with the previous minute's count (the
    # first four throttled calls and the one at 59 s).
    [_, second] = AuditEvent.objects.filter(action="killswitch.throttled").order_by("seq")
    assert second.data["throttled_previous_minute"] == 5
    assert len(refused()) == 6
    assert audit_verify().ok


def test_a_throttled_anonymous_flood_costs_no_query(
    settings: Any,
    api: Callable[..., Any],
    django_assert_num_queries: Any,
    frozen: Any,
) -> None:
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "refused": "2/m"}
    assert [api().post(KILL, BODY, format="json").status_code for _ in range(3)] == [
        401,
        401,
        429,  # audited: the first throttled call of the minute
    ]
    with django_assert_num_queries(0):
        for _ in range(20):
            answer = api().post(KILL, BODY, format="json")
            assert answer.status_code == 429 and answer["Retry-After"] == "60"
            assert answer.json()["detail"].startswith("Request was throttled")
    # The public parts stay open to that address: the API root and the status page.
    assert api().get("/api/v1/").status_code == 200
    assert api().get("/api/v2/summary.json").status_code == 200
    # Calls answered without asking the cache are still counted, the next time it is asked.
    frozen.shift(1)
    assert api().post(KILL, BODY, format="json").status_code == 429
    frozen.shift(60)
    assert [api().post(KILL, BODY, format="json").status_code for _ in range(3)] == [
        401,
        401,
        429,
    ]
    [_, second] = AuditEvent.objects.filter(action="killswitch.throttled").order_by("seq")
    assert second.data["throttled_previous_minute"] == 1 + 20 + 1


def test_the_whole_api_throttles_refused_callers_only(
    settings: Any, api: Callable[..., Any], token_for: Callable[..., str], team: dict[str, Any]
) -> None:
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "refused": "2/m"}
    assert [api().get("/api/v1/releases/").status_code for _ in range(2)] == [401, 401]
    throttled = api().get("/api/v1/releases/")
    assert throttled.status_code == 429 and throttled.json()["detail"]
    assert int(throttled["Retry-After"]) > 0
    # A forged X-Forwarded-For does not make a new client (no proxy is trusted by default).
    spoofed = api().get("/api/v1/releases/", HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert spoofed.status_code == 429
    # Another address is a different client; a member is never throttled.
    assert api().get("/api/v1/releases/", REMOTE_ADDR="192.0.2.7").status_code == 401
    assert api(token_for(team["erin"], "read")).get("/api/v1/releases/").status_code == 200


def test_with_the_cache_down_the_limit_fails_open_with_a_log_line(
    settings: Any, api: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    settings.CACHES = {
        "default": {
            "BACKEND": "portal.cache.FailOpenRedisCache",
            "LOCATION": f"redis://127.0.0.1:{closed_port()}/0",
        }
    }
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "refused": "1/m"}
    statuses = [api().post(KILL, BODY, format="json").status_code for _ in range(3)]
    assert statuses == [401, 401, 401]
    assert len(refused()) == 3
    assert "cache_unavailable_failing_open" in caplog.text
