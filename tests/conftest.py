"""Shared fixtures: real PostgreSQL and Redis, personas, API clients, subprocess helpers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.db import connection
from django.db.backends.signals import connection_created
from django.test import Client
from rest_framework.test import APIClient

from governance.choices import ItemStatus
from governance.members import member_set_roles
from governance.models import Release
from governance.services import checklist_sign, release_create
from governance.tokens import token_issue
from tests.servers import ROOT, database_url, free_port, gunicorn_command, reachable, serving

ARTIFACTS = ROOT / "test-artifacts"


def pytest_configure(config: pytest.Config) -> None:
    database = settings.DATABASES["default"]
    if database["ENGINE"] != "django.db.backends.postgresql" or not settings.REDIS_URL:
        pytest.exit(
            "The suite runs on PostgreSQL and Redis: run it with `make test` "
            "(or set DATABASE_URL=postgres://... and REDIS_URL=redis://...).",
            returncode=3,
        )
    host, port = database.get("HOST") or "127.0.0.1", int(database.get("PORT") or 5432)
    if not reachable(host, port):
        pytest.exit(
            f"PostgreSQL is not reachable at {host}:{port}. Start it with\n"
            "  pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
            returncode=3,
        )
    redis = urlsplit(settings.REDIS_URL)
    if not reachable(redis.hostname or "127.0.0.1", redis.port or 6379):
        pytest.exit(
            f"Redis is not reachable at {redis.hostname}:{redis.port}. Start it with\n"
            "  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save ''",
            returncode=3,
        )


def _allow_flush(sender: Any, connection: Any, **kwargs: Any) -> None:
    # Transactional tests empty every table with TRUNCATE between tests; the audit
    # table's trigger lets that through only when the session asks for it.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET governance.allow_audit_truncate = 'on'")


connection_created.connect(_allow_flush)


def test_database_url() -> str:
    """DATABASE_URL naming the test database, for subprocesses (servers, workers, CLIs)."""
    return database_url(connection.settings_dict["NAME"])


def subprocess_env(**overrides: str | None) -> dict[str, str]:
    env = {**os.environ, "DATABASE_URL": test_database_url(), "PYTHONUNBUFFERED": "1"}
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # the browser tests' concern, not a server's
    env.setdefault("STATUS_SNAPSHOT_DIR", str(ARTIFACTS / "status"))
    env.setdefault("AUDIT_ANCHOR_PATH", str(ARTIFACTS / "audit-anchor"))
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def run_manage(*args: str, **env: str | None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        env=subprocess_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )


@contextmanager
def gunicorn(
    *, workers: int = 1, capture: bool = False, **env: str | None
) -> Iterator[tuple[str, subprocess.Popen]]:
    """The portal under gunicorn on a free loopback port, with the test database unless
    `env` says otherwise; `capture` keeps its output (logs) on `proc.stdout`."""
    port = free_port()
    with serving(
        gunicorn_command(port, workers),
        port,
        env=subprocess_env(**env),
        cwd=ROOT,
        stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
        stderr=subprocess.STDOUT if capture else subprocess.DEVNULL,
        text=True,
    ) as proc:
        yield f"http://127.0.0.1:{port}", proc


@pytest.fixture(autouse=True)
def _reference_data(request: pytest.FixtureRequest) -> None:
    """Seeded rows (risk rules, checklist templates, notice policy) come from data
    migrations; a transactional test's flush removes them, so put them back."""
    uses_db = request.node.get_closest_marker("django_db") or {
        "db",
        "transactional_db",
        "live_server",
    } & set(request.fixturenames)
    if uses_db:
        request.getfixturevalue(
            "transactional_db"
            if "transactional_db" in request.fixturenames or "live_server" in request.fixturenames
            else "db"
        )
        from comms.seeds import seed_components, seed_templates
        from governance.seeds import seed_governance, seed_services
        from rollouts.seeds import seed_demo_services, seed_rollouts

        seed_governance()
        seed_services()
        seed_demo_services()
        seed_rollouts()
        seed_components()
        seed_templates()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any, tmp_path: Path) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.STATUS_SNAPSHOT_DIR = str(tmp_path / "status")
    # One anchor for the test and the servers and workers it starts; each test's
    # trail starts empty, and so does its anchor.
    settings.AUDIT_ANCHOR_PATH = str(ARTIFACTS / "audit-anchor")
    (ARTIFACTS / "audit-anchor").unlink(missing_ok=True)


@pytest.fixture(autouse=True)
def _own_cache_keys(settings: Any) -> None:
    """Each test its own key space in the cache, so rate-limit counters (sign-in, refused
    calls, subscriptions) never carry over from one test to the next."""
    default = {**settings.CACHES["default"], "KEY_PREFIX": f"test-{uuid.uuid4().hex[:12]}"}
    settings.CACHES = {**settings.CACHES, "default": default}


@pytest.fixture
def make_member(db: None) -> Callable[..., Any]:
    def make(username: str, *roles: str, email: str | None = None) -> Any:
        if not roles:  # an outsider: a user with no role at all
            from django.contrib.auth import get_user_model

            return get_user_model().objects.create_user(username, password="pw-outsider-1")
        return member_set_roles(
            username=username, roles=list(roles), email=email, password="pw-" + username + "-1"
        ).user

    return make


@pytest.fixture
def engineer(make_member: Callable[..., Any]) -> Any:
    return make_member("erin", "engineer", email="erin@example.com")


@pytest.fixture
def council(make_member: Callable[..., Any]) -> Any:
    return make_member("carol", "council")


@pytest.fixture
def outsider(make_member: Callable[..., Any]) -> Any:
    return make_member("olivia")


@pytest.fixture
def token_for(db: None) -> Callable[..., str]:
    def issue(user: Any, *scopes: str) -> str:
        return token_issue(user=user, scopes=list(scopes))[1]

    return issue


def logged_in(user: Any) -> Client:
    """A browser-less client signed in as `user` (for the admin)."""
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def api() -> Callable[[str | None], APIClient]:
    def client(token: str | None = None) -> APIClient:
        api_client = APIClient()
        if token:
            api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        return api_client

    return client


class SmtpReceiver:
    """A real SMTP server on 127.0.0.1 (aiosmtpd) that can refuse the next messages with a
    temporary failure, as a busy mail relay does."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.refusals = 0  # how many of the next DATA commands get `451`
        self.refused = 0
        self.port = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refusals:
            self.refusals -= 1
            self.refused += 1
            return "451 4.3.0 Mail server busy, try again later"
        self.messages.append(envelope)
        return "250 Message accepted for delivery"


@pytest.fixture(scope="session")
def smtp_receiver() -> Iterator[SmtpReceiver]:
    from aiosmtpd.controller import Controller

    receiver = SmtpReceiver()
    controller = Controller(receiver, hostname="127.0.0.1", port=free_port())
    controller.start()
    receiver.port = controller.port
    yield receiver
    controller.stop()


@pytest.fixture(scope="session")
def celery_worker(
    django_db_setup: None, django_db_blocker: Any, smtp_receiver: SmtpReceiver
) -> Iterator[subprocess.Popen]:
    """A real Celery worker process on the test Redis broker and test database; it mails
    through the SMTP receiver (customer notices to customers@example.com)."""
    from portal.celery import app

    ARTIFACTS.mkdir(exist_ok=True)
    log = (ARTIFACTS / "celery-worker.log").open("w")
    app.control.purge()
    name = f"test-{os.getpid()}@%h"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "portal",
            "worker",
            "--pool=solo",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
            "-n",
            name,
        ],
        env=subprocess_env(
            EMAIL_URL=f"smtp://127.0.0.1:{smtp_receiver.port}",
            CUSTOMER_NOTICE_EMAILS="customers@example.com",
        ),
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + 60
        while not app.control.ping(timeout=0.5):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the Celery worker did not start; see {log.name}")
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


@pytest.fixture
def team(make_member: Callable[..., Any]) -> dict[str, Any]:
    """The personas: an engineer, two council members, and one signer per role."""
    return {
        "erin": make_member("erin", "engineer"),
        "carol": make_member("carol", "council"),
        "dave": make_member("dave", "council"),
        "sam": make_member("sam", "steward"),
        "oscar": make_member("oscar", "ops"),
        "fiona": make_member("fiona", "finance"),
        "sid": make_member("sid", "security"),
        "cora": make_member("cora", "compliance"),
        "olivia": make_member("olivia"),
    }


@pytest.fixture
def new_release(team: dict[str, Any]) -> Callable[..., Release]:
    def create(**fields: Any) -> Release:
        values: dict[str, Any] = {
            "service": "backend",
            "version": "v2.1.0",
            "tier": "medium",
            "changed_paths": [],
            "change_types": ["bug_fix"],
            "rollback_plan": "Redeploy v2.0.3",
        }
        values.update(fields)
        return release_create(author=team["erin"], **values)

    return create


@pytest.fixture
def sign_all(team: dict[str, Any]) -> Callable[[Release], None]:
    """Every required item passed, each by a member holding one of its signer roles."""
    by_role = {
        "engineer": "erin",
        "steward": "sam",
        "ops": "oscar",
        "finance": "fiona",
        "security": "sid",
        "compliance": "cora",
    }

    def sign(release: Release) -> None:
        for item in release.items.filter(required=True):
            signer = team[by_role[item.signer_roles[0]]]
            checklist_sign(release=release, key=item.key, user=signer, status=ItemStatus.PASSED)

    return sign
