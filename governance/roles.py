"""Which roles a user holds."""

from __future__ import annotations

from typing import Any

from governance.choices import ALL_ROLES


def user_roles(user: Any) -> frozenset[str]:
    """The contract roles a user holds (cached on the user object for one request)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return frozenset()
    cached = getattr(user, "_canary_roles", None)
    if cached is None:
        cached = frozenset(user.groups.filter(name__in=ALL_ROLES).values_list("name", flat=True))
        user._canary_roles = cached
    return cached
