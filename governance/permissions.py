"""DRF permission: the token must carry the view's scope AND its user must hold a role
that the scope (or the view, for one action) requires. The role check is the admin's
too (governance.roles): a superuser without a role may use the `read` scope only."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from governance.choices import SCOPE_ROLES, Scope
from governance.models import ApiToken
from governance.roles import may_use


def _names(roles: frozenset[str]) -> str:
    return " or ".join(sorted(roles))


class ScopeAndRole(BasePermission):
    """Views name `required_scope` (default `read`) and may narrow the roles with
    `required_roles` or `get_required_roles(request)`. Browser sessions (with CSRF)
    carry every scope; roles apply to them all the same."""

    message = "You do not have permission to perform this action."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not user or not user.is_authenticated:
            return False
        if hasattr(view, "get_required_scope"):
            scope = view.get_required_scope(request)
        else:
            scope = getattr(view, "required_scope", Scope.READ)
        token = request.auth if isinstance(request.auth, ApiToken) else None
        if token is not None and scope not in token.scopes:
            self.message = f"This token lacks the scope '{scope}'."
            return False
        if hasattr(view, "get_required_roles"):
            required = view.get_required_roles(request)
        else:
            required = getattr(view, "required_roles", None) or SCOPE_ROLES[scope]
        if not may_use(user, scope, required):
            self.message = f"This requires the role {_names(required)}."
            return False
        return True
