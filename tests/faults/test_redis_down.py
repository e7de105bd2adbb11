"""Redis down: sign-in, the kill switch's refusals and subscriptions keep working through a
real gunicorn whose REDIS_URL points at a closed port (the rate limits fail open, and say
so in the log)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session

from governance.members import member_set_roles
from governance.models import AuditEvent
from tests.conftest import gunicorn
from tests.servers import closed_port

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "a-long-passphrase-42"


@pytest.fixture
def carol(settings: Any) -> Any:
    # The server checks passwords with the default hashers, not the tests' fast one.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    return member_set_roles(
        username="carol", roles=["council"], email="carol@example.com", password=PASSWORD
    ).user


@pytest.fixture
def server() -> Iterator[tuple[str, Any]]:
    with gunicorn(capture=True, REDIS_URL=f"redis://127.0.0.1:{closed_port()}/0") as running:
        yield running


def sign_in(browser: httpx.Client, login: str, password: str) -> httpx.Response:
    form = browser.get("/accounts/login/")
    assert form.status_code == 200, form.text
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
    assert found, form.text
    return browser.post(
        "/accounts/login/",
        data={"login": login, "password": password, "csrfmiddlewaretoken": found.group(1)},
        headers={"Referer": f"{browser.base_url}accounts/login/"},
    )


def test_sign_in_works_with_redis_down(carol: Any, server: tuple[str, Any]) -> None:
    url, proc = server
    with httpx.Client(base_url=url, timeout=20) as browser:
        wrong = sign_in(browser, "carol", "not-the-password")
        assert wrong.status_code == 200 and "not correct" in wrong.text
        signed_in = sign_in(browser, "carol@example.com", PASSWORD)
        assert signed_in.status_code == 302, signed_in.text
        assert signed_in.headers["location"] == "/admin/"
        portal = browser.get("/admin/")
        assert portal.status_code == 200 and "Canary release governance" in portal.text

        # Nothing lost: the session is stored and the sign-in recorded on the member.
        assert Session.objects.count() == 1
        assert get_user_model().objects.get(pk=carol.pk).last_login is not None

        # Refused calls are still answered in JSON and audited (no limiter to ask).
        refused = httpx.post(f"{url}/ops/canary/abort", json={"version": "v1"}, timeout=20)
        assert refused.status_code == 401 and refused.json()["detail"]
        assert AuditEvent.objects.filter(action="killswitch.refused").count() == 1

    proc.terminate()
    proc.wait(timeout=10)
    assert "cache_unavailable_failing_open" in proc.stdout.read()
