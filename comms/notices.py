"""Customer notices: rendered from a template, then sent exactly once per channel by a
worker (claim the notice, send what is not yet sent, record each channel's result)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F, Q, QuerySet

from comms.models import MessageTemplate, Notice, Notification
from comms.templating import check_variables, render
from governance.audit import audit_append
from governance.choices import ALL_ROLES
from portal import clock
from portal.enqueue import enqueue_after_commit
from portal.errors import Invalid


def notice_create(
    *,
    template: str,
    variables: dict[str, Any],
    actor: Any,
    release: Any = None,
    send_at: datetime | None = None,
) -> Notice:
    found = MessageTemplate.objects.filter(key=template).first()
    if found is None:
        raise Invalid(f"Unknown template {template!r}.", errors={"template": ["Unknown."]})
    values = check_variables((found.subject, found.body), variables)
    with transaction.atomic():
        notice = Notice.objects.create(
            template=found,
            release=release,
            variables=values,
            subject=render(found.subject, values),
            body=render(found.body, values),
            channels=list(found.channels),
            send_at=send_at or clock.now(),
            created_by=actor.get_username(),
        )
        audit_append(
            action="notice.created",
            actor=actor,
            obj=notice,
            release_id=release.pk if release else None,
            data={
                "template": template,
                "channels": notice.channels,
                "send_at": notice.send_at.isoformat(),
            },
        )
        from comms.tasks import send_notice

        # If the broker cannot take it, the periodic sweep sends it.
        enqueue_after_commit(send_notice, notice.pk, eta=notice.send_at)
    return notice


CHANNELS = ("email", "in_app", "status_page")


def is_channel(channel: object) -> bool:
    """Ours, or `webhook:NAME` for one we cannot reach directly (NOTICE_WEBHOOKS[NAME])."""
    return isinstance(channel, str) and (
        channel in CHANNELS or (channel.startswith("webhook:") and len(channel) > len("webhook:"))
    )


def _deliver(notice: Notice, channel: str) -> str:
    if channel == "email":
        recipients = settings.CUSTOMER_NOTICE_EMAILS
        if not recipients:
            return "skipped: CUSTOMER_NOTICE_EMAILS is not set"
        send_mail(notice.subject, notice.body, None, recipients)
        return "sent"
    if channel == "in_app":
        members = (
            get_user_model().objects.filter(is_active=True, groups__name__in=ALL_ROLES).distinct()
        )
        Notification.objects.bulk_create(
            Notification(user=user, notice=notice, title=notice.subject, body=notice.body)
            for user in members
        )
        return "sent"
    if channel.startswith("webhook:"):
        # Channels we cannot reach directly (Twitter, the blog): an outgoing webhook each.
        url = settings.NOTICE_WEBHOOKS.get(channel.split(":", 1)[1])
        if not url:
            return f"skipped: no webhook configured for {channel}"
        httpx.post(
            url,
            json={"channel": channel, "subject": notice.subject, "body": notice.body},
            timeout=10,
        ).raise_for_status()
        return "sent"
    if channel == "status_page":
        from comms.services import incident_post_notice

        return f"sent: incident update {incident_post_notice(notice).code}"
    raise ValueError(f"unknown channel {channel}")


# A claim older than this belongs to a worker that died mid-send; another may take it over.
CLAIM_LEASE = timedelta(minutes=10)


def sendable(now: datetime) -> QuerySet[Notice]:
    """Pending notices that are due and that no live worker holds."""
    return Notice.objects.filter(state=Notice.State.PENDING, send_at__lte=now).filter(
        Q(claimed_at=None) | Q(claimed_at__lt=now - CLAIM_LEASE)
    )


def notice_send(notice_id: int) -> str:
    """Claim, send the channels not yet sent, record. Raises when a channel failed (the
    task retries with backoff; the claim is released so the retry can take it)."""
    now = clock.now()
    claimed = sendable(now).filter(pk=notice_id).update(claimed_at=now, attempts=F("attempts") + 1)
    if claimed != 1:
        return "not due, or another worker has it"
    notice = Notice.objects.get(pk=notice_id)
    failures = []
    for channel in notice.channels:
        if str(notice.deliveries.get(channel, "")).startswith(("sent", "skipped")):
            continue
        try:
            notice.deliveries[channel] = _deliver(notice, channel)
        except Exception as exc:
            failures.append(f"{channel}: {type(exc).__name__}: {exc}")
        else:
            # Recorded at once: a worker that dies later resends only the channel in flight.
            notice.save(update_fields=["deliveries"])
    notice.last_error = "; ".join(failures)
    if failures:
        notice.claimed_at = None  # let the retry claim it
        notice.save(update_fields=["deliveries", "last_error", "claimed_at"])
        raise RuntimeError(notice.last_error)
    notice.state, notice.sent_at = Notice.State.SENT, clock.now()
    notice.save(update_fields=["deliveries", "last_error", "state", "sent_at"])
    return "sent"


def notice_give_up(notice_id: int) -> None:
    Notice.objects.filter(pk=notice_id, state=Notice.State.PENDING).update(
        state=Notice.State.FAILED
    )


def notice_lead_problem(release: Any, now: datetime) -> str | None:
    """Why a release that requires a customer notice may not deploy yet, or None."""
    if not release.notice_required:
        return None
    sent = Notice.objects.filter(release=release, state=Notice.State.SENT).select_related(
        "template"
    )
    if not sent:
        return "Customer notice: none sent for this release"
    if any(n.sent_at and n.sent_at <= now - clock.scaled(n.template.lead_time_s) for n in sent):
        return None
    earliest = min(n.sent_at + clock.scaled(n.template.lead_time_s) for n in sent if n.sent_at)
    return f"Customer notice: sent, but its lead time ends at {earliest.isoformat()}"
