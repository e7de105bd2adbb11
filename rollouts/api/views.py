from __future__ import annotations

import contextlib
from typing import Any

import structlog
from django.core.exceptions import RequestDataTooBig
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from governance.audit import audit_append
from governance.choices import Role, Scope
from governance.models import Release
from portal.api import KeysetPagination
from portal.errors import Invalid, NotFound
from portal.refusals import audit_refused, throttled_calls_to_audit
from portal.schema import filters
from portal.strict import StrictSerializer
from rollouts import lifecycle, promotion, routing
from rollouts.analysis.comparison import compare
from rollouts.api.bodies import (
    AbortSerializer,
    DeploySerializer,
    KillSwitchSerializer,
    PauseSerializer,
    PromoteSerializer,
)
from rollouts.api.serializers import (
    AwaitingSerializer,
    ComparisonSerializer,
    IngestAnswerSerializer,
    KillSwitchAnswerSerializer,
    MetricsBatchSerializer,
    RolloutSerializer,
    RoutingDecisionSerializer,
)
from rollouts.choices import ACTIVE_STATES, RolloutState, StepName, StepStatus
from rollouts.metrics.ingest import ingest
from rollouts.models import Rollout
from rollouts.presenters import full_promotion_json, rollout_json

logger = structlog.get_logger(__name__)
OPERATORS = frozenset({Role.STEWARD, Role.OPS})
PROMOTERS = frozenset({Role.COUNCIL, Role.STEWARD})


class Deploy(APIView):
    required_scope = Scope.CANARY_OPERATE
    required_roles = frozenset({Role.ENGINEER})

    @extend_schema(request=DeploySerializer, responses={201: RolloutSerializer})
    def post(self, request: Request, pk: int) -> Response:
        release = get_object_or_404(Release, pk=pk)
        body = DeploySerializer(data=request.data or {})
        body.is_valid(raise_exception=True)
        rollout = lifecycle.rollout_start(
            release=release, actor=request.user, **body.validated_data
        )
        return Response(rollout_json(rollout), status=status.HTTP_201_CREATED)


class RolloutList(generics.ListAPIView):
    """Rollouts, oldest first; `?service=`, `?version=` and `?state=` filter them."""

    required_scope = Scope.READ
    pagination_class = KeysetPagination
    serializer_class = serializers.Serializer

    def get_queryset(self) -> QuerySet[Rollout]:
        queryset = Rollout.objects.all()
        params = self.request.query_params
        if params.get("state") and params["state"] not in RolloutState.values:
            raise exceptions.ValidationError(
                {"state": [f"Use one of {', '.join(RolloutState.values)}."]}
            )
        for name in ("service", "version", "state"):
            if params.get(name):
                queryset = queryset.filter(**{name: params[name]})
        return queryset

    @extend_schema(
        operation_id="rollouts_list",
        responses=RolloutSerializer(many=True),
        parameters=[
            *filters("service", "version"),
            OpenApiParameter(
                "state", str, enum=RolloutState.values, description="Only this state."
            ),
        ],
    )
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset()) or []
        return self.get_paginated_response([rollout_json(r) for r in page])


class RolloutDetail(APIView):
    required_scope = Scope.READ

    @extend_schema(responses=RolloutSerializer)
    def get(self, request: Request, pk: int) -> Response:
        return Response(rollout_json(get_object_or_404(Rollout, pk=pk)))


class RolloutAction(APIView):
    """promote / pause / resume / abort: 200 with the rollout, 409 when its state forbids it."""

    action: str = ""
    body: type[serializers.Serializer] = PauseSerializer

    def get_required_scope(self, request: Request) -> str:
        return Scope.CANARY_ABORT if self.action == "abort" else Scope.CANARY_OPERATE

    def get_required_roles(self, request: Request) -> frozenset[str]:
        if self.action == "promote":
            return PROMOTERS
        if self.action == "abort":
            return frozenset({Role.COUNCIL, Role.STEWARD, Role.OPS})
        return OPERATORS

    def post(self, request: Request, pk: int) -> Response:
        rollout = get_object_or_404(Rollout, pk=pk)
        body = self.body(data=request.data or {})
        body.is_valid(raise_exception=True)
        data = body.validated_data
        user = request.user
        if self.action == "promote" and data["full"]:
            asked = promotion.rollout_promote_full(
                rollout=rollout, actor=user, confirmed=data["confirmed"], approver=data["approver"]
            )
            if asked.confirmed_at is None:
                return Response(full_promotion_json(asked), status=status.HTTP_202_ACCEPTED)
            rollout = asked.rollout
        elif self.action == "promote":
            rollout = promotion.rollout_promote(
                rollout=rollout, actor=user, mode=data["mode"], confirmed=data["confirmed"]
            )
        elif self.action == "pause":
            rollout = lifecycle.rollout_pause(rollout=rollout, actor=user, reason=data["reason"])
        elif self.action == "resume":
            rollout = lifecycle.rollout_resume(rollout=rollout, actor=user)
        else:
            rollout = lifecycle.rollout_abort(
                rollout=rollout,
                actor=user,
                reason=data["reason"],
                operator=data["operator"],
                mode=data["mode"],
            )
        return Response(rollout_json(rollout))


def _action(name: str, body: type[serializers.Serializer]) -> Any:
    view: type[RolloutAction] = type(
        f"Rollout{name.capitalize()}", (RolloutAction,), {"action": name, "body": body}
    )
    responses: dict[int, Any] = {200: RolloutSerializer}
    if name == "promote":
        responses[202] = AwaitingSerializer
    return extend_schema(request=body, responses=responses)(view).as_view()


promote_view = _action("promote", PromoteSerializer)
pause_view = _action("pause", PauseSerializer)
resume_view = _action("resume", PauseSerializer)
abort_view = _action("abort", AbortSerializer)


class KillSwitch(APIView):
    """POST /ops/canary/abort: the guide's kill switch. Every call is audited, refused
    ones included; the canary's traffic is at 0 before the 202 is sent."""

    required_scope = Scope.CANARY_ABORT
    required_roles = frozenset({Role.COUNCIL, Role.STEWARD, Role.OPS})

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        # An authorised caller: keep the raw bytes while the parser reads them, so that a
        # refusal of this body (400) is still summarised by its size and hash.
        with contextlib.suppress(RequestDataTooBig):
            request._request.body  # noqa: B018

    def handle_exception(self, exc: Exception) -> Response:
        """Audit a bounded summary of the refused call (portal.refusals), never its body;
        throttled calls once a minute per client address, with the previous minute's count."""
        response = super().handle_exception(exc)
        action, extra = "killswitch.refused", {}
        if response.status_code == status.HTTP_429_TOO_MANY_REQUESTS:
            throttled = throttled_calls_to_audit(self.request, every_s=60)
            if throttled is None:
                return response
            action, extra = "killswitch.throttled", {"throttled_previous_minute": throttled}
        body = response.data if isinstance(response.data, dict) else {}
        audit_refused(
            self.request,
            action=action,
            status=response.status_code,
            detail=body.get("detail", ""),
            user=getattr(self.request, "_user", None),
            fields=("version", "service", "operator", "confirmed", "reason"),
            **extra,
        )
        return response

    @extend_schema(
        request=KillSwitchSerializer,
        responses={202: KillSwitchAnswerSerializer, 502: KillSwitchAnswerSerializer},
    )
    def post(self, request: Request) -> Response:
        body = KillSwitchSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        candidates = Rollout.objects.filter(version=data["version"], state__in=ACTIVE_STATES)
        if data.get("service"):
            candidates = candidates.filter(service=data["service"])
        found = list(candidates[:2])
        if not found:
            raise NotFound(f"No active rollout of version {data['version']}.")
        if len(found) > 1:
            raise Invalid(
                f"Version {data['version']} is rolling out on several services: name the service."
            )
        rollout = lifecycle.rollout_abort(
            rollout=found[0],
            actor=request.user,
            reason=data["reason"],
            operator=data["operator"] or request.user.get_username(),
        )
        route_step = rollout.rollback.steps.get(name=StepName.ROUTE_TO_STABLE)
        confirmed = route_step.status == StepStatus.OK
        audit_append(
            action="killswitch.invoked",
            actor=request.user,
            obj=rollout,
            release_id=rollout.release_id,
            data={
                "reason": data["reason"],
                "operator": data["operator"],
                "state": rollout.state,
                "weight": rollout.weight,
                "router_confirmed": confirmed,
            },
        )
        answer = {"rollout": rollout.pk, "state": rollout.state}
        if not confirmed:
            # The rollback is under way; the router is retried in the background.
            detail = (
                f"The router of {rollout.service} did not confirm weight 0 "
                f"({route_step.detail}); the portal keeps trying."
            )
            return Response({"detail": detail, **answer}, status=status.HTTP_502_BAD_GATEWAY)
        return Response(answer, status=status.HTTP_202_ACCEPTED)


class RoutingUser(StrictSerializer):
    id = serializers.CharField(max_length=128, required=False, allow_blank=True)
    email = serializers.CharField(max_length=254, required=False, allow_blank=True)
    beta_tester = serializers.BooleanField(required=False)
    subscription_tier = serializers.CharField(max_length=40, required=False, allow_blank=True)
    internal = serializers.BooleanField(required=False)


class RoutingRequest(StrictSerializer):
    service = serializers.CharField(max_length=64)
    user = RoutingUser(required=False)
    headers = serializers.DictField(child=serializers.CharField(max_length=200), required=False)
    cookies = serializers.DictField(child=serializers.CharField(max_length=200), required=False)


class RoutingDecide(APIView):
    required_scope = Scope.READ

    @extend_schema(request=RoutingRequest, responses=RoutingDecisionSerializer)
    def post(self, request: Request) -> Response:
        body = RoutingRequest(data=request.data)
        body.is_valid(raise_exception=True)
        decision = routing.decide(**body.validated_data)
        return Response(decision.as_json())


class CanaryMetrics(APIView):
    """GET /ops/canary/metrics?version=V[&service=S]: the live comparison."""

    required_scope = Scope.READ

    @extend_schema(
        responses=ComparisonSerializer,
        parameters=[
            OpenApiParameter("version", str, required=True, description="The canary's version."),
            *filters("service"),
        ],
    )
    def get(self, request: Request) -> Response:
        version = request.query_params.get("version", "")
        if not version:
            raise exceptions.ValidationError({"version": ["This query parameter is required."]})
        rollouts = Rollout.objects.filter(version=version)
        if request.query_params.get("service"):
            rollouts = rollouts.filter(service=request.query_params["service"])
        active = rollouts.filter(state__in=ACTIVE_STATES)
        if active.values("service").distinct().count() > 1:
            raise Invalid(
                f"Version {version} is rolling out on several services: name the service."
            )
        rollout = active.first() or rollouts.order_by("-started_at", "-id").first()
        if rollout is None:
            raise NotFound(f"No rollout of version {version}.")
        return Response(compare(rollout))


class MetricsIngest(APIView):
    required_scope = Scope.METRICS_WRITE
    max_body_bytes = 8 * 1024 * 1024

    @extend_schema(request=MetricsBatchSerializer, responses={202: IngestAnswerSerializer})
    def post(self, request: Request) -> Response:
        accepted = ingest(request.data)
        return Response({"accepted": accepted}, status=status.HTTP_202_ACCEPTED)
