"""Sending JSON text as is, and what a refusal under /api/ and /ops/ looks like."""

from __future__ import annotations

import json
from typing import Any

from django.test import Client
from rest_framework.test import APIClient


def send(client: Client | APIClient, url: str, body: Any, method: str = "post") -> Any:
    """`body` as JSON text (escapes kept: "\\ud800" stays a lone surrogate on the wire)."""
    text = body if isinstance(body, str | bytes) else json.dumps(body)
    return getattr(client, method)(url, data=text, content_type="application/json")


def refused(response: Any, status: int = 400) -> dict[str, Any]:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["detail"]
    return body
