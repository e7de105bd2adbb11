"""`service_set NAME [...]`: create a service or change only the options given."""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction

from governance.choices import MetricsSource, RouterKind
from governance.models import Service
from rollouts.lifecycle import active_rollout
from rollouts.metrics.selection import metrics_problems, prometheus_check
from rollouts.services_json import service_json
from rollouts.traffic.checks import ROUTER_OPTIONS, router_problems
from rollouts.traffic.router import RouterError
from rollouts.traffic.truth import serve_current

NOT_YET = "not available yet in this version"
# Options of the contract whose consumers (the gates) are not built yet.
REFUSED = {
    "smoke_url": "--smoke-url",
    "webhook": "--webhook",
    "staging": "--staging",
}


def usage(message: str) -> CommandError:
    return CommandError(message, returncode=2)


class Command(BaseCommand):
    help = "Create a service or change only the options given; prints it as JSON."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--module", action="append", dest="modules", metavar="GLOB")
        parser.add_argument("--stable", metavar="URL")
        parser.add_argument("--canary", metavar="URL")
        parser.add_argument("--router", choices=RouterKind.values)
        parser.add_argument("--metrics", choices=MetricsSource.values)
        parser.add_argument("--prometheus-url", metavar="URL")
        for dest, flag in ROUTER_OPTIONS.items():
            parser.add_argument(flag, dest=dest)
        for dest, flag in REFUSED.items():
            many = dest in {"smoke_url", "webhook"}
            parser.add_argument(flag, dest=dest, action="append" if many else "store")

    def handle(self, *args: Any, **options: Any) -> None:
        for dest, flag in REFUSED.items():
            if options[dest] is not None:
                raise usage(f"{flag}: {NOT_YET}")
        name = options["name"]
        with transaction.atomic():
            service = Service.objects.select_for_update().filter(name=name).first()
            service = service or Service(name=name)
            if options["modules"] is not None:
                if any(not glob.strip() for glob in options["modules"]):
                    raise usage("--module: a glob may not be empty")
                service.modules = options["modules"]
            for option, field in (("stable", "stable_url"), ("canary", "canary_url")):
                if options[option] is not None:
                    setattr(service, field, options[option])
            routing_before = _routing(service)
            for field in ("router", "metrics", "prometheus_url", *ROUTER_OPTIONS):
                if options[field] is not None:
                    setattr(service, field, options[field].strip())
            problems = router_problems(service) + metrics_problems(service)
            if problems:
                raise usage(f"{name}: " + "; ".join(problems))
            changed = service.pk is not None and _routing(service) != routing_before
            busy = active_rollout(name)
            if changed and busy is not None:
                raise usage(
                    f"{name}: rollout {busy.pk} of {busy.version} is {busy.state}; change "
                    "its router or URLs once it has ended"
                )
            try:
                service.full_clean(validate_unique=False)
            except ValidationError as exc:
                raise usage(f"{name}: {exc.message_dict}") from exc
            service.save()
        if service.router != RouterKind.EMBEDDED:
            self._serve(service)
        if service.metrics == MetricsSource.PROMETHEUS:
            self.stderr.write(f"{name}: {prometheus_check(service.prometheus_url)}")
        shown = {**service_json(service), "prometheus_url": service.prometheus_url}
        self.stdout.write(json.dumps(shown, cls=DjangoJSONEncoder, indent=2))

    def _serve(self, service: Service) -> None:
        """The router serves what the portal holds for the service now (at first: all to
        stable); a router that is not up yet is recorded, alerted and retried."""
        try:
            detail = serve_current(service.name)
        except (RouterError, TimeoutError) as exc:
            self.stderr.write(f"{service.name}: the router did not confirm yet: {exc}")
        else:
            self.stderr.write(f"{service.name}: {detail}")


def _routing(service: Service) -> tuple[str, ...]:
    return tuple(
        str(getattr(service, field))
        for field in ("router", "stable_url", "canary_url", *ROUTER_OPTIONS)
    )
