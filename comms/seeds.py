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


# The guide's three templates: subject, body, channels and advance notice.
TEMPLATES = [
    (
        "scheduled_maintenance",
        "Scheduled maintenance",
        "Scheduled System Maintenance",
        "We're deploying improvements to enhance your experience.\n"
        "You may notice brief performance fluctuations.\nNo action required on your part.\n\n"
        "Time: [DATE] [TIME] [TIMEZONE]\nDuration: ~2 hours\nImpact: Minimal\n\n"
        "Status updates: https://status.codexdominion.app",
        ["email", "in_app"],
        86_400,
    ),
    (
        "feature_rollout",
        "Feature rollout",
        "New Feature Available",
        "We're gradually rolling out [FEATURE_NAME] to all users.\n"
        "You may see this feature appear in the coming hours.\n\nLearn more: [BLOG_POST_URL]",
        ["in_app", "webhook:blog"],
        3600,
    ),
    (
        "incident_notification",
        "Incident notification",
        "Service Degradation Detected",
        "We've detected an issue and are working to resolve it.\n"
        "Your data is safe. Updates will be posted every 30 minutes.\n\n"
        "Current status: [STATUS]\nAffected services: [SERVICES]\n\n"
        "Real-time updates: https://status.codexdominion.app",
        ["status_page", "webhook:twitter", "email"],
        0,
    ),
]


def seed_templates(MessageTemplate: Any = None) -> None:
    if MessageTemplate is None:
        from comms.models import MessageTemplate
    for key, name, subject, body, channels, lead in TEMPLATES:
        MessageTemplate.objects.get_or_create(
            key=key,
            defaults={
                "name": name,
                "subject": subject,
                "body": body,
                "channels": channels,
                "lead_time_s": lead,
            },
        )
