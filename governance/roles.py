"""Which roles a user holds, and the one check of the API and the admin.

Being a Django superuser grants no role: a superuser without one may read what any
member may (the admin's pages, the API's `read` scope) and do nothing else."""

from __future__ import annotations

from typing import Any

from governance.choices import ALL_ROLES, SCOPE_ROLES, Scope


def user_roles(user: Any) -> frozenset[str]:
    """The contract roles a user holds (cached on the user object for one request)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return frozenset()
    cached = getattr(user, "_canary_roles", None)
    if cached is None:
        cached = frozenset(user.groups.filter(name__in=ALL_ROLES).values_list("name", flat=True))
        user._canary_roles = cached
    return cached


def may_act(user: Any, roles: frozenset[str]) -> bool:
    """Whether `user` may do what needs one of `roles`: they hold one. No exception
    for superusers."""
    return bool(user_roles(user) & roles)


def may_read(user: Any, roles: frozenset[str]) -> bool:
    """Whether `user` may look at what members holding `roles` see: they hold one of
    them, or they are an active superuser (who reads everything, acts on nothing)."""
    is_superuser = (
        user is not None and user.is_authenticated and user.is_active and user.is_superuser
    )
    return is_superuser or may_act(user, roles)


def may_use(user: Any, scope: str, roles: frozenset[str] | None = None) -> bool:
    """The API's role check for a scope (`roles` narrows the scope's roles for one
    action): the `read` scope reads, every other scope acts."""
    required = roles or SCOPE_ROLES[scope]
    return may_read(user, required) if scope == Scope.READ else may_act(user, required)
