"""The cache the rate limiters use (allauth's sign-in limits, the API's throttles): Redis,
failing open.

Nothing the portal keeps in this cache is the only copy of anything: it holds the hit
histories of rate limits. When Redis cannot be reached, a limiter that raises would turn
a cache outage into a sign-in outage (500), so every operation answers as an empty cache
would (nothing stored, every `add` granted, every limit unreached) and one warning is
logged. After a failure Redis is left alone for `RETRY_AFTER_S` seconds, so a request does
not pay a connection timeout per cache call while it is down.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, ClassVar, cast

import redis
import structlog
from django.core.cache.backends.redis import RedisCache, RedisCacheClient

logger = structlog.get_logger(__name__)


class FailOpenClient(RedisCacheClient):
    """Django's Redis client; an unreachable server reads as an empty cache."""

    RETRY_AFTER_S = 5.0
    _servers: list[str]
    # Per server list and per process: when each was last seen failing, plus the pause.
    _down_until: ClassVar[dict[str, float]] = {}

    def _guarded(self, fallback: Any, call: Callable[..., Any], *args: Any) -> Any:
        where = ",".join(self._servers)
        if time.monotonic() < self._down_until.get(where, 0.0):
            return fallback
        try:
            return call(*args)
        except redis.RedisError as exc:
            self._down_until[where] = time.monotonic() + self.RETRY_AFTER_S
            logger.warning(
                "cache_unavailable_failing_open",
                operation=call.__name__,
                error=f"{type(exc).__name__}: {exc}",
                retry_after_s=self.RETRY_AFTER_S,
            )
            return fallback

    def add(self, key: Any, value: Any, timeout: Any) -> bool:
        return self._guarded(True, super().add, key, value, timeout)

    def get(self, key: Any, default: Any) -> Any:
        return self._guarded(default, super().get, key, default)

    def set(self, key: Any, value: Any, timeout: Any) -> None:
        self._guarded(None, super().set, key, value, timeout)

    def touch(self, key: Any, timeout: Any) -> bool:
        return self._guarded(False, super().touch, key, timeout)

    def delete(self, key: Any) -> bool:
        return self._guarded(False, super().delete, key)

    def get_many(self, keys: Any) -> dict:
        return self._guarded({}, super().get_many, keys)

    def has_key(self, key: Any) -> bool:
        return self._guarded(False, super().has_key, key)

    def incr(self, key: Any, delta: int) -> int:
        return self._guarded(delta, super().incr, key, delta)

    def set_many(self, data: Any, timeout: Any) -> None:
        self._guarded(None, super().set_many, data, timeout)

    def delete_many(self, keys: Any) -> None:
        self._guarded(None, super().delete_many, keys)

    def _count(self, key: str, timeout: int, delta: int) -> int:
        pipeline = self.get_client(key, write=True).pipeline()
        pipeline.incr(key, delta)
        pipeline.expire(key, timeout)
        return int(pipeline.execute()[0])

    def count(self, key: str, timeout: int, delta: int) -> int:
        return self._guarded(delta, self._count, key, timeout, delta)


class FailOpenRedisCache(RedisCache):
    """`django.core.cache.backends.redis.RedisCache` with `FailOpenClient`."""

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = FailOpenClient

    def count(self, key: str, *, timeout: int, delta: int = 1) -> int:
        """Add `delta` to the counter at `key` (created at 0, expiring `timeout` seconds
        after its last count) and return it, in one round trip (Django's `incr` takes two
        and refuses a missing key). `delta` while Redis is unreachable."""
        return cast(FailOpenClient, self._cache).count(
            self.make_and_validate_key(key), timeout, delta
        )
