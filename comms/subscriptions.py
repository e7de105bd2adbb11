"""Status-page subscriptions: double opt-in by email, one-click unsubscribe, both with
signed tokens; confirmed subscribers get each incident update once."""

from __future__ import annotations

from django.conf import settings
from django.core import signing
from django.core.mail import send_mail
from django.db import IntegrityError, transaction

from comms.models import Component, IncidentUpdate, Subscriber, SubscriberDelivery
from portal import clock
from portal.enqueue import enqueue_after_commit

_SALT = {"confirm": "status-subscribe-confirm", "unsubscribe": "status-unsubscribe"}
CONFIRM_MAX_AGE_S = 7 * 86_400


def token(subscriber: Subscriber, purpose: str) -> str:
    return signing.dumps({"id": subscriber.pk, "email": subscriber.email}, salt=_SALT[purpose])


def from_token(value: str, purpose: str) -> Subscriber | None:
    try:
        data = signing.loads(
            value, salt=_SALT[purpose], max_age=CONFIRM_MAX_AGE_S if purpose == "confirm" else None
        )
    except signing.BadSignature:
        return None
    return Subscriber.objects.filter(pk=data["id"], email=data["email"]).first()


def _link(path: str) -> str:
    return f"{settings.STATUS_PAGE_URL.rstrip('/')}{path}"


def subscribe(email: str, component_codes: list[str]) -> Subscriber:
    """Record (or refresh) a subscription and mail the confirmation link."""
    subscriber, _ = Subscriber.objects.get_or_create(email=email.strip().lower())
    if component_codes:
        subscriber.components.set(Component.objects.filter(code__in=component_codes))
    send_mail(
        "Confirm your status updates",
        "Confirm that you want status updates by opening this link:\n"
        f"{_link('/status/subscriptions/confirm/' + token(subscriber, 'confirm') + '/')}\n\n"
        "If you did not ask for this, ignore this message.",
        None,
        [subscriber.email],
    )
    return subscriber


def confirm(subscriber: Subscriber) -> None:
    if subscriber.confirmed_at is None:
        subscriber.confirmed_at = clock.now()
        subscriber.save(update_fields=["confirmed_at"])


def notify_subscribers(update_id: int) -> int:
    """Email one incident update to every confirmed subscriber of its components, once."""
    update = IncidentUpdate.objects.select_related("incident").get(pk=update_id)
    components = list(update.incident.components.all())
    sent = 0
    for subscriber in Subscriber.objects.exclude(confirmed_at=None).prefetch_related("components"):
        chosen = set(subscriber.components.all())
        if chosen and not chosen & set(components):
            continue
        try:
            with transaction.atomic():
                SubscriberDelivery.objects.create(subscriber=subscriber, update=update)
        except IntegrityError:
            continue  # already sent (or being sent by another worker)
        unsubscribe = _link(
            f"/status/subscriptions/unsubscribe/{token(subscriber, 'unsubscribe')}/"
        )
        send_mail(
            f"[{update.status}] {update.incident.name}",
            f"{update.body}\n\nStatus page: {_link('/status/')}\nUnsubscribe: {unsubscribe}",
            None,
            [subscriber.email],
        )
        sent += 1
    return sent


def request_notify(update: IncidentUpdate) -> None:
    """Mail the update to subscribers after the commit (it is on the page in any case)."""
    from comms.tasks import notify_subscribers_task

    enqueue_after_commit(notify_subscribers_task, update.pk)
