"""Alert channels for stewards and on-call, through the vendors' own libraries: Slack
(incoming webhook, `#codex-alerts`), PagerDuty (Events API v2; critical alerts only) and
email. A channel that is not configured is reported as skipped, never as sent.

`alert_members` reaches a role's members instead (finance, the council): an email to
each who has an address and an in-app notification."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import pagerduty
import structlog
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from slack_sdk.webhook import WebhookClient

from comms.models import Notification

logger = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Delivery:
    channel: str
    status: str  # sent | skipped | failed
    detail: str = ""


def _slack(summary: str, severity: str, details: dict[str, Any]) -> Delivery:
    if not settings.SLACK_WEBHOOK_URL:
        return Delivery("slack", "skipped", "SLACK_WEBHOOK_URL is not set")
    lines = "\n".join(f"• {key}: {value}" for key, value in details.items())
    response = WebhookClient(settings.SLACK_WEBHOOK_URL, timeout=10).send_dict(
        {
            "channel": settings.SLACK_CHANNEL,
            "text": f"[{severity}] {summary}\n{lines}".strip(),
        }
    )
    if response.status_code >= 300:
        return Delivery("slack", "failed", f"HTTP {response.status_code}: {response.body}")
    return Delivery("slack", "sent")


def _pagerduty(
    summary: str, severity: str, source: str, details: dict[str, Any], dedup_key: str | None
) -> Delivery:
    if severity != "critical":
        return Delivery("pagerduty", "skipped", "PagerDuty pages for critical alerts only")
    if not settings.PAGERDUTY_ROUTING_KEY:
        return Delivery("pagerduty", "skipped", "PAGERDUTY_ROUTING_KEY is not set")
    client = pagerduty.EventsApiV2Client(settings.PAGERDUTY_ROUTING_KEY)
    client.url = settings.PAGERDUTY_EVENTS_URL
    client.max_http_attempts = 3  # retries must fit in the rollback step's timeout
    key = client.trigger(
        summary, source, dedup_key=dedup_key, severity="critical", custom_details=details
    )
    return Delivery("pagerduty", "sent", f"dedup_key {key}")


def _email(summary: str, severity: str, details: dict[str, Any]) -> Delivery:
    if not settings.ALERT_EMAILS:
        return Delivery("email", "skipped", "ALERT_EMAILS is not set")
    body = "\n".join([summary, "", *(f"{key}: {value}" for key, value in details.items())])
    send_mail(f"[{severity}] {summary}", body, None, settings.ALERT_EMAILS)
    return Delivery("email", "sent")


def send_alert(
    *,
    summary: str,
    source: str,
    severity: str = "critical",
    details: dict[str, Any] | None = None,
    dedup_key: str | None = None,
) -> list[Delivery]:
    """Send on every configured channel; one failing channel does not stop the others."""
    details = details or {}
    deliveries = []
    for name, send in (
        ("slack", lambda: _slack(summary, severity, details)),
        ("pagerduty", lambda: _pagerduty(summary, severity, source, details, dedup_key)),
        ("email", lambda: _email(summary, severity, details)),
    ):
        try:
            deliveries.append(send())
        except Exception as exc:
            deliveries.append(Delivery(name, "failed", f"{type(exc).__name__}: {exc}"))
    for delivery in deliveries:
        log = logger.error if delivery.status == "failed" else logger.info
        log(
            "alert_delivery",
            summary=summary,
            channel=delivery.channel,
            status=delivery.status,
            detail=delivery.detail,
        )
    return deliveries


def alert_members(
    *, role: str, summary: str, severity: str = "warning", details: dict[str, Any] | None = None
) -> list[Delivery]:
    """Email and an in-app notification to every active member holding `role`."""
    details = details or {}
    members = list(get_user_model().objects.filter(is_active=True, groups__name=role))
    if not members:
        return [Delivery(f"role:{role}", "skipped", f"no active member holds {role}")]
    title = f"[{severity}] {summary}"
    body = "\n".join([summary, "", *(f"{key}: {value}" for key, value in details.items())])
    Notification.objects.bulk_create(
        Notification(user=member, title=title[:300], body=body) for member in members
    )
    deliveries = [Delivery("in_app", "sent", f"{len(members)} member(s) of {role}")]
    emails = sorted({member.email for member in members if member.email})
    if emails:
        try:
            send_mail(title, body, None, emails)
            deliveries.append(Delivery("email", "sent", ", ".join(emails)))
        except Exception as exc:
            deliveries.append(Delivery("email", "failed", f"{type(exc).__name__}: {exc}"))
    else:
        deliveries.append(Delivery("email", "skipped", f"no member of {role} has an email"))
    for delivery in deliveries:
        logger.info("alert_delivery", summary=summary, role=role, **asdict(delivery))
    return deliveries


def alert_quietly(**kwargs: Any) -> None:
    """For callers that must not fail because an alert did (ticks, reminders)."""
    try:
        send_alert(**kwargs)
    except Exception:
        logger.exception("alert_failed")


def alert_members_quietly(**kwargs: Any) -> None:
    """`alert_members` for callers that must not fail because an alert did."""
    try:
        alert_members(**kwargs)
    except Exception:
        logger.exception("alert_failed")
