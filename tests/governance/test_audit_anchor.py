"""The chain's head anchored outside the database, and the keyed chain (AUDIT_KEY)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.db import transaction

from governance.anchor import anchor_read
from governance.audit import audit_append, audit_verify, event_hash, key_id_of
from governance.models import AuditEvent
from tests.conftest import run_manage
from tests.governance.test_audit import raw_sql

KEY = "k" * 40
OTHER_KEY = "o" * 40


@pytest.fixture
def anchor(settings: Any, tmp_path: Path) -> Path:
    settings.AUDIT_ANCHOR_PATH = str(tmp_path / "anchors" / "audit-anchor")
    return Path(settings.AUDIT_ANCHOR_PATH)


def verify_command(anchor: Path, **env: str | None) -> Any:
    return run_manage("verify_audit", AUDIT_ANCHOR_PATH=str(anchor), **env)


def append(n: int) -> list[AuditEvent]:
    return [audit_append(action="test.event", data={"n": i}) for i in range(n)]


def delete_tail(from_seq: int) -> None:
    with transaction.atomic():
        raw_sql("DELETE FROM governance_auditevent WHERE seq >= %s", [from_seq])


def rehash_from(seq: int, *, key: bytes | None, key_id: str, edit: dict[str, Any]) -> None:
    """What someone with write access to the table does: edit an event, then re-hash it
    and every later one so that each links to the one before."""
    with transaction.atomic():
        prev = AuditEvent.objects.filter(seq=seq - 1).values_list("hash", flat=True).first()
        for event in AuditEvent.objects.filter(seq__gte=seq).order_by("seq"):
            if event.seq == seq:
                event.data_json = json.dumps(edit, separators=(",", ":"))
            event.prev_hash = prev or "0" * 64
            event.key_id = key_id
            event.hash = event_hash(event, key)
            raw_sql(
                "UPDATE governance_auditevent SET data_json = %s, prev_hash = %s, "
                "key_id = %s, hash = %s WHERE seq = %s",
                [event.data_json, event.prev_hash, event.key_id, event.hash, event.seq],
            )
            prev = event.hash


class TestAnchor:
    def test_every_append_writes_the_head_once_committed(
        self, transactional_db: None, anchor: Path
    ) -> None:
        events = append(3)
        written = anchor_read(anchor)
        assert written is not None
        assert (written.seq, written.hash) == (3, events[-1].hash)
        # Written through a temporary file renamed over the anchor: none is left behind.
        assert {p.name for p in anchor.parent.iterdir()} == {"audit-anchor", "audit-anchor.lock"}
        with transaction.atomic():
            audit_append(action="test.pending")
            assert anchor_read(anchor).seq == 3  # type: ignore[union-attr]
        assert anchor_read(anchor).seq == 4  # type: ignore[union-attr]

    def test_a_rolled_back_append_leaves_the_anchor_alone(
        self, transactional_db: None, anchor: Path
    ) -> None:
        append(2)
        with pytest.raises(RuntimeError), transaction.atomic():
            audit_append(action="test.rolled_back")
            raise RuntimeError
        assert anchor_read(anchor).seq == 2  # type: ignore[union-attr]
        assert verify_command(anchor).returncode == 0

    def test_verify_audit_catches_the_newest_events_deleted(
        self, transactional_db: None, anchor: Path
    ) -> None:
        append(5)
        assert verify_command(anchor).returncode == 0
        delete_tail(4)
        assert audit_verify().ok  # the chain alone cannot tell
        result = verify_command(anchor)
        assert result.returncode != 0
        assert "newest events were removed" in result.stderr
        assert "names event #5" in result.stderr
        assert "trail ends at #3" in result.stderr

    def test_an_append_after_the_deletion_does_not_hide_it(
        self, transactional_db: None, anchor: Path
    ) -> None:
        append(5)
        delete_tail(4)
        append(2)  # a new #4 and #5, chained onto #3
        assert anchor_read(anchor).seq == 5  # type: ignore[union-attr]
        assert audit_verify().ok
        result = verify_command(anchor)
        assert result.returncode != 0
        assert "event #5 does not match the anchor" in result.stderr

    def test_a_missing_anchor_is_reported_unless_the_trail_is_empty(
        self, transactional_db: None, anchor: Path
    ) -> None:
        assert verify_command(anchor).returncode == 0
        append(2)
        anchor.unlink()
        result = verify_command(anchor)
        assert result.returncode != 0
        assert "there is no anchor" in result.stderr
        anchor.write_text("not json")
        assert "is not an audit anchor" in verify_command(anchor).stderr

    def test_an_unwritable_anchor_never_fails_the_append(
        self, transactional_db: None, settings: Any, tmp_path: Path
    ) -> None:
        blocker = tmp_path / "a-file"
        blocker.write_text("")
        settings.AUDIT_ANCHOR_PATH = str(blocker / "audit-anchor")  # parent is a file
        event = audit_append(action="test.event")
        assert AuditEvent.objects.filter(seq=event.seq).exists()


class TestKeyedChain:
    def test_new_events_are_keyed_and_verify(self, db: None, settings: Any) -> None:
        settings.AUDIT_KEY = KEY
        events = append(3)
        assert {event.key_id for event in events} == {key_id_of(KEY)}
        assert audit_verify().ok

    def test_an_unkeyed_chain_stays_verifiable_once_a_key_is_set(
        self, db: None, settings: Any
    ) -> None:
        append(3)
        settings.AUDIT_KEY = KEY
        append(2)
        assert (
            list(AuditEvent.objects.values_list("key_id", flat=True))
            == [""] * 3 + [key_id_of(KEY)] * 2
        )
        check = audit_verify()
        assert check.ok and check.checked == 5
        settings.AUDIT_KEY = ""
        check = audit_verify()
        assert not check.ok
        assert check.first_bad_seq == 4
        assert "not configured" in check.problem

    def test_a_rotated_key_still_verifies_what_it_chained(self, db: None, settings: Any) -> None:
        settings.AUDIT_KEY = OTHER_KEY
        append(2)
        settings.AUDIT_KEY, settings.AUDIT_PREVIOUS_KEYS = KEY, [OTHER_KEY]
        append(2)
        assert audit_verify().ok
        settings.AUDIT_PREVIOUS_KEYS = []
        assert audit_verify().first_bad_seq == 1

    @pytest.mark.parametrize(
        ("key", "key_id", "problem"),
        [
            (None, "", "not keyed"),  # re-hashed with plain SHA-256
            (OTHER_KEY.encode(), key_id_of(KEY), "altered"),  # with a guessed key
        ],
    )
    def test_edit_and_rehash_without_the_key_is_caught(
        self, db: None, settings: Any, key: bytes | None, key_id: str, problem: str
    ) -> None:
        settings.AUDIT_KEY = KEY
        append(5)
        rehash_from(3, key=key, key_id=key_id, edit={"n": 99})
        check = audit_verify()
        assert not check.ok
        assert check.first_bad_seq == 3
        assert problem in check.problem

    def test_a_whole_chain_rehashed_without_the_key_is_caught(
        self, db: None, settings: Any
    ) -> None:
        settings.AUDIT_KEY = KEY
        append(3)
        rehash_from(1, key=None, key_id="", edit={"n": 99})
        check = audit_verify()
        assert not check.ok
        assert "newest event #3 is not keyed" in check.problem

    def test_verify_audit_catches_edit_and_rehash_even_with_a_forged_anchor(
        self, transactional_db: None, settings: Any, anchor: Path
    ) -> None:
        """Someone who can write both the table and the anchor file, but lacks the key."""
        env = {"AUDIT_KEY": KEY}
        settings.AUDIT_KEY = KEY
        append(4)
        assert verify_command(anchor, **env).returncode == 0
        rehash_from(2, key=None, key_id="", edit={"n": 99})
        head = AuditEvent.objects.order_by("-seq").first()
        assert head is not None
        anchor.write_text(json.dumps({"seq": head.seq, "hash": head.hash, "key_id": ""}))
        result = verify_command(anchor, **env)
        assert result.returncode != 0
        assert "event #2" in result.stderr
        assert "re-hashed without the audit key" in result.stderr


def test_the_key_is_read_from_the_environment(transactional_db: None, anchor: Path) -> None:
    result = verify_command(anchor, AUDIT_KEY="short")
    assert result.returncode != 0
    assert "32+ characters" in result.stderr
