from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from governance import services
from governance.api.serializers import (
    AuditEventSerializer,
    ChecklistItemSerializer,
    GateSerializer,
    ReleasePatchSerializer,
    ReleaseSerializer,
    ReleaseWithGateSerializer,
    ReleaseWriteSerializer,
    SignOffSerializer,
    VoteSerializer,
    VoteViewSerializer,
)
from governance.choices import ReleaseState, Scope
from governance.gate import item_json
from governance.models import AuditEvent, Release
from portal.api import KeysetPagination, query_int
from portal.schema import filters


def release_json(release: Release) -> dict[str, Any]:
    """A release as the contract shows it, with its gate."""
    return {**ReleaseSerializer(release).data, "gate": services.release_gate(release).as_json()}


class ScopeByMethod:
    """Reads need `read`; writes need `write_scope`."""

    write_scope: str = Scope.READ

    def get_required_scope(self, request: Request) -> str:
        return Scope.READ if request.method in ("GET", "HEAD", "OPTIONS") else self.write_scope


@extend_schema_view(
    get=extend_schema(
        parameters=[
            *filters("service", "version"),
            OpenApiParameter(
                "state", str, enum=ReleaseState.values, description="Only this state."
            ),
        ]
    )
)
class ReleaseList(ScopeByMethod, generics.ListAPIView):
    """Releases, oldest first; `?service=`, `?version=` and `?state=` filter them."""

    serializer_class = ReleaseSerializer
    pagination_class = KeysetPagination
    write_scope = Scope.RELEASES_WRITE

    def get_queryset(self) -> QuerySet[Release]:
        queryset = Release.objects.all()
        params = self.request.query_params
        state = params.get("state")
        if state and state not in ReleaseState.values:
            raise exceptions.ValidationError(
                {"state": [f"Use one of {', '.join(ReleaseState.values)}."]}
            )
        for name in ("service", "version", "state"):
            if params.get(name):
                queryset = queryset.filter(**{name: params[name]})
        return queryset

    @extend_schema(request=ReleaseWriteSerializer, responses={201: ReleaseWithGateSerializer})
    def post(self, request: Request) -> Response:
        serializer = ReleaseWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        release = services.release_create(author=request.user, **serializer.validated_data)
        return Response(release_json(release), status=status.HTTP_201_CREATED)


class ReleaseDetail(ScopeByMethod, APIView):
    write_scope = Scope.RELEASES_WRITE

    @extend_schema(responses=ReleaseWithGateSerializer)
    def get(self, request: Request, pk: int) -> Response:
        return Response(release_json(get_object_or_404(Release, pk=pk)))

    @extend_schema(request=ReleasePatchSerializer, responses=ReleaseWithGateSerializer)
    def patch(self, request: Request, pk: int) -> Response:
        release = get_object_or_404(Release, pk=pk)
        serializer = ReleasePatchSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        release = services.release_update(
            release=release, actor=request.user, **serializer.validated_data
        )
        return Response(release_json(release))


class ReleaseGate(APIView):
    required_scope = Scope.READ

    @extend_schema(responses=GateSerializer)
    def get(self, request: Request, pk: int) -> Response:
        release = get_object_or_404(Release, pk=pk)
        return Response(services.release_gate(release).as_json())


class ChecklistSignOff(APIView):
    required_scope = Scope.CHECKLIST_SIGN

    @extend_schema(request=SignOffSerializer, responses=ChecklistItemSerializer)
    def post(self, request: Request, pk: int, key: str) -> Response:
        release = get_object_or_404(Release, pk=pk)
        serializer = SignOffSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        item = services.checklist_sign(
            release=release, key=key, user=request.user, **serializer.validated_data
        )
        return Response(item_json(item))


class ReleaseVotes(ScopeByMethod, APIView):
    write_scope = Scope.VOTES_WRITE

    @extend_schema(responses=VoteViewSerializer(many=True))
    def get(self, request: Request, pk: int) -> Response:
        release = get_object_or_404(Release, pk=pk)
        return Response(services.release_gate(release).as_json()["approvals"]["votes"])

    @extend_schema(
        request=VoteSerializer, responses={201: VoteViewSerializer, 200: VoteViewSerializer}
    )
    def post(self, request: Request, pk: int) -> Response:
        release = get_object_or_404(Release, pk=pk)
        serializer = VoteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        vote, created = services.vote_cast(
            release=release, voter=request.user, **serializer.validated_data
        )
        views = services.release_gate(release).votes
        body = next(view.as_json() for view in views if view.vote.pk == vote.pk)
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


@extend_schema_view(
    get=extend_schema(
        parameters=[
            OpenApiParameter("release", int, description="Only this release's events."),
            *filters("action"),
        ]
    )
)
class AuditEventList(generics.ListAPIView):
    """Audit events, oldest first; `?release=ID` and `?action=` filter them."""

    serializer_class = AuditEventSerializer
    pagination_class = KeysetPagination
    required_scope = Scope.READ

    def get_queryset(self) -> QuerySet[AuditEvent]:
        queryset = AuditEvent.objects.all()
        release = query_int(self.request, "release", None, minimum=1)
        if release is not None:
            queryset = queryset.filter(release_id=release)
        action = self.request.query_params.get("action")
        if action:
            queryset = queryset.filter(action=action)
        return queryset
