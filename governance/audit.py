"""The append-only, hash-chained audit trail.

Each event stores the previous event's hash and its own:
hash = SHA-256(prev_hash || canonical JSON of the event), canonical JSON having
sorted keys and no spaces. With `AUDIT_KEY` set, new events use HMAC-SHA256 with that
key instead, and name the key (`key_id`, hashed with the event): rewriting them and
re-hashing the chain needs the key. Once the chain is keyed it stays keyed.
Appends are serialised (a PostgreSQL advisory lock; SQLite takes its write lock at
BEGIN), so the chain never forks. On PostgreSQL a trigger refuses UPDATE, DELETE and
TRUNCATE on the table. After each append commits, the head is written outside the
database (governance.anchor), which makes a deleted tail visible.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models, transaction

from governance.anchor import Anchor, AnchorUnreadable, anchor_path, anchor_read, anchor_write
from governance.models import AuditEvent
from portal import clock

GENESIS_HASH = "0" * 64
# An arbitrary constant naming the audit chain's advisory lock.
_ADVISORY_LOCK_KEY = 0x4155_4449_5400


def canonical_json(value: Any) -> str:
    return json.dumps(
        value, cls=DjangoJSONEncoder, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )


def _hashed_fields(event: AuditEvent) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "at": event.at.isoformat(),
        "actor": event.actor,
        "actor_user_id": event.actor_user_id,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "release_id": event.release_id,
        "data": event.data_json,
        # Unkeyed events hash exactly as they did before keys existed.
        **({"key_id": event.key_id} if event.key_id else {}),
    }


def key_id_of(key: str) -> str:
    """A key's public name: it identifies the key without revealing it."""
    return hmac.new(key.encode(), b"canary audit key id", hashlib.sha256).hexdigest()[:16]


def audit_keys() -> dict[str, bytes]:
    """Every configured key by its id: AUDIT_KEY and AUDIT_PREVIOUS_KEYS."""
    keys = [settings.AUDIT_KEY, *settings.AUDIT_PREVIOUS_KEYS]
    return {key_id_of(key): key.encode() for key in keys if key}


def event_hash(event: AuditEvent, key: bytes | None = None) -> str:
    """SHA-256 for an unkeyed event; HMAC-SHA256 with `key` for a keyed one."""
    text = (event.prev_hash + canonical_json(_hashed_fields(event))).encode()
    if event.key_id:
        if key is None:
            raise LookupError(f"audit key {event.key_id} is not configured")
        return hmac.new(key, text, hashlib.sha256).hexdigest()
    return hashlib.sha256(text).hexdigest()


def audit_append(
    *,
    action: str,
    actor: Any = None,
    actor_name: str | None = None,
    obj: models.Model | None = None,
    release_id: int | None = None,
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event. `actor` is a user (or None for the system)."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_ADVISORY_LOCK_KEY])
        last = AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first()
        seq, prev_hash = (last[0] + 1, last[1]) if last else (1, GENESIS_HASH)
        is_user = actor is not None and getattr(actor, "pk", None) is not None
        event = AuditEvent(
            seq=seq,
            at=clock.now(),
            actor=actor_name or (actor.get_username() if is_user else "system"),
            actor_user_id=actor.pk if is_user else None,
            action=action,
            object_type=obj._meta.label_lower if obj is not None else "",
            object_id=str(obj.pk) if obj is not None else "",
            release_id=release_id,
            data_json=canonical_json(data or {}),
            prev_hash=prev_hash,
            key_id=key_id_of(settings.AUDIT_KEY) if settings.AUDIT_KEY else "",
        )
        event.hash = event_hash(event, settings.AUDIT_KEY.encode() or None)
        event.save(force_insert=True)
        # The head goes outside the database once this commits (with the caller's
        # transaction, if any). A rolled-back append writes nothing.
        transaction.on_commit(anchor_write, robust=True)
        return event


@dataclass(frozen=True)
class ChainCheck:
    ok: bool
    checked: int
    head_seq: int
    head_hash: str
    first_bad_seq: int | None = None
    problem: str = ""
    head_key_id: str = ""
    anchor_seq: int | None = None


class _Walk:
    """The state of one verification walk."""

    def __init__(self) -> None:
        self.expected_seq, self.prev_hash, self.checked = 1, GENESIS_HASH, 0
        self.first_keyed: int | None = None
        self.head_key_id = ""
        self.keys = audit_keys()

    def broken(self, seq: int | None, problem: str, anchor: Anchor | None) -> ChainCheck:
        return ChainCheck(
            False,
            self.checked,
            self.expected_seq - 1,
            self.prev_hash,
            seq,
            problem,
            self.head_key_id,
            anchor.seq if anchor else None,
        )

    def problem(self, event: AuditEvent) -> str:
        """What is wrong with the next event (whose seq is the expected one), or ''."""
        seq = event.seq
        if event.prev_hash != self.prev_hash:
            return (
                f"event #{seq} does not link to event #{seq - 1}: "
                "an event before it was removed, replaced or reordered"
            )
        if event.key_id and event.key_id not in self.keys:
            return (
                f"event #{seq} is chained with audit key {event.key_id}, which is not "
                "configured: set AUDIT_KEY (or AUDIT_PREVIOUS_KEYS) to verify it"
            )
        if not event.key_id and self.first_keyed is not None:
            return (
                f"event #{seq} is not keyed though event #{self.first_keyed} before it is: "
                "the chain was re-hashed without the audit key"
            )
        if event_hash(event, self.keys.get(event.key_id)) != event.hash:
            return f"event #{seq} ({event.action}) was altered: its content does not match its hash"
        return ""


def audit_verify(*, anchor: bool = False) -> ChainCheck:
    """Walk the whole chain; report the first event that was altered, removed or moved.
    With `anchor`, also compare the trail with the head written outside the database,
    which catches the newest events being removed (or the chain rewritten)."""
    walk = _Walk()
    expected: Anchor | None = None
    if anchor:  # read before walking: an append during the walk only adds events
        try:
            expected = anchor_read()
        except AnchorUnreadable as exc:
            return walk.broken(None, str(exc), None)
    for event in AuditEvent.objects.order_by("seq").iterator(chunk_size=2000):
        if event.seq != walk.expected_seq:
            return walk.broken(
                walk.expected_seq,
                f"event #{walk.expected_seq} is missing (the next stored event is #{event.seq})",
                expected,
            )
        problem = walk.problem(event)
        if problem:
            return walk.broken(event.seq, problem, expected)
        if expected is not None and event.seq == expected.seq and event.hash != expected.hash:
            return walk.broken(
                event.seq,
                f"event #{event.seq} does not match the anchor in {anchor_path()} (hash "
                f"{expected.hash[:16]}…): the trail was rewritten up to or at this event",
                expected,
            )
        if event.key_id and walk.first_keyed is None:
            walk.first_keyed = event.seq
        walk.prev_hash, walk.head_key_id = event.hash, event.key_id
        walk.expected_seq, walk.checked = walk.expected_seq + 1, walk.checked + 1
    head = walk.expected_seq - 1
    if settings.AUDIT_KEY and head and not walk.head_key_id:
        return walk.broken(
            head,
            f"AUDIT_KEY is set but the newest event #{head} is not keyed: the chain was "
            "re-hashed without the key, or nothing was appended since the key was set "
            "(the next audited action starts the keyed chain)",
            expected,
        )
    if anchor and expected is None and head:
        return walk.broken(
            None,
            f"there is no anchor at {anchor_path()} (AUDIT_ANCHOR_PATH), so a removed tail "
            "cannot be ruled out; every append writes it",
            None,
        )
    if expected is not None and expected.seq > head:
        return walk.broken(
            head + 1,
            f"the newest events were removed: the anchor in {anchor_path()} names event "
            f"#{expected.seq} (written {expected.at or 'earlier'}), the trail ends at #{head}",
            expected,
        )
    return ChainCheck(
        True,
        walk.checked,
        head,
        walk.prev_hash,
        head_key_id=walk.head_key_id,
        anchor_seq=expected.seq if expected else None,
    )
