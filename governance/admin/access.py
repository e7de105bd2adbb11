"""Admin access by role, the API's own check (governance.roles): a superuser without a
role reads, never acts."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.admin.utils import model_format_dict
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect

from governance.choices import (
    ALL_ROLES,
    Role,
)
from governance.roles import may_act, may_read

SIGNERS_ONLY = frozenset({Role.FINANCE, Role.SECURITY, Role.COMPLIANCE})
STEWARDS = frozenset({Role.COUNCIL, Role.STEWARD})


class RoleAccess:
    """Admin access by role: `view_roles` may look, `edit_roles` may add and change."""

    view_roles: frozenset[str] = ALL_ROLES
    edit_roles: frozenset[str] = frozenset()

    def has_module_permission(self, request: HttpRequest) -> bool:
        return may_read(request.user, self.view_roles | self.edit_roles)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return may_read(request.user, self.view_roles | self.edit_roles)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return may_act(request.user, self.edit_roles)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return may_act(request.user, self.edit_roles)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def action_roles(self, name: str) -> frozenset[str]:
        """The roles an action needs, to say so when it is refused."""
        return self.edit_roles

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        """An action the member's roles do not allow is refused with a message (Django
        would silently show the list again)."""
        name = request.POST.get("action", "") if request.method == "POST" else ""
        declared = {
            action_name: str(description) % model_format_dict(self.opts)  # type: ignore[attr-defined]
            for _func, action_name, description in self._get_base_actions()  # type: ignore[attr-defined]
        }
        if name in declared and name not in self.get_actions(request):  # type: ignore[attr-defined]
            roles = " or ".join(sorted(self.action_roles(name)))
            needs = f"the role {roles}" if roles else "a role you do not hold"
            self.message_user(  # type: ignore[attr-defined]
                request,
                f"Refused: “{declared[name]}” needs {needs}; nothing was changed.",
                messages.ERROR,
            )
            return HttpResponseRedirect(request.get_full_path())
        return super().changelist_view(request, extra_context)  # type: ignore[misc]
