"""Template context: the signed-in member's unread in-app notifications, for the badge."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from comms.models import Notification


def unread_notifications(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "unread_notifications": Notification.objects.filter(user_id=user.pk, read_at=None).count()
    }
