"""Subscriptions: double opt-in by email, per-component, one-click unsubscribe, each
incident update mailed once."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.core import mail
from django.test import Client

from comms.models import Component, IncidentUpdate, Subscriber
from comms.subscriptions import notify_subscribers
from governance.models import Release
from rollouts import lifecycle

pytestmark = pytest.mark.django_db


def link(message: Any, kind: str) -> str:
    found = re.search(
        rf"http://127\.0\.0\.1:8000(/status/subscriptions/{kind}/[^/\s]+/)", message.body
    )
    assert found, message.body
    return found.group(1)


def subscribe(email: str, *components: str) -> Subscriber:
    codes = [Component.objects.get(name=name).code for name in components]
    response = Client().post("/status/subscriptions/", {"email": email, "component": codes})
    assert response.status_code == 200
    return Subscriber.objects.get(email=email)


def test_double_opt_in_then_updates_then_one_click_unsubscribe(
    approved: Callable[..., Release], team: dict[str, Any]
) -> None:
    subscriber = subscribe("visitor@example.com")
    assert subscriber.confirmed_at is None
    confirmation = mail.outbox[-1]
    assert confirmation.to == ["visitor@example.com"]
    page = Client().get(link(confirmation, "confirm"))
    assert page.status_code == 200 and "Subscribed" in page.content.decode()
    subscriber.refresh_from_db()
    assert subscriber.confirmed_at is not None

    rollout = lifecycle.rollout_start(release=approved(), actor=team["erin"])
    lifecycle.rollout_abort(rollout=rollout, actor=team["oscar"], reason="errors")
    update = IncidentUpdate.objects.get()
    assert notify_subscribers(update.pk) == 1
    assert notify_subscribers(update.pk) == 0  # once
    news = mail.outbox[-1]
    assert news.subject.startswith("[identified] Degraded service: backend")
    assert Client().get(link(news, "unsubscribe")).status_code == 200
    assert not Subscriber.objects.exists()


def test_unconfirmed_and_other_component_subscribers_are_not_mailed(
    approved: Callable[..., Release], team: dict[str, Any]
) -> None:
    subscribe("pending@example.com")
    database_only = subscribe("db@example.com", "Database")
    Client().get(link(mail.outbox[-1], "confirm"))
    database_only.refresh_from_db()
    assert database_only.confirmed_at is not None
    rollout = lifecycle.rollout_start(release=approved(), actor=team["erin"])
    lifecycle.rollout_abort(rollout=rollout, actor=team["oscar"], reason="errors")
    assert notify_subscribers(IncidentUpdate.objects.get().pk) == 0


@pytest.mark.parametrize(
    "path", ["/status/subscriptions/confirm/forged/", "/status/subscriptions/confirm/abc:def/"]
)
def test_a_forged_link_is_refused(path: str) -> None:
    assert Client().get(path).status_code == 400


def test_a_bad_address_is_refused() -> None:
    assert Client().post("/status/subscriptions/", {"email": "nope"}).status_code == 400
    assert not Subscriber.objects.exists()
