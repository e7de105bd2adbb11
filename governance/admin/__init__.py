"""The stewards' admin. Access follows roles (not Django model permissions): every
member is staff, and each page shows and allows what the member's roles allow, by the
API's own check (governance.roles): a superuser without a role reads, never acts.
Finance, security and compliance see the releases that need their sign-off and the
items they may sign. Every write goes through the same services as the API."""

from __future__ import annotations

from governance.admin import reference, releases

__all__ = ["reference", "releases"]
