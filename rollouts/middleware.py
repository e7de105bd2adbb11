"""Django middleware for a service that routes its own requests: sets `request.canary`
to the routing decision and keeps the sticky `codex-canary-id` cookie for 24 h.

Enable with `CANARY_ROUTING_SERVICE = "backend"` and
`"rollouts.middleware.CanaryRoutingMiddleware"` after the authentication middleware.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from rollouts.routing import COOKIE, COOKIE_MAX_AGE, HEADER, decide


def _user(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "id": str(user.pk),
        "email": getattr(user, "email", ""),
        "internal": bool(getattr(user, "is_staff", False)),
        "beta_tester": bool(getattr(user, "beta_tester", False)),
        "subscription_tier": getattr(user, "subscription_tier", ""),
    }


class CanaryRoutingMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        service = getattr(settings, "CANARY_ROUTING_SERVICE", "")
        if not service:
            return self.get_response(request)
        decision = decide(
            service=service,
            user=_user(request),
            headers={HEADER: request.headers.get(HEADER, "")},
            cookies={COOKIE: request.COOKIES.get(COOKIE, "")},
        )
        request.canary = decision  # type: ignore[attr-defined]
        response = self.get_response(request)
        response.set_cookie(
            COOKIE,
            decision.sticky_id,
            max_age=COOKIE_MAX_AGE,
            httponly=True,
            samesite="Lax",
            secure=settings.SESSION_COOKIE_SECURE,
        )
        return response
