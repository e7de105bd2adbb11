from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from comms.models import Notice, Notification
from comms.notices import notice_create
from governance.api.serializers import StrictSerializer
from governance.choices import Scope
from governance.models import Release
from portal import clock


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

    @extend_schema(request=NoticeRequest, responses={201: OpenApiTypes.OBJECT})
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

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        notes = Notification.objects.filter(user_id=int(request.user.pk or 0))
        if request.query_params.get("unread") in ("1", "true"):
            notes = notes.filter(read_at=None)
        return Response([notification_json(n) for n in notes[:200]])


class NotificationRead(APIView):
    required_scope = Scope.READ

    @extend_schema(request=None, responses=OpenApiTypes.OBJECT)
    def post(self, request: Request, pk: int) -> Response:
        note = get_object_or_404(
            Notification.objects.filter(user_id=int(request.user.pk or 0)), pk=pk
        )
        if note.read_at is None:
            note.read_at = clock.now()
            note.save(update_fields=["read_at"])
        return Response(notification_json(note))
