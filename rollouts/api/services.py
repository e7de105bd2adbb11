"""`GET /api/v1/services/`: the service catalogue with each router's state (read only)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from governance.choices import Scope
from governance.models import Service
from rollouts.api.serializers import ServiceSerializer
from rollouts.services_json import service_json


class ServiceList(APIView):
    required_scope = Scope.READ

    @extend_schema(responses=ServiceSerializer(many=True))
    def get(self, request: Request) -> Response:
        return Response([service_json(service) for service in Service.objects.order_by("name")])
