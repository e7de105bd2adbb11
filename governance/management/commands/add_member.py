from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from governance.choices import Role
from governance.members import member_set_roles


class Command(BaseCommand):
    help = "Create or update a member and set exactly the given roles."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument(
            "--role",
            action="append",
            dest="roles",
            required=True,
            metavar="SLUG",
            help=f"Repeatable. One of: {', '.join(Role.values)}.",
        )
        parser.add_argument("--email")
        parser.add_argument("--password")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            result = member_set_roles(
                username=options["username"],
                roles=options["roles"],
                email=options["email"],
                password=options["password"],
            )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        for warning in result.password_warnings:
            self.stderr.write(f"warning: weak password: {warning}")
        verb = "Created" if result.created else "Updated"
        self.stdout.write(f"{verb} {result.user.username} with roles: {', '.join(result.roles)}")
