from __future__ import annotations

from dataclasses import asdict
from typing import Any

import structlog
from celery import shared_task

from governance.audit import audit_verify as verify_chain

logger = structlog.get_logger(__name__)


@shared_task
def audit_verify() -> dict[str, Any]:
    """Periodic chain verification, against the head anchored outside the database
    (AUDIT_ANCHOR_PATH), so a removed tail is noticed too; the head is logged as well."""
    check = verify_chain(anchor=True)
    log = logger.info if check.ok else logger.error
    log("audit_verified", **asdict(check))
    return asdict(check)


@shared_task
def approvals_refresh() -> int:
    """Releases whose council approvals expired return to pending_approval."""
    from governance.services import approvals_refresh as refresh

    changed = refresh()
    logger.info("approvals_refreshed", releases_changed=changed)
    return changed
