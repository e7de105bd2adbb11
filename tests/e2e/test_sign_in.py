"""A member signs in through allauth (password, then TOTP when enabled) and reaches the admin."""

from __future__ import annotations

import time
from typing import Any

import pytest
from allauth.mfa import app_settings
from allauth.mfa.totp.internal.auth import (
    TOTP,
    format_hotp_value,
    generate_totp_secret,
    hotp_value,
)

from governance.members import member_set_roles
from tests.e2e.conftest import screenshot

PASSWORD = "a-long-passphrase-42"


@pytest.fixture
def carol(transactional_db: None) -> Any:
    return member_set_roles(
        username="carol", roles=["council"], email="carol@example.com", password=PASSWORD
    ).user


def sign_in(page: Any, login: str, password: str) -> None:
    page.goto("/admin/")
    page.wait_for_url("**/accounts/login/**")
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


def test_a_member_signs_in_and_reaches_the_admin(page: Any, carol: Any) -> None:
    sign_in(page, "carol@example.com", PASSWORD)
    page.wait_for_url("**/admin/")
    assert page.locator("#site-name").inner_text() == "Canary release governance"
    screenshot(page, "sign-in-admin")


def test_a_wrong_password_is_refused(page: Any, carol: Any) -> None:
    sign_in(page, "carol", "not-the-password")
    page.wait_for_selector("text=not correct")
    assert "/accounts/login/" in page.url
    screenshot(page, "sign-in-refused")


def test_a_member_with_totp_must_enter_a_code(page: Any, carol: Any) -> None:
    secret = generate_totp_secret()
    TOTP.activate(carol, secret)
    sign_in(page, "carol", PASSWORD)
    page.wait_for_url("**/accounts/2fa/authenticate/**")
    screenshot(page, "sign-in-totp")

    page.fill("input[name=code]", "000000")
    page.click("button[type=submit]")
    page.wait_for_selector("text=Incorrect code")

    code = format_hotp_value(hotp_value(secret, int(time.time()) // app_settings.TOTP_PERIOD))
    page.fill("input[name=code]", code)
    page.click("button[type=submit]")
    page.wait_for_url("**/admin/")
    assert page.locator("#site-name").inner_text() == "Canary release governance"
