"""Routing decisions: order, header prefixes, stickiness, monotonic buckets, shares."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from rollouts.models import Segment, TrafficSplit
from rollouts.routing import COOKIE, decide

pytestmark = pytest.mark.django_db


@pytest.fixture
def canary() -> TrafficSplit:
    return TrafficSplit.objects.create(
        service="backend", stable_version="v2.0.3", canary_version="v2.1.0", weight=5, salt="s4lt"
    )


def test_no_canary_means_stable() -> None:
    decision = decide(service="backend", user={"id": "u1", "internal": True})
    assert (decision.variant, decision.reason) == ("stable", "no_canary")


@pytest.mark.parametrize(
    ("header", "variant"),
    [
        ("v2", "canary"),
        ("v2.1", "canary"),
        ("v2.1.0", "canary"),
        ("v21", "stable"),
        ("v2.1.0.1", "stable"),
        ("v3", "stable"),
        ("", "stable"),
        ("v2.", "canary"),
    ],
)
def test_header_prefix_ends_at_a_dot(canary: TrafficSplit, header: str, variant: str) -> None:
    TrafficSplit.objects.filter(pk=canary.pk).update(weight=0)
    decision = decide(
        service="backend", headers={"X-Canary-Version": header}, cookies={COOKIE: "fixed"}
    )
    assert decision.variant == variant


def test_segments_in_order(canary: TrafficSplit) -> None:
    assert (
        decide(
            service="backend", headers={"x-canary-version": "v2"}, user={"internal": True}
        ).reason
        == "header"
    )
    assert decide(service="backend", user={"id": "a", "internal": True}).reason == "internal"
    assert decide(service="backend", user={"id": "a", "beta_tester": True}).reason == "beta"
    premium = [
        decide(service="backend", user={"id": f"p{i}", "subscription_tier": "premium"})
        for i in range(2000)
    ]
    assert {d.reason for d in premium} == {"premium"}
    share = sum(d.variant == "canary" for d in premium) / len(premium)
    assert 0.46 < share < 0.54
    again = decide(service="backend", user={"id": "p7", "subscription_tier": "premium"})
    assert again.variant == premium[7].variant
    Segment.objects.filter(name="beta").update(is_active=False)
    assert decide(service="backend", user={"id": "a", "beta_tester": True}).reason == "weight"


def test_sticky_monotonic_and_within_one_point(canary: TrafficSplit) -> None:
    ids = [f"user-{n}" for n in range(10_000)]
    previous: set[str] = set()
    for weight in (1, 2, 5, 10, 20, 50, 100):
        split = TrafficSplit(service="backend", canary_version="v2.1.0", weight=weight, salt="s4lt")
        inside = {
            i
            for i in ids
            if decide(service="backend", cookies={COOKIE: i}, split=split, segments=[]).variant
            == "canary"
        }
        assert previous <= inside, weight
        assert abs(len(inside) / len(ids) * 100 - weight) <= 1, weight
        previous = inside


def test_a_new_visitor_gets_a_cookie_and_keeps_their_variant(canary: TrafficSplit) -> None:
    first = decide(service="backend")
    assert len(first.sticky_id) == 32
    cookie = first.as_json()["set_cookie"]
    assert (cookie["name"], cookie["max_age"]) == (COOKIE, 86400)
    for _ in range(5):
        assert decide(service="backend", cookies={COOKIE: cookie["value"]}).variant == first.variant


def test_decide_endpoint(
    canary: TrafficSplit, engineer: Any, token_for: Callable[..., str], api: Callable[..., Any]
) -> None:
    client = api(token_for(engineer, "read"))
    body = {
        "service": "backend",
        "user": {
            "id": "u-123",
            "email": "x@example.com",
            "beta_tester": False,
            "subscription_tier": "premium",
            "internal": False,
        },
        "headers": {"X-Canary-Version": "v2"},
        "cookies": {COOKIE: "abc"},
    }
    response = client.post("/api/v1/routing/decide", body, format="json")
    assert response.status_code == 200
    assert response.json() == {
        "variant": "canary",
        "version": "v2.1.0",
        "reason": "header",
        "set_cookie": {"name": COOKIE, "value": "abc", "max_age": 86400},
    }
    assert client.post("/api/v1/routing/decide", {"user": {}}, format="json").status_code == 400
    assert (
        client.post(
            "/api/v1/routing/decide", {"service": "b", "headers": "x"}, format="json"
        ).status_code
        == 400
    )
    assert api().post("/api/v1/routing/decide", body, format="json").status_code == 401


def test_the_middleware_decides_and_keeps_the_cookie(canary: TrafficSplit, settings: Any) -> None:
    from django.http import HttpResponse
    from django.test import RequestFactory

    from rollouts.middleware import CanaryRoutingMiddleware

    settings.CANARY_ROUTING_SERVICE = "backend"
    seen: list[Any] = []

    def view(request: Any) -> HttpResponse:
        seen.append(request.canary)
        return HttpResponse("ok")

    middleware = CanaryRoutingMiddleware(view)
    request = RequestFactory().get("/", HTTP_X_CANARY_VERSION="v2")
    response = middleware(request)
    assert (seen[0].variant, seen[0].reason) == ("canary", "header")
    cookie = response.cookies[COOKIE]
    assert cookie["max-age"] == 86400 and cookie["httponly"]
    again = RequestFactory().get("/")
    again.COOKIES[COOKIE] = cookie.value
    middleware(again)
    assert seen[1].sticky_id == cookie.value
