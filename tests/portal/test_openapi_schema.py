"""The OpenAPI schema describes the answers as they are: a shape for every answer, lists
as arrays, the error answers of each operation, request bodies refusing unknown fields."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def schema(django_db_blocker: Any) -> dict[str, Any]:
    with django_db_blocker.unblock():
        response = Client().get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    return response.json()


def operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in ("get", "post", "patch", "put", "delete")
    ]


def resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def test_every_answer_has_a_documented_shape(schema: dict[str, Any]) -> None:
    bare = []
    for path, method, operation in operations(schema):
        for code, answer in operation["responses"].items():
            body = resolve(schema, answer["content"]["application/json"]["schema"])
            if body.get("type") == "array":
                body = resolve(schema, body["items"])
            if not body.get("properties"):
                bare.append(f"{method.upper()} {path} {code}")
    assert bare == []


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/releases/",
        "/api/v1/rollouts/",
        "/api/v1/audit/",
        "/api/v1/notifications/",
        "/api/v1/releases/{id}/votes/",
    ],
)
def test_lists_are_documented_as_arrays(path: str, schema: dict[str, Any]) -> None:
    answer = schema["paths"][path]["get"]["responses"]["200"]
    assert resolve(schema, answer["content"]["application/json"]["schema"])["type"] == "array"


def test_error_answers_are_documented_on_every_operation(schema: dict[str, Any]) -> None:
    missing = []
    for path, method, operation in operations(schema):
        wanted = {"400", "401", "403", "404", "429"}
        if method != "get":
            wanted |= {"409", "413"}
        for code in sorted(wanted - set(operation["responses"])):
            missing.append(f"{method.upper()} {path} {code}")
        error = operation["responses"].get("400", {}).get("content", {})
        assert resolve(schema, error["application/json"]["schema"])["required"] == ["detail"]
    assert missing == []


def test_request_bodies_refuse_unknown_fields(schema: dict[str, Any]) -> None:
    open_bodies = []
    for path, method, operation in operations(schema):
        if "requestBody" not in operation:
            continue
        body = resolve(schema, operation["requestBody"]["content"]["application/json"]["schema"])
        if body.get("additionalProperties") is not False:
            open_bodies.append(f"{method.upper()} {path}")
    assert open_bodies == []
