"""The guide's five status-page components, mapped to the release services they cover."""

from __future__ import annotations

from typing import Any

COMPONENTS = [
    ("Frontend Application", "frontend", "Next.js application, static assets, client API routes"),
    ("Backend API", "backend", "FastAPI core and /api/v1 endpoints"),
    ("Payment Processing", "payments", "Checkout and payment gateway"),
    ("Database", "database", "Primary database"),
    ("Authentication", "auth", "Sign-in and tokens"),
]


def seed_components(Component: Any = None) -> None:
    if Component is None:
        from comms.models import Component
    for position, (name, services, description) in enumerate(COMPONENTS):
        Component.objects.get_or_create(
            name=name,
            defaults={"services": services, "description": description, "position": position},
        )
