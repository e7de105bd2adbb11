"""Provisioning members: a user and exactly the roles they hold."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction

from governance.audit import audit_append
from governance.choices import ALL_ROLES


@dataclass(frozen=True)
class MemberResult:
    user: Any
    created: bool
    roles: tuple[str, ...]
    password_warnings: tuple[str, ...] = ()


def member_set_roles(
    *,
    username: str,
    roles: list[str],
    email: str | None = None,
    password: str | None = None,
    acting_user: Any = None,
) -> MemberResult:
    """Create or update a member and set exactly these roles (other groups are kept).

    Members with a role get staff status: the admin is where they work, and what
    they may do there is limited by their roles.
    """
    User = get_user_model()
    username = (username or "").strip()
    if not username:
        raise ValidationError("A username is required.")
    try:
        User.username_validator(username)
    except ValidationError as exc:
        raise ValidationError(f"Invalid username {username!r}: {' '.join(exc.messages)}") from exc
    if len(username) > 150:
        raise ValidationError("The username is longer than 150 characters.")
    if not roles:
        raise ValidationError(f"At least one role is required: {', '.join(sorted(ALL_ROLES))}.")
    unknown = sorted(set(roles) - ALL_ROLES)
    if unknown:
        raise ValidationError(
            f"Unknown role(s): {', '.join(unknown)}. Valid: {', '.join(sorted(ALL_ROLES))}."
        )
    if email is not None:
        email = email.strip().lower()
        try:
            validate_email(email)
        except ValidationError:
            raise ValidationError(f"Invalid email address {email!r}.") from None
    if password is not None and not password:
        raise ValidationError("The password must not be empty.")

    with transaction.atomic():
        existing = User.objects.select_for_update().filter(username=username).first()
        created = existing is None
        user = existing or User(username=username)
        if email is not None:
            taken = (
                User.objects.filter(email__iexact=email).exclude(pk=user.pk).exists()
                or EmailAddress.objects.filter(email__iexact=email).exclude(user=user.pk).exists()
            )
            if taken:
                raise ValidationError(f"The email {email!r} belongs to another member.")
            user.email = email
        warnings: tuple[str, ...] = ()
        if password is not None:
            try:
                password_validation.validate_password(password, user)
            except ValidationError as exc:
                warnings = tuple(exc.messages)
            user.set_password(password)
        elif created:
            user.set_unusable_password()
        user.is_staff = True
        user.save()

        previous = sorted(user.groups.filter(name__in=ALL_ROLES).values_list("name", flat=True))
        wanted = sorted(set(roles))
        # Role groups come from a data migration; recreate any that were deleted since.
        user.groups.remove(*Group.objects.filter(name__in=set(previous) - set(wanted)))
        user.groups.add(*(Group.objects.get_or_create(name=name)[0] for name in wanted))
        if email is not None:
            EmailAddress.objects.filter(user=user).exclude(email__iexact=email).update(
                primary=False
            )
            EmailAddress.objects.update_or_create(
                user=user, email=email, defaults={"verified": True, "primary": True}
            )
        audit_append(
            action="member.created" if created else "member.updated",
            actor=acting_user,
            obj=user,
            data={
                "username": username,
                "roles": wanted,
                "previous_roles": previous,
                "email": user.email,
                "password_changed": password is not None,
            },
        )
    return MemberResult(user, created, tuple(wanted), warnings)
