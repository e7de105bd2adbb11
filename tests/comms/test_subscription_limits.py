"""Subscriptions are rate limited per email address and per client address: posting a
form twenty times cannot send twenty confirmation mails to someone."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.test import Client
from django.utils import timezone

from comms.models import Subscriber
from tests.servers import closed_port

pytestmark = pytest.mark.django_db

URL = "/status/subscriptions/"


@pytest.fixture
def frozen() -> Iterator[Any]:
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        yield traveller


def test_twenty_posts_for_one_address_send_three_confirmations(frozen: Any) -> None:
    # From twenty different clients, so only the per-address limit is at work.
    answers = [
        Client(REMOTE_ADDR=f"198.51.100.{n}").post(URL, {"email": "Victim@Example.com"})
        for n in range(20)
    ]
    assert [a.status_code for a in answers] == [200] * 3 + [429] * 17
    assert answers[3]["Retry-After"] == "3600"
    assert "Too many subscription requests" in answers[3].content.decode()
    assert [m.to for m in mail.outbox] == [["victim@example.com"]] * 3
    assert Subscriber.objects.count() == 1
    # Someone else is not affected.
    assert Client().post(URL, {"email": "other@example.com"}).status_code == 200

    frozen.shift(3599)
    assert Client().post(URL, {"email": "victim@example.com"}).status_code == 429
    frozen.shift(1)
    assert Client().post(URL, {"email": "victim@example.com"}).status_code == 200
    assert len(mail.outbox) == 5


def test_one_client_is_limited_whatever_addresses_it_names(settings: Any, frozen: Any) -> None:
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "subscribe_client": "5/h"}
    client = Client(REMOTE_ADDR="203.0.113.5")
    answers = [client.post(URL, {"email": f"reader{n}@example.com"}) for n in range(6)]
    assert [a.status_code for a in answers] == [200] * 5 + [429]
    assert len(mail.outbox) == 5 and Subscriber.objects.count() == 5
    # Malformed posts count too, and are answered 429 once past the limit.
    assert client.post(URL, {"email": "nope"}).status_code == 429
    assert Client(REMOTE_ADDR="203.0.113.6").post(URL, {"email": "nope"}).status_code == 400
    frozen.shift(3600)
    assert client.post(URL, {"email": "reader9@example.com"}).status_code == 200


def test_subscribing_works_with_the_cache_down(
    settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.CACHES = {
        "default": {
            "BACKEND": "portal.cache.FailOpenRedisCache",
            "LOCATION": f"redis://127.0.0.1:{closed_port()}/0",
        }
    }
    assert Client().post(URL, {"email": "reader@example.com"}).status_code == 200
    assert [m.to for m in mail.outbox] == [["reader@example.com"]]
    assert "cache_unavailable_failing_open" in caplog.text
