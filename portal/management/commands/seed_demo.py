from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from governance.members import member_set_roles
from governance.models import Release
from governance.services import checklist_sign, release_create
from rollouts.demo.deploy import deploy_demo_rollouts
from rollouts.seeds import seed_demo_services

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
        parser.add_argument(
            "--rollouts",
            action="store_true",
            help="Also deploy two demo releases (checkout: healthy; search: fails at 5%%).",
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
        seed_demo_services()
        self._seed_releases(User)
        if options["rollouts"]:
            deploy_demo_rollouts(say=self.stdout.write)
        self.stdout.write(
            f"Demo members: {', '.join(name for name, _ in DEMO_MEMBERS)} and admin; "
            f"password '{DEMO_PASSWORD}'."
        )

    def _seed_releases(self, User: Any) -> None:
        erin = User.objects.get(username="erin")
        if not Release.objects.filter(service="backend", version="v2.1.0").exists():
            payments = release_create(
                author=erin,
                service="backend",
                version="v2.1.0",
                tier="medium",
                changed_paths=["src/backend/payments/stripe.py", "frontend/pages/index.tsx"],
                change_types=["bug_fix"],
                changelog="Retry card authorisations on gateway timeouts.",
                rollback_plan="Redeploy v2.0.3; no schema change.",
            )
            for key in ("ci_tests", "integration_tests", "e2e_tests"):
                checklist_sign(
                    release=payments,
                    key=key,
                    user=erin,
                    status="passed",
                    evidence_url="https://ci.example.com/builds/4711",
                )
        if not Release.objects.filter(service="frontend", version="v3.4.0").exists():
            release_create(
                author=erin,
                service="frontend",
                version="v3.4.0",
                tier="medium",
                changed_paths=["frontend/components/Header.tsx", "frontend/pages/index.tsx"],
                change_types=["ui_redesign"],
                changelog="New header and navigation.",
                rollback_plan="Redeploy v3.3.2.",
            )
