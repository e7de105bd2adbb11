"""Fixtures of the portal tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient


@pytest.fixture
def client_for(
    team: dict[str, Any], token_for: Callable[..., str], api: Callable[..., APIClient]
) -> Callable[..., APIClient]:
    return lambda name, *scopes: api(token_for(team[name], *scopes))
