from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from governance.members import member_set_roles

DEMO_PASSWORD = "canary-demo"  # noqa: S105  (demo only; refused when DEBUG is off)

# One persona per role, two council members (high-risk releases need Council:2).
DEMO_MEMBERS: list[tuple[str, list[str]]] = [
    ("erin", ["engineer"]),
    ("carol", ["council"]),
    ("dave", ["council"]),
    ("sam", ["steward"]),
    ("oscar", ["ops"]),
    ("fiona", ["finance"]),
    ("sid", ["security"]),
    ("cora", ["compliance"]),
]


class Command(BaseCommand):
    help = "Load the demo: one member per role (password 'canary-demo') and an admin."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--force", action="store_true", help="Seed even with DEBUG off (never in production)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG and not options["force"]:
            raise CommandError("seed_demo creates accounts with a known password: DEBUG is off.")
        for username, roles in DEMO_MEMBERS:
            member_set_roles(
                username=username,
                roles=roles,
                email=f"{username}@example.com",
                password=DEMO_PASSWORD,
            )
        User = get_user_model()
        admin = User.objects.filter(username="admin").first()
        if admin is None:
            User.objects.create_superuser("admin", "admin@example.com", DEMO_PASSWORD)
        self.stdout.write(
            f"Demo members: {', '.join(name for name, _ in DEMO_MEMBERS)} and admin; "
            f"password '{DEMO_PASSWORD}'."
        )
