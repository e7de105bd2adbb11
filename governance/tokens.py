"""API tokens: random, shown once, stored as a SHA-256 hash, limited by scopes.

Tokens carry 256 bits of randomness, so a fast hash is the right choice: there
is nothing to brute-force, and lookup by hash needs no constant-time compare.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from governance.audit import audit_append
from governance.choices import Scope
from governance.models import ApiToken
from governance.roles import may_use
from portal import clock

TOKEN_PREFIX = "cnp_"  # noqa: S105  (marks our tokens; not a secret)
_TOUCH_EVERY = timedelta(seconds=60)


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def scopes_lacking_role(user: Any, scopes: list[str]) -> list[str]:
    """Scopes the user cannot use today for want of a role (the token still needs both)."""
    return [scope for scope in scopes if not may_use(user, scope)]


def token_issue(
    *, user: Any, scopes: list[str], name: str = "", acting_user: Any = None
) -> tuple[ApiToken, str]:
    """Create a token; returns the row and the raw token, which is never stored."""
    unknown = sorted(set(scopes) - set(Scope.values))
    if unknown:
        raise ValidationError(
            f"Unknown scope(s): {', '.join(unknown)}. Valid: {', '.join(Scope.values)}."
        )
    if not scopes:
        raise ValidationError("A token needs at least one scope.")
    if not user.is_active:
        raise ValidationError(f"User {user.get_username()!r} is deactivated.")
    if len(name) > 100:
        raise ValidationError("The token name is longer than 100 characters.")
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken(
            user=user,
            name=name,
            prefix=raw[:12],
            key_hash=hash_token(raw),
            scopes=sorted(set(scopes)),
        )
        token._history_user = acting_user  # type: ignore[attr-defined]
        token.save()
        audit_append(
            action="token.issued",
            actor=acting_user,
            obj=token,
            data={
                "user": user.get_username(),
                "name": name,
                "scopes": token.scopes,
                "prefix": token.prefix,
            },
        )
    return token, raw


def token_authenticate(raw: str) -> ApiToken | None:
    """The active token for this raw value, or None. Marks it used (at most once a minute)."""
    if not raw.startswith(TOKEN_PREFIX) or len(raw) > 200:
        return None
    token = (
        ApiToken.objects.select_related("user")
        .filter(key_hash=hash_token(raw), revoked_at__isnull=True)
        .first()
    )
    if token is None:
        return None
    now = clock.now()
    if token.last_used_at is None or now - token.last_used_at >= _TOUCH_EVERY:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def token_revoke(*, token: ApiToken, acting_user: Any = None) -> bool:
    """Revoke a token; False if it already was."""
    with transaction.atomic():
        token = ApiToken.objects.select_for_update().get(pk=token.pk)
        if token.revoked_at is not None:
            return False
        token.revoked_at = clock.now()
        token._history_user = acting_user  # type: ignore[attr-defined]
        token.save(update_fields=["revoked_at"])
        audit_append(
            action="token.revoked",
            actor=acting_user,
            obj=token,
            data={"user": token.user.get_username(), "prefix": token.prefix},
        )
    return True
