from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from governance.audit import audit_verify


class Command(BaseCommand):
    help = "Verify the audit trail's hash chain; non-zero exit naming the first bad event."

    def handle(self, *args: Any, **options: Any) -> None:
        check = audit_verify()
        if not check.ok:
            raise CommandError(
                f"Audit trail broken at event #{check.first_bad_seq}: {check.problem}. "
                f"{check.checked} event(s) before it verified."
            )
        self.stdout.write(
            f"Audit trail intact: {check.checked} event(s); head #{check.head_seq} "
            f"{check.head_hash}"
        )
