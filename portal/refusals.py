"""What a refused call leaves in the audit trail: a bounded summary, never its body; and
the gate that answers a throttled anonymous flood before Django does any work for it.

Who (the authenticated user, or "anonymous", and the client address), what (method,
path), why (status and reason), and the body's size and SHA-256 taken from its raw bytes,
so a body no parser accepts (a lone surrogate, broken JSON, 2 MB of anything) is still
accounted for. Every text is clipped and made storable, so one event stays well under the
contract's 4 KiB whatever the caller sent.
"""

from __future__ import annotations

import hashlib
import math
import unicodedata
from collections import Counter
from collections.abc import Callable
from typing import Any, ClassVar

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, JsonResponse
from django.http.response import HttpResponseBase
from django.urls import reverse
from rest_framework import exceptions
from rest_framework.request import Request

from governance.audit import audit_append
from portal import clock
from portal.throttling import RefusedCalls, client_address

# Bodies larger than this are hashed over their first MAX_HASHED_BYTES (and say so).
MAX_HASHED_BYTES = 16 * 1024 * 1024
_CHUNK = 64 * 1024
_LIMITS = {"detail": 300, "path": 200, "method": 16, "address": 64, "field": 64, "reason": 200}


def clip(value: Any, limit: int) -> str:
    """`value` as text of at most `limit` UTF-8 bytes with no control characters and no
    unpaired surrogates (those become `\\udXXX` escapes), so it stores and hashes."""
    text = str(value).encode("utf-8", "backslashreplace").decode("utf-8")
    text = "".join("\ufffd" if unicodedata.category(c) == "Cc" else c for c in text[:limit])
    return text.encode("utf-8")[:limit].decode("utf-8", "ignore")


def _django_request(request: Request | HttpRequest) -> HttpRequest:
    return request._request if isinstance(request, Request) else request


def body_digest(request: Request | HttpRequest) -> dict[str, Any]:
    """Size and SHA-256 of the raw body: the bytes already read if a parser kept them,
    else read from the stream now (in chunks, up to MAX_HASHED_BYTES)."""
    raw = _django_request(request)
    digest = hashlib.sha256()
    cached = getattr(raw, "_body", None)
    if cached is not None:
        digest.update(cached[:MAX_HASHED_BYTES])
        size, hashed = len(cached), min(len(cached), MAX_HASHED_BYTES)
    elif not getattr(raw, "_read_started", False):
        hashed = 0
        while hashed < MAX_HASHED_BYTES:
            chunk = raw.read(min(_CHUNK, MAX_HASHED_BYTES - hashed))
            if not chunk:
                break
            digest.update(chunk)
            hashed += len(chunk)
        size = max(hashed, _content_length(raw))
    else:  # consumed by a parser that kept no copy: only the declared size is known
        return {"bytes": _content_length(raw), "sha256": None}
    summary: dict[str, Any] = {"bytes": size, "sha256": digest.hexdigest()}
    if hashed < size:
        summary["hashed_bytes"] = hashed
    return summary


def _content_length(raw: HttpRequest) -> int:
    try:
        return max(0, int(raw.META.get("CONTENT_LENGTH") or 0))
    except ValueError:
        return 0


def _parsed_fields(request: Request | HttpRequest, names: tuple[str, ...]) -> dict[str, str]:
    """A short preview of the named fields, only if the body was already parsed (never
    parsed here: a refused caller's body is not worth parsing)."""
    data = getattr(request, "_full_data", None)
    if not isinstance(data, dict):
        return {}
    return {
        name: clip(data[name], _LIMITS["reason" if name == "reason" else "field"])
        for name in names
        if name in data and isinstance(data[name], str | bool | int | float)
    }


def refusal_summary(
    request: Request | HttpRequest,
    *,
    status: int,
    detail: Any,
    fields: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The audit data of a refused call (see the module's docstring)."""
    raw = _django_request(request)
    data: dict[str, Any] = {
        "status": status,
        "detail": clip(detail, _LIMITS["detail"]),
        "method": clip(raw.method or "", _LIMITS["method"]),
        "path": clip(raw.path, _LIMITS["path"]),
        "address": clip(client_address(raw), _LIMITS["address"]),
        "body": body_digest(request),
    }
    preview = _parsed_fields(request, fields)
    if preview:
        data["fields"] = preview
    return data


def throttled_calls_to_audit(
    request: Request | HttpRequest, *, every_s: int, calls: int = 1
) -> int | None:
    """Throttled calls are not audited one by one (a flood would then still fill the
    trail): per client address, the first one in each window of `every_s` seconds is, with
    the number of calls throttled in the window before. `calls`: how many throttled calls
    this one stands for (itself and those not counted yet). None: nothing to audit (they
    are counted). One cache round trip."""
    window = int(clock.now().timestamp() // every_s)
    key = f"throttled-calls:{client_address(_django_request(request))}"
    if _count(f"{key}:{window}", timeout=2 * every_s, delta=calls) > calls:
        return None
    return int(cache.get(f"{key}:{window - 1}", 0))


def _count(key: str, *, timeout: int, delta: int) -> int:
    count = getattr(cache, "count", None)
    if count is not None:  # portal.cache.FailOpenRedisCache
        return int(count(key, timeout=timeout, delta=delta))
    value = int(cache.get(key, 0)) + delta  # a cache without atomic counters (no REDIS_URL)
    cache.set(key, value, timeout=timeout)
    return value


def audit_refused(
    request: Request | HttpRequest,
    *,
    action: str,
    status: int,
    detail: Any,
    user: Any = None,
    fields: tuple[str, ...] = (),
    **extra: Any,
) -> None:
    """One audit event for a refused call: the summary above, `extra` beside it; the
    actor is the authenticated user, else "anonymous"."""
    known = user is not None and user.is_authenticated
    audit_append(
        action=action,
        actor=user if known else None,
        actor_name=None if known else "anonymous",
        data={**refusal_summary(request, status=status, detail=detail, fields=fields), **extra},
    )


class RefusedCallsGate:
    """Middleware, right after SecurityMiddleware. A call to the API (`/api/v1/...`,
    `/ops/...`) that carries no credentials at all (no Authorization header, no session
    cookie) can only be refused; once its client address is past the refused-calls limit
    it is answered 429 here, before sessions, request logging, DRF and the view, so a flood
    of them costs next to nothing: each process asks the cache about an address at most
    once every `RECHECK_S` while it is throttled, and counts its throttled kill-switch calls
    in between. Calls with credentials always go on to the view (where refusals are counted
    too): an authorised caller is never throttled. Throttled kill-switch calls are audited
    once a minute per address, with their count."""

    PREFIXES = ("/api/v1/", "/ops/")
    PUBLIC = frozenset({"/api/v1/"})  # the API root: links only, no authentication
    RECHECK_S = 1.0
    # This process's view, by the limit's cache key: throttled until (recheck, retry).
    _throttled: ClassVar[dict[str, tuple[float, float]]] = {}
    _uncounted: ClassVar[Counter[str]] = Counter()  # throttled kill-switch calls, by key

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if not self.anonymous_api_call(request):
            return self.get_response(request)
        throttle = RefusedCalls()
        key = cache.make_key(throttle.get_cache_key(request, None))
        kill_switch = request.path == reverse("kill-switch")
        now = clock.now().timestamp()
        recheck, retry = self._throttled.get(key, (0.0, 0.0))
        if now < recheck:
            self._uncounted[key] += kill_switch
            return self.throttled(math.ceil(retry - now))
        if not throttle.exhausted(request):
            self._throttled.pop(key, None)
            return self.get_response(request)
        wait = throttle.wait_seconds()
        if len(self._throttled) > 10_000:  # bounded, whatever the number of addresses
            self._throttled.clear()
        self._throttled[key] = (now + min(self.RECHECK_S, wait), now + wait)
        calls = self._uncounted.pop(key, 0) + kill_switch
        if calls:
            throttled = throttled_calls_to_audit(request, every_s=60, calls=calls)
            if throttled is not None:
                audit_refused(
                    request,
                    action="killswitch.throttled",
                    status=429,
                    detail=throttle.refusal().detail,
                    throttled_previous_minute=throttled,
                )
        return self.throttled(wait)

    @staticmethod
    def throttled(wait: int) -> JsonResponse:
        detail = str(exceptions.Throttled(wait=max(1, wait)).detail)
        return JsonResponse({"detail": detail}, status=429, headers={"Retry-After": str(wait)})

    def anonymous_api_call(self, request: HttpRequest) -> bool:
        return (
            request.path.startswith(self.PREFIXES)
            and request.path not in self.PUBLIC
            and "HTTP_AUTHORIZATION" not in request.META
            and settings.SESSION_COOKIE_NAME not in request.COOKIES
        )
