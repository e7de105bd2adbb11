"""The one JSON parser of the API: bounded in size, strict about what JSON may carry."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from rest_framework import exceptions, status
from rest_framework.parsers import JSONParser

from portal.strict import INT64_MAX, INT64_MIN, MAX_DEPTH, text_problem


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "too_large"


def body_limit(view: Any) -> int:
    """Bytes a view accepts in a body: its `max_body_bytes`, else API_MAX_BODY_BYTES."""
    return int(getattr(view, "max_body_bytes", None) or settings.API_MAX_BODY_BYTES)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is too large a number")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"the key {key!r} appears twice in one object")
        result[key] = value
    return result


def _where(path: list[str | int]) -> str:
    return ".".join(str(part) for part in path) or "body"


def check_document(data: Any) -> None:
    """Refuses (400) a parsed document nested deeper than MAX_DEPTH, holding text with
    NUL or an unpaired surrogate (keys too), or an integer beyond 64 bits. Iterative, so
    no document can exhaust the stack."""
    pending: list[tuple[Any, list[str | int]]] = [(data, [])]
    while pending:
        value, path = pending.pop()
        if len(path) > MAX_DEPTH:
            raise exceptions.ValidationError(
                {"body": [f"JSON nested deeper than {MAX_DEPTH} levels."]}
            )
        if isinstance(value, str):
            if problem := text_problem(value):
                raise exceptions.ValidationError({_where(path): [f"Text {problem}."]})
        elif isinstance(value, bool):
            continue
        elif isinstance(value, int):
            if not INT64_MIN <= value <= INT64_MAX:
                raise exceptions.ValidationError(
                    {_where(path): ["Number out of range (64-bit integers only)."]}
                )
        elif isinstance(value, dict):
            for key, item in value.items():
                if problem := text_problem(key):
                    raise exceptions.ValidationError({_where(path): [f"A key {problem}."]})
                pending.append((item, [*path, key]))
        elif isinstance(value, list):
            pending.extend((item, [*path, index]) for index, item in enumerate(value))


class StrictJSONParser(JSONParser):
    """JSON in UTF-8, at most the view's body limit (413 beyond), no NaN/Infinity, no
    duplicate keys, then `check_document`."""

    def parse(
        self,
        stream: Any,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        context = parser_context or {}
        limit = body_limit(context.get("view"))
        request = context.get("request")
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0) if request else 0
        except ValueError:
            declared = 0
        if declared > limit:
            raise RequestTooLarge(f"The request body is over the limit of {limit} bytes.")
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise RequestTooLarge(f"The request body is over the limit of {limit} bytes.")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise exceptions.ParseError("The body is not valid UTF-8.") from None
        try:
            data = json.loads(
                text,
                parse_constant=_refuse_constant,
                parse_float=_finite,
                object_pairs_hook=_unique_keys,
            )
        except RecursionError:
            raise exceptions.ValidationError(
                {"body": [f"JSON nested deeper than {MAX_DEPTH} levels."]}
            ) from None
        except ValueError as bad:
            raise exceptions.ParseError(f"JSON parse error: {bad}") from None
        if not isinstance(data, dict):
            raise exceptions.ParseError("The body must be a JSON object.")
        check_document(data)
        return data
