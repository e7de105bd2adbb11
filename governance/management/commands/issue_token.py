from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from governance.choices import SCOPE_ROLES, Scope
from governance.tokens import scopes_lacking_role, token_issue


class Command(BaseCommand):
    help = "Issue an API token for a member; prints the token (shown once) and nothing else."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument(
            "--scope",
            action="append",
            dest="scopes",
            required=True,
            metavar="SCOPE",
            help=f"Repeatable. One of: {', '.join(Scope.values)}.",
        )
        parser.add_argument("--name", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        User = get_user_model()
        user = User.objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"No member named {options['username']!r}: add them first.")
        try:
            _, raw = token_issue(user=user, scopes=options["scopes"], name=options["name"])
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        for scope in scopes_lacking_role(user, options["scopes"]):
            needed = " or ".join(sorted(SCOPE_ROLES[scope]))
            self.stderr.write(
                f"warning: {user.username} holds no role for '{scope}' (needs {needed}); "
                "the token will be refused for it until they do."
            )
        self.stdout.write(raw)
