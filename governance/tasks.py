from __future__ import annotations

from dataclasses import asdict
from typing import Any

import structlog
from celery import shared_task

from governance.audit import audit_verify as verify_chain

logger = structlog.get_logger(__name__)


@shared_task
def audit_verify() -> dict[str, Any]:
    """Periodic chain verification. The logged head hash anchors the trail outside
    the database, so a truncated tail can be noticed later too."""
    check = verify_chain()
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
