"""The audit chain's head, written outside the database.

After every append commits, the head (seq, hash, key id) is written to
`AUDIT_ANCHOR_PATH` atomically (a temporary file in the same directory, fsynced, then
renamed over the old one). Writers take a file lock and read the head from the
database inside it, so the anchor only moves forward and the last append of a burst
is always the one that ends up written. The anchor never moves onto a trail that no
longer contains the event it names: after the newest events were deleted, it keeps
naming the deleted head, and `verify_audit` reports the loss.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import structlog
from django.conf import settings
from django.db import DatabaseError

from governance.models import AuditEvent

logger = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Anchor:
    seq: int
    hash: str
    key_id: str = ""
    at: str = ""


class AnchorUnreadable(Exception):
    pass


def anchor_path() -> Path:
    return Path(settings.AUDIT_ANCHOR_PATH)


def anchor_read(path: Path | None = None) -> Anchor | None:
    """The anchor, or None when there is none; AnchorUnreadable when it is not one."""
    path = path or anchor_path()
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise AnchorUnreadable(f"the anchor {path} cannot be read: {exc}") from exc
    try:
        raw = json.loads(text)
        anchor = Anchor(
            seq=int(raw["seq"]),
            hash=str(raw["hash"]),
            key_id=str(raw.get("key_id", "")),
            at=str(raw.get("at", "")),
        )
    except (ValueError, TypeError, KeyError) as exc:
        raise AnchorUnreadable(f"the anchor {path} is not an audit anchor: {exc}") from exc
    if anchor.seq < 1:
        raise AnchorUnreadable(f"the anchor {path} names no event (seq {anchor.seq})")
    return anchor


def _replace(path: Path, anchor: Anchor) -> None:
    payload = json.dumps(
        {"seq": anchor.seq, "hash": anchor.hash, "key_id": anchor.key_id, "at": anchor.at}
    )
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as file:
            file.write(payload + "\n")
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def anchor_write() -> Anchor | None:
    """Write the chain's current head (run after each append commits). Never raises:
    a failure is logged, and the next append writes the head again."""
    path = anchor_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.with_name(path.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            head = AuditEvent.objects.order_by("-seq").values_list(
                "seq", "hash", "key_id", "at", "prev_hash"
            )
            row = head.first()
            if row is None:
                return None
            new = Anchor(seq=row[0], hash=row[1], key_id=row[2], at=row[3].isoformat())
            try:
                old = anchor_read(path)
            except AnchorUnreadable:
                old = None  # replaced by a good one
            if old is not None:
                if (old.seq, old.hash) == (new.seq, new.hash):
                    return old
                extends = (old.seq, old.hash) == (new.seq - 1, row[4])  # the usual case
                if (
                    not extends
                    and not AuditEvent.objects.filter(seq=old.seq, hash=old.hash).exists()
                ):
                    logger.error(
                        "audit_anchor_diverged",
                        path=str(path),
                        anchor_seq=old.seq,
                        head_seq=new.seq,
                        detail="the event the anchor names is gone or changed; the anchor is "
                        "kept as evidence (run verify_audit)",
                    )
                    return old
            _replace(path, new)
            return new
    except (OSError, DatabaseError):
        logger.exception("audit_anchor_write_failed", path=str(path))
        return None
