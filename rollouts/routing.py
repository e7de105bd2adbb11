"""Which variant serves a request: the library function behind the decision API and
the middleware.

Order: no active canary → stable; an `X-Canary-Version` header naming the canary
(equal, or a prefix ending at a dot: `v2` matches `v2.1.0`, `v21` does not) →
canary; segments (internal, beta testers: all; premium: a stable half) → canary;
everyone else → canary when their sticky bucket is below the weight.

Buckets: murmur3 (x86, 32 bit, unsigned) of "<rollout salt>:<sticky id>" modulo
10,000, in the canary when below weight x 100. Raising the weight only adds users,
so a user in the canary at weight w stays in it at every higher weight. The cookie
holds only the sticky id, never the assignment, so a rollback takes effect at once.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import mmh3

from rollouts.models import Segment, TrafficSplit

COOKIE = "codex-canary-id"
COOKIE_MAX_AGE = 86_400
HEADER = "x-canary-version"
_BUCKETS = 10_000


@dataclass(frozen=True)
class Decision:
    variant: str
    version: str
    reason: str
    sticky_id: str

    def as_json(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "version": self.version,
            "reason": self.reason,
            "set_cookie": {"name": COOKIE, "value": self.sticky_id, "max_age": COOKIE_MAX_AGE},
        }


def bucket(salt: str, sticky_id: str) -> int:
    return mmh3.hash(f"{salt}:{sticky_id}", seed=0, signed=False) % _BUCKETS


def header_names_canary(header: str, canary_version: str) -> bool:
    header = header.strip()
    return bool(header) and (
        canary_version == header or canary_version.startswith(header.rstrip(".") + ".")
    )


def decide(
    *,
    service: str,
    user: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    cookies: dict[str, str] | None = None,
    split: TrafficSplit | None = None,
    segments: list[Segment] | None = None,
) -> Decision:
    user = user or {}
    headers = {name.lower(): str(value) for name, value in (headers or {}).items()}
    cookie_id = (cookies or {}).get(COOKIE, "")[:128]
    sticky_id = cookie_id or str(user.get("id") or "")[:128] or secrets.token_hex(16)
    if split is None:
        split = TrafficSplit.objects.filter(service=service).first()
    stable_version = split.stable_version if split else ""
    if split is None or not split.canary_version:
        return Decision("stable", stable_version, "no_canary", sticky_id)
    canary = split.canary_version

    def to_canary(reason: str) -> Decision:
        return Decision("canary", canary, reason, sticky_id)

    if header_names_canary(headers.get(HEADER, ""), canary):
        return to_canary("header")
    if split.weight <= 0:
        return Decision("stable", stable_version, "weight", sticky_id)
    if segments is None:
        segments = list(Segment.objects.filter(is_active=True))
    for segment in segments:
        if segment.is_active and user.get(segment.attribute) == segment.value:
            if segment.share_pct >= 100 or bucket(f"{split.salt}:{segment.name}", sticky_id) < (
                segment.share_pct * _BUCKETS // 100
            ):
                return to_canary(segment.name)
            return Decision("stable", stable_version, segment.name, sticky_id)
    if bucket(split.salt, sticky_id) < split.weight * _BUCKETS // 100:
        return to_canary("weight")
    return Decision("stable", stable_version, "weight", sticky_id)
