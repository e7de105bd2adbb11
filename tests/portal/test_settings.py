"""Settings come from the environment; bad values stop the process at start."""

from __future__ import annotations

import secrets

import pytest

from tests.conftest import run_manage

pytestmark = pytest.mark.django_db(transaction=True)

PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "ALLOWED_HOSTS": "portal.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://portal.example.com",
    "SECURE_HSTS_PRELOAD": "1",
}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DEBUG": "maybe"}, "DEBUG='maybe' is not a boolean"),
        ({"DEBUG": "0", "SECRET_KEY": None}, "SECRET_KEY"),
        ({"CANARY_TIME_SCALE": "0"}, "CANARY_TIME_SCALE=0.0 must be greater than 0"),
        ({"CANARY_TIME_SCALE": "fast"}, "CANARY_TIME_SCALE='fast' is not a number"),
        ({"DATABASE_URL": "mysql://root@localhost/db"}, "DATABASE_URL must be a postgres"),
        ({"DATABASE_URL": "nonsense"}, "DATABASE_URL"),
        ({"REDIS_URL": "http://cache"}, "REDIS_URL='http://cache' must be a redis:// URL"),
        ({"HEALTH_CHECK_TIMEOUT_S": "10"}, "must be at most 3.0"),
        ({"CSRF_TRUSTED_ORIGINS": "portal.example.com"}, "must start with http"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
        ({"DB_CONN_MAX_AGE": "-1"}, "DB_CONN_MAX_AGE=-1 must be at least 0"),
        ({"DEMO_NGINX_PORTS": "8081"}, "DEMO_NGINX_PORTS needs 2 different ports"),
        ({"DEMO_NGINX_PORTS": "8081,http"}, "DEMO_NGINX_PORTS='8081,http': give whole port"),
        ({"DEMO_UPSTREAM_PORTS": "1,2,3,70000"}, "DEMO_UPSTREAM_PORTS: a port is between"),
        ({"DEMO_NGINX_PORTS": "9101,9102"}, "must not share a port"),
    ],
)
def test_bad_values_fail_loudly_at_start(env: dict[str, str | None], message: str) -> None:
    result = run_manage("check", **env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr


def test_secret_key_can_come_from_a_file(tmp_path: pytest.TempPathFactory) -> None:
    key_file = tmp_path / "secret"  # type: ignore[operator]
    key_file.write_text(secrets.token_urlsafe(50) + "\n")
    env = {**PRODUCTION, "SECRET_KEY": None, "SECRET_KEY_FILE": str(key_file)}
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", **env)
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_deploy_passes_with_production_settings() -> None:
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_complains_when_https_is_switched_off() -> None:
    env = {**PRODUCTION, "SECURE_SSL_REDIRECT": "0", "SESSION_COOKIE_SECURE": "0"}
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", **env)
    assert result.returncode != 0
    assert "SECURE_SSL_REDIRECT" in result.stderr


def test_a_fresh_checkout_needs_no_environment() -> None:
    bare = {
        name: None for name in ("DEBUG", "SECRET_KEY", "DATABASE_URL", "REDIS_URL", "ALLOWED_HOSTS")
    }
    result = run_manage("check", **bare)
    assert result.returncode == 0, result.stderr
