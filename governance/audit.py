"""The append-only, hash-chained audit trail.

Each event stores the previous event's hash and its own:
hash = SHA-256(prev_hash || canonical JSON of the event), canonical JSON having
sorted keys and no spaces. Appends are serialised (a PostgreSQL advisory lock;
SQLite takes its write lock at BEGIN), so the chain never forks. On PostgreSQL a
trigger refuses UPDATE, DELETE and TRUNCATE on the table.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models, transaction

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
    }


def event_hash(event: AuditEvent) -> str:
    text = event.prev_hash + canonical_json(_hashed_fields(event))
    return hashlib.sha256(text.encode()).hexdigest()


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
        )
        event.hash = event_hash(event)
        event.save(force_insert=True)
        return event


@dataclass(frozen=True)
class ChainCheck:
    ok: bool
    checked: int
    head_seq: int
    head_hash: str
    first_bad_seq: int | None = None
    problem: str = ""


def audit_verify() -> ChainCheck:
    """Walk the whole chain; report the first event that was altered, removed or moved."""
    expected_seq, prev_hash, checked = 1, GENESIS_HASH, 0

    def broken(seq: int, problem: str) -> ChainCheck:
        return ChainCheck(False, checked, expected_seq - 1, prev_hash, seq, problem)

    for event in AuditEvent.objects.order_by("seq").iterator(chunk_size=2000):
        if event.seq != expected_seq:
            return broken(
                expected_seq,
                f"event #{expected_seq} is missing (the next stored event is #{event.seq})",
            )
        if event.prev_hash != prev_hash:
            return broken(
                event.seq,
                f"event #{event.seq} does not link to event #{event.seq - 1}: "
                "an event before it was removed, replaced or reordered",
            )
        if event_hash(event) != event.hash:
            return broken(
                event.seq,
                f"event #{event.seq} ({event.action}) was altered: its content does not "
                "match its hash",
            )
        prev_hash, expected_seq, checked = event.hash, expected_seq + 1, checked + 1
    return ChainCheck(True, checked, expected_seq - 1, prev_hash)
