from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from comms.api.serializers import (
    ComponentSerializer,
    IncidentSerializer,
    NoticeSerializer,
    NotificationSerializer,
)
from comms.models import (
    Component,
    ComponentStatus,
    Impact,
    Incident,
    IncidentStatus,
    Notice,
    Notification,
)
from comms.notices import notice_create
from comms.services import component_set_status, incident_post
from comms.statuspage import component_json, incident_json
from comms.text import validate_text
from governance.choices import Scope
from governance.models import Release
from portal import clock
from portal.api import query_flag
from portal.strict import StrictSerializer


class NoticeRequest(StrictSerializer):
    template = serializers.SlugField(max_length=40)
    variables = serializers.DictField(required=False, default=dict)
    release = serializers.IntegerField(required=False, allow_null=True)
    send_at = serializers.DateTimeField(required=False, allow_null=True)


def notice_json(notice: Notice) -> dict[str, Any]:
    return {
        "id": notice.pk,
        "template": notice.template.key,
        "release": notice.release_id,
        "subject": notice.subject,
        "body": notice.body,
        "channels": notice.channels,
        "send_at": notice.send_at,
        "state": notice.state,
        "sent_at": notice.sent_at,
        "deliveries": notice.deliveries,
        "last_error": notice.last_error or None,
    }


class Notices(APIView):
    required_scope = Scope.COMMS_WRITE

    @extend_schema(request=NoticeRequest, responses={201: NoticeSerializer})
    def post(self, request: Request) -> Response:
        body = NoticeRequest(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        release = None
        if data.get("release") is not None:
            release = Release.objects.filter(pk=data["release"]).first()
            if release is None:
                raise serializers.ValidationError({"release": ["No such release."]})
        notice = notice_create(
            template=data["template"],
            variables=data["variables"],
            release=release,
            send_at=data.get("send_at"),
            actor=request.user,
        )
        return Response(notice_json(notice), status=status.HTTP_201_CREATED)


def notification_json(note: Notification) -> dict[str, Any]:
    return {
        "id": note.pk,
        "title": note.title,
        "body": note.body,
        "created_at": note.created_at,
        "read_at": note.read_at,
        "unread": note.read_at is None,
        "notice": note.notice_id,
    }


class Notifications(APIView):
    """The calling member's in-app notifications, newest first (`?unread=1` filters)."""

    required_scope = Scope.READ

    @extend_schema(
        responses=NotificationSerializer(many=True),
        parameters=[
            OpenApiParameter(
                "unread", str, enum=["true", "false", "1", "0"], description="Unread only."
            )
        ],
    )
    def get(self, request: Request) -> Response:
        notes = Notification.objects.filter(user_id=int(request.user.pk or 0))
        if query_flag(request, "unread"):
            notes = notes.filter(read_at=None)
        return Response([notification_json(n) for n in notes[:200]])


class NotificationRead(APIView):
    required_scope = Scope.READ

    @extend_schema(request=None, responses=NotificationSerializer)
    def post(self, request: Request, pk: int) -> Response:
        note = get_object_or_404(
            Notification.objects.filter(user_id=int(request.user.pk or 0)), pk=pk
        )
        if note.read_at is None:
            note.read_at = clock.now()
            note.save(update_fields=["read_at"])
        return Response(notification_json(note))


# The status page, written by stewards, ops and their tools (Statuspage's manage API in
# spirit: components named by their public `id`, answers in the public v2 shapes).


class ComponentStatuses(serializers.DictField):
    """`{"<component id>": "<component status>"}`, every id an existing component."""

    child = serializers.ChoiceField(choices=ComponentStatus.choices)

    def to_internal_value(self, data: Any) -> dict[Component, str]:
        wanted = super().to_internal_value(data)
        found = {c.code: c for c in Component.objects.filter(code__in=wanted, is_group=False)}
        unknown = sorted(set(wanted) - set(found))
        if unknown:
            raise serializers.ValidationError(f"No such component: {', '.join(unknown)}.")
        return {found[code]: value for code, value in wanted.items()}


class IncidentUpdateRequest(StrictSerializer):
    status = serializers.ChoiceField(choices=IncidentStatus.choices)
    body = serializers.CharField(max_length=10_000, validators=[validate_text])
    components = ComponentStatuses(required=False, default=dict)


class IncidentRequest(IncidentUpdateRequest):
    name = serializers.CharField(max_length=200, validators=[validate_text])
    impact = serializers.ChoiceField(choices=Impact.choices, default=Impact.MINOR)
    status = serializers.ChoiceField(
        choices=IncidentStatus.choices, default=IncidentStatus.INVESTIGATING
    )


def _post(request: Request, incident: Incident | None, data: dict[str, Any]) -> Response:
    update = incident_post(
        incident,
        name=data.get("name", ""),
        impact=data.get("impact", Impact.MINOR),
        status=data["status"],
        body=data["body"],
        components=data["components"],
        actor=request.user,
    )
    return Response(incident_json(update.incident), status=status.HTTP_201_CREATED)


class Incidents(APIView):
    """Open an incident on the status page."""

    required_scope = Scope.STATUS_WRITE

    @extend_schema(request=IncidentRequest, responses={201: IncidentSerializer})
    def post(self, request: Request) -> Response:
        body = IncidentRequest(data=request.data)
        body.is_valid(raise_exception=True)
        return _post(request, None, body.validated_data)


class IncidentUpdates(APIView):
    """Add an update to an incident's timeline (its status becomes the incident's)."""

    required_scope = Scope.STATUS_WRITE

    @extend_schema(request=IncidentUpdateRequest, responses={201: IncidentSerializer})
    def post(self, request: Request, code: str) -> Response:
        incident = get_object_or_404(Incident, code=code)
        body = IncidentUpdateRequest(data=request.data)
        body.is_valid(raise_exception=True)
        return _post(request, incident, body.validated_data)


class ComponentStatusRequest(StrictSerializer):
    status = serializers.ChoiceField(choices=ComponentStatus.choices)


class ComponentDetail(APIView):
    """Set one component's status (outside any incident, e.g. a degradation being watched)."""

    required_scope = Scope.STATUS_WRITE

    @extend_schema(request=ComponentStatusRequest, responses=ComponentSerializer)
    def patch(self, request: Request, code: str) -> Response:
        component = get_object_or_404(Component, code=code, is_group=False)
        body = ComponentStatusRequest(data=request.data)
        body.is_valid(raise_exception=True)
        component_set_status(component, body.validated_data["status"], actor=request.user)
        return Response(component_json(component))
