"""Rate limits, with DRF's throttles on the cache (Redis; failing open, see portal.cache).

- Refused calls under /api/ and /ops/: a client whose calls keep being refused for want of
  a valid token, scope or role (401/403) gets 429 with `Retry-After` once it passes
  `RATE_LIMITS["refused"]`, before anything else is done for it. Only refusals count and
  only refusals are throttled: a caller with a valid token, the scope and the role is
  never slowed down, whoever else floods the same endpoint from the same address.
- Status-page subscriptions: per address and per client address.

Rates are read from `settings.RATE_LIMITS` at each use (DRF's own `THROTTLE_RATES` is
frozen at import) and time comes from the one clock.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle

from portal import clock
from portal.api import exception_handler as api_exception_handler

# What the DRF layer raises when a caller lacks a valid token, the scope or the role.
AUTH_REFUSALS = (
    exceptions.NotAuthenticated,
    exceptions.AuthenticationFailed,
    exceptions.PermissionDenied,
)


class RateThrottle(SimpleRateThrottle):
    """DRF's sliding-window throttle; `scope` names its rate in `settings.RATE_LIMITS`."""

    num_requests: int
    duration: int

    def get_rate(self) -> str | None:
        return settings.RATE_LIMITS.get(self.scope or "")

    def timer(self) -> float:  # type: ignore[override]
        return clock.now().timestamp()

    def ident_key(self, ident: str) -> str:
        return self.cache_format % {"scope": self.scope, "ident": ident}

    def exhausted(self, request: HttpRequest | Request) -> bool:
        """True when `request` would be throttled; nothing is counted (`wait()` then says
        for how long)."""
        if self.rate is None:
            return False
        self.key = self.get_cache_key(request, None)  # type: ignore[arg-type]
        if self.key is None:
            return False
        self.history = self.cache.get(self.key, [])
        self.now = self.timer()
        while self.history and self.history[-1] <= self.now - self.duration:
            self.history.pop()
        return len(self.history) >= self.num_requests

    def allows(self, request: HttpRequest | Request) -> bool:
        """Count this request; False once past the rate. Plain Django requests do too (a
        throttle reads only the client address, headers and form)."""
        return self.allow_request(request, None)  # type: ignore[arg-type]

    def wait_seconds(self) -> int:
        """Whole seconds until the next request is let through (Retry-After)."""
        return max(1, math.ceil(self.wait() or 1))

    def refusal(self) -> exceptions.Throttled:
        return exceptions.Throttled(wait=self.wait_seconds())


class RefusedCalls(RateThrottle):
    """Calls refused with 401/403, counted per client address."""

    scope = "refused"

    def get_cache_key(self, request: Any, view: Any) -> str:
        return self.ident_key(self.get_ident(request))


class SubscriptionsByClient(RateThrottle):
    """Subscription requests per client address, whatever address they name."""

    scope = "subscribe_client"

    def get_cache_key(self, request: Any, view: Any) -> str:
        return self.ident_key(self.get_ident(request))


class SubscriptionsByAddress(RateThrottle):
    """Subscription requests per email address (confirmation mails sent to it)."""

    scope = "subscribe_address"

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        email = str(request.POST.get("email", "")).strip().lower()
        if not email:
            return None
        return self.ident_key(hashlib.sha256(email.encode("utf-8", "replace")).hexdigest())


def client_address(request: HttpRequest | Request) -> str:
    """The caller's address as the throttles see it (`TRUSTED_PROXY_COUNT` proxies in front)."""
    return str(RefusedCalls().get_ident(request) or "")  # type: ignore[arg-type]


def exception_handler(exc: Exception, context: dict) -> Response | None:
    """The API's error answers (portal.api), with auth refusals counted per client address:
    past the limit the refusal is answered 429 with `Retry-After` instead."""
    request = context.get("request")
    if isinstance(exc, AUTH_REFUSALS) and request is not None:
        throttle = RefusedCalls()
        if not throttle.allows(request):
            exc = throttle.refusal()
    return api_exception_handler(exc, context)
