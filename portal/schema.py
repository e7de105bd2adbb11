"""The OpenAPI schema's shared parts: the error answer every operation may give, and
request bodies documented as refusing unknown fields (a drf-spectacular hook)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    """Every refusal: `detail`, with `errors` by field for bad input and `blocking` for
    a gate or state that forbids the action."""

    detail = serializers.CharField()
    errors = serializers.DictField(required=False)  # type: ignore[assignment]
    blocking = serializers.ListField(child=serializers.CharField(), required=False)


ERROR_REF = {"$ref": "#/components/schemas/Error"}
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": ErrorSerializer.__doc__,
    "properties": {
        "detail": {"type": "string"},
        "errors": {"type": "object", "additionalProperties": {}},
        "blocking": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["detail"],
}
_WHY = {
    "400": "Invalid input (strict JSON types, text without NUL or surrogates, unknown fields "
    "refused); `errors` names each bad field.",
    "401": "No credentials, or an invalid token.",
    "403": "The token lacks the scope, or its user the role.",
    "404": "No such object (or, for the kill switch and the metrics, no such rollout).",
    "409": "The object's state does not allow this; `blocking` says why when it can.",
    "413": "The request body is over the limit (1 MiB; 8 MiB for the metrics ingest).",
    "415": "The body is not application/json.",
    "429": "Too many requests; `Retry-After` says when to try again.",
    "503": "The database is unavailable; `Retry-After` says when to try again.",
}
_RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds."}}


def _codes(method: str, operation: dict[str, Any]) -> list[str]:
    codes = ["400", "404", "429", "503"]
    if operation.get("security") != [{}]:
        codes += ["401", "403"]
    if method in ("post", "put", "patch"):
        codes += ["409", "413", "415"]
    return codes


def document_errors(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Postprocessing hook: the error answers of every operation, and request bodies that
    refuse unknown fields (`additionalProperties: false`), as the API behaves."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = ERROR_SCHEMA
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for code in _codes(method, operation):
                answer: dict[str, Any] = {
                    "description": _WHY[code],
                    "content": {"application/json": {"schema": ERROR_REF}},
                }
                if code in ("429", "503"):
                    answer["headers"] = _RETRY_AFTER
                operation["responses"].setdefault(code, answer)
    for name, schema in schemas.items():
        if name.endswith("Request") and schema.get("type") == "object":
            schema["additionalProperties"] = False
    return result


def filters(*names: str) -> list[OpenApiParameter]:
    """Exact-match text filters of a list (`?service=backend`)."""
    return [OpenApiParameter(name, str, description=f"Only this {name}.") for name in names]
