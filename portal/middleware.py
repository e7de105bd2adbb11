"""Machine paths (/api/, /ops/) answer JSON with `detail`, whatever the status and
whoever produced the answer (DRF, Django's 404/405/500 handlers, another middleware)."""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus

import structlog
from django.core.exceptions import SuspiciousOperation
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse

from portal.strict import text_problem

logger = structlog.get_logger(__name__)

MACHINE_PREFIXES = ("/api/", "/ops/")
# Headers of the original answer that still mean something on its JSON version.
_KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate", "Vary", "X-Request-ID")


def is_machine_path(path: str) -> bool:
    return path.startswith(MACHINE_PREFIXES)


def database_unavailable() -> JsonResponse:
    response = JsonResponse(
        {"detail": "The database is unavailable; try again shortly."}, status=503
    )
    response["Retry-After"] = "5"
    return response


def _query_errors(request: HttpRequest) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if problem := text_problem(request.path):
        errors["path"] = [f"The path {problem}."]
    for name, values in request.GET.lists():
        key = "query" if text_problem(name) else name
        for value in (name, *values):
            if problem := text_problem(value):
                errors[key] = [f"Query parameter {problem}."]
    return errors


def _as_json(response: HttpResponse) -> JsonResponse:
    """The JSON version of an error answer: DRF's own data when it was rendered as HTML
    for a browser, else the status's phrase."""
    status = response.status_code
    data = getattr(response, "data", None)
    if not (isinstance(data, dict) and "detail" in data):
        try:
            data = {"detail": f"{HTTPStatus(status).phrase}."}
        except ValueError:
            data = {"detail": "Error."}
    replacement = JsonResponse(data, status=status)
    for header in _KEPT_HEADERS:
        if header in response:
            replacement[header] = response[header]
    return replacement


class MachineAnswers:
    """Refuses NUL and unpaired surrogates in the path and query (400) before any view
    filters on them, turns non-JSON error answers into JSON, and a database that cannot
    be reached into 503."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not is_machine_path(request.path):
            return self.get_response(request)
        try:
            errors = _query_errors(request)
        except SuspiciousOperation as refused:  # e.g. more query fields than Django takes
            return JsonResponse({"detail": f"Invalid query: {refused}"}, status=400)
        if errors:
            return JsonResponse(
                {"detail": "Invalid input: text with NUL or a surrogate.", "errors": errors},
                status=400,
            )
        response = self.get_response(request)
        content_type = response.get("Content-Type", "")
        if response.status_code >= 400 and "json" not in content_type:
            response = _as_json(response)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if is_machine_path(request.path) and isinstance(
            exception, OperationalError | InterfaceError
        ):
            logger.warning("database_unavailable", path=request.path, error=str(exception))
            return database_unavailable()
        return None  # Django logs it and answers 500; __call__ makes that answer JSON
