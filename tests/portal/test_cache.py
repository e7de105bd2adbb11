"""The rate limiters' cache: Redis that reads as an empty cache (and says so) when down."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.conf import settings
from django.core.cache import caches

from portal.cache import FailOpenRedisCache
from tests.servers import closed_port


def cache_at(location: str) -> FailOpenRedisCache:
    return FailOpenRedisCache(location, {"KEY_PREFIX": f"test-{uuid.uuid4().hex[:8]}"})


def test_counters_count_in_one_call() -> None:
    cache = cache_at(settings.CACHES["default"]["LOCATION"])
    assert [cache.count("calls", timeout=60) for _ in range(3)] == [1, 2, 3]
    assert cache.get("calls") == 3


def test_an_unreachable_redis_reads_as_an_empty_cache(caplog: pytest.LogCaptureFixture) -> None:
    cache = cache_at(f"redis://127.0.0.1:{closed_port()}/0")
    assert cache.add("lock", True, timeout=10) is True  # a limiter's lock is granted
    assert cache.get("history", []) == []
    assert cache.set("history", [1.0], timeout=10) is None
    assert cache.get_many(["a", "b"]) == {}
    assert cache.count("calls", timeout=60) == 1
    assert cache.delete("history") is False
    assert "cache_unavailable_failing_open" in caplog.text


def test_the_default_cache_is_the_failing_open_one(settings: Any) -> None:
    assert isinstance(caches["default"], FailOpenRedisCache)
