from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from governance.audit import audit_verify


class Command(BaseCommand):
    help = (
        "Verify the audit trail's hash chain (keyed with AUDIT_KEY when set) and compare "
        "it with the head anchored outside the database (AUDIT_ANCHOR_PATH); non-zero exit "
        "naming the first bad event."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        check = audit_verify(anchor=True)
        if not check.ok:
            where = f" at event #{check.first_bad_seq}" if check.first_bad_seq else ""
            raise CommandError(
                f"Audit trail broken{where}: {check.problem}. "
                f"{check.checked} event(s) before it verified."
            )
        keyed = f", keyed ({check.head_key_id})" if check.head_key_id else ""
        anchored = f"; anchor at #{check.anchor_seq}" if check.anchor_seq else ""
        self.stdout.write(
            f"Audit trail intact: {check.checked} event(s); head #{check.head_seq} "
            f"{check.head_hash}{keyed}{anchored}"
        )
