"""The hash-chained, append-only audit trail."""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.db import DatabaseError, connection, transaction

from governance.audit import GENESIS_HASH, audit_append, audit_verify
from governance.models import AuditEvent
from tests.conftest import run_manage


def raw_sql(sql: str, params: list[Any] | None = None) -> None:
    """Run SQL with triggers off, as someone tampering with the table directly would."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(sql, params)
        cursor.execute("SET LOCAL session_replication_role = origin")


@pytest.fixture
def chain(db: None) -> list[AuditEvent]:
    return [
        audit_append(action="test.event", data={"n": n, "note": "café ✓", "x": 0.1 * n})
        for n in range(1, 6)
    ]


def test_events_form_an_unbroken_chain(chain: list[AuditEvent]) -> None:
    assert [event.seq for event in chain] == [1, 2, 3, 4, 5]
    assert chain[0].prev_hash == GENESIS_HASH
    for before, after in itertools.pairwise(chain):
        assert after.prev_hash == before.hash
    check = audit_verify()
    assert check.ok
    assert check.checked == 5
    assert check.head_hash == chain[-1].hash


def test_an_altered_event_is_named(chain: list[AuditEvent]) -> None:
    raw_sql(
        "UPDATE governance_auditevent SET data_json = %s WHERE seq = 3",
        ['{"n":3,"note":"edited"}'],
    )
    check = audit_verify()
    assert not check.ok
    assert check.first_bad_seq == 3
    assert "altered" in check.problem


def test_an_altered_actor_is_detected_too(chain: list[AuditEvent]) -> None:
    raw_sql("UPDATE governance_auditevent SET actor = 'mallory' WHERE seq = 2")
    assert audit_verify().first_bad_seq == 2


def test_a_deleted_event_is_named(chain: list[AuditEvent]) -> None:
    raw_sql("DELETE FROM governance_auditevent WHERE seq = 2")
    check = audit_verify()
    assert not check.ok
    assert check.first_bad_seq == 2
    assert "missing" in check.problem


def test_reordered_events_are_detected(chain: list[AuditEvent]) -> None:
    raw_sql("UPDATE governance_auditevent SET seq = 1000 WHERE seq = 2")
    raw_sql("UPDATE governance_auditevent SET seq = 2 WHERE seq = 3")
    raw_sql("UPDATE governance_auditevent SET seq = 3 WHERE seq = 1000")
    check = audit_verify()
    assert not check.ok
    assert check.first_bad_seq == 2
    assert "does not link" in check.problem


def test_a_deleted_and_renumbered_event_breaks_the_link(chain: list[AuditEvent]) -> None:
    raw_sql("DELETE FROM governance_auditevent WHERE seq = 3")
    raw_sql("UPDATE governance_auditevent SET seq = seq - 1 WHERE seq > 3")
    check = audit_verify()
    assert check.first_bad_seq == 3
    assert not check.ok


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE governance_auditevent SET actor = 'mallory'",
        "DELETE FROM governance_auditevent",
    ],
)
def test_postgresql_refuses_update_and_delete(chain: list[AuditEvent], statement: str) -> None:
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement)
    assert AuditEvent.objects.count() == 5
    assert audit_verify().ok


def test_postgresql_refuses_truncate(chain: list[AuditEvent]) -> None:
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("SET LOCAL governance.allow_audit_truncate = 'off'")
        cursor.execute("TRUNCATE governance_auditevent")
    assert AuditEvent.objects.count() == 5


def test_the_model_refuses_to_update_or_delete(chain: list[AuditEvent]) -> None:
    event = chain[0]
    event.actor = "mallory"
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        event.delete()


def test_verify_audit_command_exit_codes(transactional_db: None) -> None:
    for n in range(3):
        audit_append(action="test.event", data={"n": n})
    ok = run_manage("verify_audit")
    assert ok.returncode == 0, ok.stderr
    assert "intact: 3 event(s)" in ok.stdout

    with transaction.atomic():
        raw_sql("UPDATE governance_auditevent SET data_json = '{}' WHERE seq = 2")
    broken = run_manage("verify_audit")
    assert broken.returncode != 0
    assert "event #2" in broken.stderr
    assert "altered" in broken.stderr


def test_concurrent_appends_never_fork_the_chain(transactional_db: None) -> None:
    errors: list[BaseException] = []

    def append_many(worker: int) -> None:
        try:
            for n in range(10):
                audit_append(action="test.concurrent", data={"worker": worker, "n": n})
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=append_many, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    check = audit_verify()
    assert check.ok
    assert check.checked == 80
    assert list(AuditEvent.objects.values_list("seq", flat=True)) == list(range(1, 81))


class TestAuditApi:
    def test_lists_events_of_a_release_oldest_first(
        self, engineer: Any, token_for: Callable[..., str], api: Callable[..., Any]
    ) -> None:
        audit_append(action="release.created", release_id=7, data={"v": 1})
        audit_append(action="other.thing", release_id=8)
        audit_append(action="vote.cast", release_id=7, actor=engineer)
        response = api(token_for(engineer, "read")).get("/api/v1/audit/?release=7")
        assert response.status_code == 200
        body = response.json()
        assert [event["action"] for event in body] == ["release.created", "vote.cast"]
        assert body[0]["release"] == 7
        assert body[0]["data"] == {"v": 1}
        assert body[1]["actor"] == "erin"
        assert body[0]["seq"] < body[1]["seq"]
        assert {"at", "hash", "prev_hash", "object_type", "object_id"} <= set(body[0])

    def test_pages_with_a_link_header(
        self, engineer: Any, token_for: Callable[..., str], api: Callable[..., Any]
    ) -> None:
        for n in range(5):
            audit_append(action="test.page", data={"n": n})
        client = api(token_for(engineer, "read"))
        first = client.get("/api/v1/audit/?action=test.page&limit=3")
        assert [event["data"]["n"] for event in first.json()] == [0, 1, 2]
        next_url = first["Link"].split(";")[0].strip("<>")
        second = client.get(next_url)
        assert [event["data"]["n"] for event in second.json()] == [3, 4]
        assert "Link" not in second

    @pytest.mark.parametrize("query", ["release=abc", "limit=0", "limit=x", "after=-1"])
    def test_bad_query_parameters_are_400_with_a_reason(
        self, engineer: Any, token_for: Callable[..., str], api: Callable[..., Any], query: str
    ) -> None:
        response = api(token_for(engineer, "read")).get(f"/api/v1/audit/?{query}")
        assert response.status_code == 400
        body = response.json()
        assert body["detail"].startswith("Invalid input")
        assert body["errors"]

    def test_needs_a_token_and_a_role(
        self, outsider: Any, token_for: Callable[..., str], api: Callable[..., Any]
    ) -> None:
        assert api().get("/api/v1/audit/").status_code == 401
        response = api(token_for(outsider, "read")).get("/api/v1/audit/")
        assert response.status_code == 403


class TestDatabaseRoles:
    """Only a superuser (who runs migrations and the tests) may truncate the trail, and
    only when it asks to; the application's role may only add and read events."""

    @pytest.fixture
    def role(self, chain: list[AuditEvent]) -> str:
        """A login-less role that is not a superuser (rolled back with the test)."""
        name = f"canary_test_{uuid.uuid4().hex[:12]}"
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE ROLE {name} NOSUPERUSER NOLOGIN")
        return name

    def as_role(self, role: str, *statements: str) -> None:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL ROLE {role}")
            for statement in statements:
                cursor.execute(statement)

    def test_the_owner_role_cannot_truncate_even_with_the_switch(
        self, chain: list[AuditEvent], role: str
    ) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE governance_auditevent OWNER TO {role}")
        with pytest.raises(DatabaseError, match="append-only: TRUNCATE refused"):
            self.as_role(
                role,
                "SET LOCAL governance.allow_audit_truncate = 'on'",
                "TRUNCATE governance_auditevent",
            )
        assert AuditEvent.objects.count() == 5

    @pytest.mark.parametrize(
        ("statement", "op"),
        [
            ("UPDATE governance_auditevent SET actor = 'mallory'", "UPDATE"),
            ("DELETE FROM governance_auditevent WHERE seq = 5", "DELETE"),
        ],
    )
    def test_the_owner_role_cannot_update_or_delete(
        self, chain: list[AuditEvent], role: str, statement: str, op: str
    ) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE governance_auditevent OWNER TO {role}")
        with pytest.raises(DatabaseError, match=f"append-only: {op} refused"):
            self.as_role(role, "SET LOCAL governance.allow_audit_truncate = 'on'", statement)
        assert AuditEvent.objects.count() == 5
        assert audit_verify().ok

    def test_a_superuser_may_truncate_when_it_asks(self, chain: list[AuditEvent]) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            assert cursor.fetchone() == (True,)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL governance.allow_audit_truncate = 'on'")
            cursor.execute("TRUNCATE governance_auditevent")
            assert AuditEvent.objects.count() == 0
            transaction.set_rollback(True)
        assert AuditEvent.objects.count() == 5

    @pytest.mark.parametrize(
        "statement",
        [
            "UPDATE governance_auditevent SET actor = 'mallory'",
            "DELETE FROM governance_auditevent",
            "TRUNCATE governance_auditevent",
        ],
    )
    def test_the_application_role_only_adds_and_reads(
        self, chain: list[AuditEvent], role: str, statement: str
    ) -> None:
        """The grants the README gives the application's role."""
        with connection.cursor() as cursor:
            cursor.execute(f"GRANT SELECT, INSERT ON governance_auditevent TO {role}")
        with pytest.raises(DatabaseError, match="permission denied"):
            self.as_role(role, "SET LOCAL governance.allow_audit_truncate = 'on'", statement)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL ROLE {role}")
            audit_append(action="test.as_app_role")
            cursor.execute("RESET ROLE")
        assert AuditEvent.objects.count() == 6
        assert audit_verify().ok
