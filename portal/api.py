"""API plumbing shared by every app: error shape, list pagination, the API root."""

from __future__ import annotations

import re
from typing import Any

import structlog
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from rest_framework import exceptions, permissions
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.utils.urls import replace_query_param
from rest_framework.views import APIView, set_rollback
from rest_framework.views import exception_handler as drf_exception_handler

from portal.errors import Refused
from portal.parsers import RequestTooLarge
from portal.strict import INT64_MAX

logger = structlog.get_logger(__name__)
_WHOLE = re.compile(r"-?[0-9]{1,19}")


def _first_message(errors: Any) -> str:
    if isinstance(errors, dict):
        for field_name, value in errors.items():
            message = _first_message(value)
            return message if field_name == "non_field_errors" else f"{field_name}: {message}"
    if isinstance(errors, list) and errors:
        return _first_message(errors[0])
    return str(errors)


def exception_handler(exc: Exception, context: dict) -> Response:
    """DRF's handler, with validation errors as {"detail": ..., "errors": {field: [...]}}
    and domain refusals as {"detail": ..., "blocking": [...]} with their status; a
    database that cannot be reached is a 503 and anything unexpected a logged 500, both
    JSON (so a view's own handler, the kill switch's audit, still sees an answer)."""
    if isinstance(exc, OperationalError | InterfaceError):
        set_rollback()
        logger.warning("database_unavailable", error=str(exc))
        return Response(
            {"detail": "The database is unavailable; try again shortly."},
            status=503,
            headers={"Retry-After": "5"},
        )
    if isinstance(exc, RequestDataTooBig):
        exc = RequestTooLarge("The request body is too large.")
    if isinstance(exc, Refused):
        body: dict[str, Any] = {"detail": exc.detail}
        if exc.blocking is not None:
            body["blocking"] = exc.blocking
        if exc.errors is not None:
            body["errors"] = exc.errors
        return Response(body, status=exc.status)
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(exc, exceptions.ValidationError):
        errors = (
            response.data
            if isinstance(response.data, dict)
            else {"non_field_errors": response.data}
        )
        response.data = {"detail": f"Invalid input: {_first_message(errors)}", "errors": errors}
    if response is None:
        set_rollback()
        logger.exception("api_unexpected_error", exc_info=exc)
        return Response({"detail": "Internal server error."}, status=500)
    return response


def query_value(request: Request, name: str) -> str | None:
    """A query parameter given at most once (`?after=1&after=2` is a 400, not a guess)."""
    values = request.query_params.getlist(name)
    if len(values) > 1:
        raise exceptions.ValidationError({name: ["Give this parameter once."]})
    return values[0] if values else None


def query_flag(request: Request, name: str) -> bool:
    """A yes/no query parameter: `true`/`1` or `false`/`0` (absent: false), else 400."""
    raw = query_value(request, name)
    if raw in (None, "", "false", "0"):
        return False
    if raw in ("true", "1"):
        return True
    raise exceptions.ValidationError({name: ["Use true or false."]})


def query_int(request: Request, name: str, default: int | None, *, minimum: int) -> Any:
    """A whole-number query parameter (ASCII digits, 64 bits at most), or 400."""
    raw = query_value(request, name)
    if raw is None or raw == "":
        return default
    if not _WHOLE.fullmatch(raw) or not -INT64_MAX <= int(raw) <= INT64_MAX:
        raise exceptions.ValidationError({name: ["Must be a whole number."]})
    value = int(raw)
    if value < minimum:
        raise exceptions.ValidationError({name: [f"Must be at least {minimum}."]})
    return value


class KeysetPagination(BasePagination):
    """Lists are plain JSON arrays in key order; `?limit=` and `?after=<key>` page through
    them and the next page's URL is in a `Link: <...>; rel="next"` header (RFC 8288)."""

    default_limit = 500
    max_limit = 5000

    def paginate_queryset(
        self, queryset: Any, request: Request, view: APIView | None = None
    ) -> list:
        self.request = request
        limit = query_int(request, "limit", self.default_limit, minimum=1)
        limit = min(limit, self.max_limit)
        after = query_int(request, "after", None, minimum=0)
        queryset = queryset.order_by("pk")
        if after is not None:
            queryset = queryset.filter(pk__gt=after)
        page = list(queryset[: limit + 1])
        self.next_after = page[limit - 1].pk if len(page) > limit else None
        return page[:limit]

    def get_paginated_response(self, data: list) -> Response:
        headers = {}
        if self.next_after is not None:
            url = replace_query_param(self.request.build_absolute_uri(), "after", self.next_after)
            headers["Link"] = f'<{url}>; rel="next"'
        return Response(data, headers=headers)

    def get_paginated_response_schema(self, schema: dict) -> dict:
        return schema

    def get_schema_operation_parameters(self, view: APIView) -> list[dict]:
        whole = {"type": "integer", "minimum": 0, "maximum": INT64_MAX}
        return [
            {
                "name": "limit",
                "in": "query",
                "required": False,
                "description": f"Items per page (at most {self.max_limit}).",
                "schema": {**whole, "minimum": 1},
            },
            {
                "name": "after",
                "in": "query",
                "required": False,
                "description": "The key after which the page starts (from the `Link` header).",
                "schema": whole,
            },
        ]


class ApiRoot(APIView):
    """Entry point of the API: where things are."""

    permission_classes = [permissions.AllowAny]
    authentication_classes: list = []
    schema = None  # an index of links, not part of the contract

    def get(self, request: Request) -> Response:
        return Response(
            {
                "releases": reverse("api:release-list", request=request),
                "rollouts": reverse("api:rollout-list", request=request),
                "routing": reverse("api:routing-decide", request=request),
                "metrics": reverse("api:metrics-ingest", request=request),
                "kill_switch": reverse("kill-switch", request=request),
                "audit": reverse("api:audit-list", request=request),
                "schema": reverse("api-schema", request=request),
                "docs": reverse("api-docs", request=request),
            }
        )
