"""`router_config NAME`: the router configuration the portal manages for a service."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.serializers.json import DjangoJSONEncoder

from governance.models import Service
from rollouts.models import TrafficSplit
from rollouts.traffic.base import router_for
from rollouts.traffic.truth import current_target


class Command(BaseCommand):
    help = "Print the router configuration the portal manages for a service."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")

    def handle(self, *args: Any, **options: Any) -> None:
        service = Service.objects.filter(name=options["name"]).first()
        if service is None:
            raise CommandError(f"unknown service: {options['name']}", returncode=2)
        router = router_for(service)
        if router is not None:
            self.stdout.write(router.config(current_target(service)))
            return
        split = TrafficSplit.objects.filter(service=service.name).first()
        self.stderr.write(
            f"{service.name} uses the embedded router: the split lives in the portal "
            "(the decision API and the middleware read it); there is no file to install."
        )
        current = {
            "service": service.name,
            "router": service.router,
            "stable_version": split.stable_version if split else "",
            "canary_version": split.canary_version if split else "",
            "weight": split.weight if split else 0,
            "updated_at": split.updated_at if split else None,
        }
        self.stdout.write(json.dumps(current, cls=DjangoJSONEncoder, indent=2))
